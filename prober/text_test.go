package prober

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/invalid"
)

func TestCheckTextRefusesControlCharacters(t *testing.T) {
	for _, s := range []string{"", "Shop", "Café ☕ – München", "a/b:c=d", "emoji 🙂"} {
		require.Empty(t, CheckText("name", s), "%q", s)
	}
	for s, want := range map[string]string{
		"a\x00b":          "must not contain control characters (U+0000 at byte 1)",
		"line\r\nINFO x":  "must not contain control characters (U+000D at byte 4)",
		"\nx":             "must not contain control characters (U+000A at byte 0)",
		"red \x1b[31m":    "must not contain control characters (U+001B at byte 4)",
		"tab\there":       "must not contain control characters (U+0009 at byte 3)",
		"del\x7f":         "must not contain control characters (U+007F at byte 3)",
		"nel\u0085":       "must not contain control characters (U+0085 at byte 3)",
		"csi\u009b31m":    "must not contain control characters (U+009B at byte 3)",
		"bad \xff utf8":   "must be valid UTF-8",
		"c1 raw \xc2\x9b": "must not contain control characters (U+009B at byte 7)",
	} {
		errs := CheckText("targets[0].name", s)
		require.Equal(t, []invalid.Field{{Path: "targets[0].name", Msg: want}}, errs, "%q", s)
	}

	errs := CheckLabels("labels", map[string]string{"team": "ops\n", "ok": "fine", "bad\x1bname": "x"})
	require.Equal(t, []invalid.Field{
		{Path: "labels", Msg: `label name "bad\x1bname" must not contain control characters (U+001B at byte 3)`},
		{Path: "labels.team", Msg: "must not contain control characters (U+000A at byte 3)"},
	}, errs)
}

func TestTargetValidateRefusesControlCharacters(t *testing.T) {
	tg := Target{Name: "web\r\nfake log line", Kind: "tcp", TCP: &TCPSpec{Address: "example.com:443"},
		Labels: map[string]string{"env": "prod\x00"}}
	tg.Normalize()
	tg.ID = "web"
	var paths []string
	for _, e := range tg.Validate("targets[0]") {
		paths = append(paths, e.Path)
	}
	require.ElementsMatch(t, []string{"targets[0].name", "targets[0].labels.env"}, paths)
}
