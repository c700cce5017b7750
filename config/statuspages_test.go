package config

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStatusPagesSection(t *testing.T) {
	cfg, err := Parse(strings.NewReader("status_pages: {custom_domains: true, reserved_domains: [Upwatch.Example.com.]}\n"), "t.yaml", noEnv)
	require.NoError(t, err)
	require.True(t, cfg.StatusPages.CustomDomains)
	require.True(t, cfg.StatusPages.Reserved("upwatch.example.com"))
	require.False(t, cfg.StatusPages.Reserved("status.example.com"))

	requireErrors(t, "status_pages: {reserved_domains: [\"https://upwatch.example.com/\", \"\"]}\n", []string{
		"status_pages.reserved_domains[0]: must be a host name", "status_pages.reserved_domains[1]: must be a host name",
	})
	_, err = Parse(strings.NewReader("status_pages: {custom_domain: true}\n"), "t.yaml", noEnv)
	require.ErrorContains(t, err, "status_pages.custom_domain: unknown field; did you mean custom_domains?")
}
