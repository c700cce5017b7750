package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestControlCharactersInNamesAndLabels: names and labels of targets,
// contact groups (and members), policies and maintenance windows refuse
// control characters, each error naming its field.
func TestControlCharactersInNamesAndLabels(t *testing.T) {
	_, err := Parse(strings.NewReader(`
alerting:
  webhook: {secret: s3cr3t-s3cr3t-s3cr3t-s3cr3t}
targets:
  - id: web
    name: "web\e[31m"
    kind: tcp
    tcp: {address: "example.com:443"}
    labels: {team: "ops\r\nINFO forged", "bad\0": x}
contact_groups:
  - name: "ops\n"
    webhooks: ["https://hooks.example.com/x"]
    members: [{name: "Ann\u0085", email: ann@example.com}]
alert_policies:
  - name: "p\x7f"
    channels: [webhook]
    contact_groups: ["ops\n"]
maintenance:
  - name: "night\t"
    cron: "0 2 * * *"
    duration: 1h
    labels: {team: "ops\u009b"}
`), "t.yaml", noEnv)
	var ce *Error
	require.True(t, errors.As(err, &ce), "%v", err)
	got := map[string]string{}
	for _, e := range ce.Errors {
		got[e.Path] = e.Msg
	}
	for path, msg := range map[string]string{
		"targets[0].name":                   "must not contain control characters (U+001B at byte 3)",
		"targets[0].labels.team":            "must not contain control characters (U+000D at byte 3)",
		"targets[0].labels":                 `label name "bad\x00" must not contain control characters (U+0000 at byte 3)`,
		"contact_groups[0].name":            "must not contain control characters (U+000A at byte 3)",
		"contact_groups[0].members[0].name": "must not contain control characters (U+0085 at byte 3)",
		"alert_policies[0].name":            "must not contain control characters (U+007F at byte 1)",
		"maintenance[0].name":               "must not contain control characters (U+0009 at byte 5)",
		"maintenance[0].labels.team":        "must not contain control characters (U+009B at byte 3)",
	} {
		require.Equal(t, msg, got[path], "%s in %v", path, err)
	}
}
