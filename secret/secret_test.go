package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestSecretNeverPrints(t *testing.T) {
	s := New("hunter2")
	for _, out := range []string{
		s.String(), fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x", s, s, s, s, s, s),
		fmt.Sprintf("%v", struct{ P Secret }{s}), fmt.Sprintf("%+v", &struct{ P Secret }{s}),
	} {
		require.NotContains(t, out, "hunter2")
	}
	b, err := json.Marshal(struct{ P Secret }{s})
	require.NoError(t, err)
	require.Equal(t, `{"P":"\u003csecret\u003e"}`, string(b))
	y, err := yaml.Marshal(struct{ P Secret }{s})
	require.NoError(t, err)
	require.NotContains(t, string(y), "hunter2")

	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "password", s)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "password", s)
	require.NotContains(t, logs.String(), "hunter2")
	require.Equal(t, "hunter2", s.Reveal())
}

func TestParseReferences(t *testing.T) {
	t.Setenv("SECRET_TEST_VAR", "from-env")
	f := filepath.Join(t.TempDir(), "s")
	require.NoError(t, os.WriteFile(f, []byte("from-file\r\n"), 0o600))

	s, err := Parse("env:SECRET_TEST_VAR")
	require.NoError(t, err)
	require.Equal(t, "from-env", s.Reveal())
	s, err = Parse("file:" + f)
	require.NoError(t, err)
	require.Equal(t, "from-file", s.Reveal())
	s, err = Parse("literal")
	require.NoError(t, err)
	require.Equal(t, "literal", s.Reveal())

	_, err = Parse("env:SECRET_TEST_MISSING")
	require.EqualError(t, err, "environment variable SECRET_TEST_MISSING is not set")
	_, err = Parse("file:/nonexistent/secret")
	require.ErrorContains(t, err, "/nonexistent/secret")

	// References marshal back as themselves: they are not secret.
	s, _ = Parse("env:SECRET_TEST_VAR")
	y, err := yaml.Marshal(struct{ P Secret }{s})
	require.NoError(t, err)
	require.Equal(t, "p: env:SECRET_TEST_VAR\n", string(y))
}

func TestUnmarshalYAMLNamesTheLine(t *testing.T) {
	var v struct{ P Secret }
	err := yaml.Unmarshal([]byte("\np: env:SECRET_TEST_MISSING\n"), &v)
	require.ErrorContains(t, err, "line 2")
}

// TestUnmarshalYAMLReportsEveryMissingSecret: the decoder goes on after a
// missing reference, so all of them are named at once.
func TestUnmarshalYAMLReportsEveryMissingSecret(t *testing.T) {
	var v struct{ A, B, C Secret }
	err := yaml.Unmarshal([]byte("a: env:SECRET_TEST_MISSING_A\nb: literal\nc: file:/nonexistent/secret-c\n"), &v)
	require.ErrorContains(t, err, "line 1: environment variable SECRET_TEST_MISSING_A is not set")
	require.ErrorContains(t, err, "line 3: reading secret file: open /nonexistent/secret-c")
	require.Equal(t, "literal", v.B.Reveal())
}
