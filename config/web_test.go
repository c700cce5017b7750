package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWebDefaultsAndBounds(t *testing.T) {
	c, err := Parse(strings.NewReader("web:\n  public_url: https://upwatch.example.com\n"), "ok.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, DefaultSessionTTL, c.Web.SessionTTL)
	require.Equal(t, "https://upwatch.example.com", c.Web.PublicURL)

	requireErrors(t, "web:\n  public_url: upwatch.example.com\n  session_ttl: 30s\n", []string{
		`web.public_url: must be an absolute http or https URL (got "upwatch.example.com")`,
		"web.session_ttl: must be from 1m to 720h",
	})
	requireErrors(t, "web:\n  session_ttl: 1000h\n", []string{"web.session_ttl: must be from 1m to 720h"})
	c, err = Parse(strings.NewReader("web:\n  session_ttl: 720h\n"), "ok.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, 720*time.Hour, c.Web.SessionTTL)
}
