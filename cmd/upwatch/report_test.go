package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/report"
)

// sealed returns a fresh key, its JWK file and a token of plaintext under it.
func sealed(t *testing.T, plaintext string) (report.Key, string, string) {
	t.Helper()
	k, err := report.NewKey(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	jwk, err := k.JWK()
	require.NoError(t, err)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.jwk")
	require.NoError(t, os.WriteFile(keyFile, jwk, 0o600))
	token, err := report.Encrypt([]byte(plaintext), k)
	require.NoError(t, err)
	return k, keyFile, token
}

func writeToken(t *testing.T, token string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "report.jwe")
	require.NoError(t, os.WriteFile(p, []byte(token+"\n"), 0o600))
	return p
}

func TestReportDecrypt(t *testing.T) {
	_, keyFile, token := sealed(t, `{"tenant":"acme","targets":[{"id":"web","uptime_percent":99.5}]}`)
	want := `{
  "tenant": "acme",
  "targets": [
    {
      "id": "web",
      "uptime_percent": 99.5
    }
  ]
}
`
	file := writeToken(t, token)

	// From a file, flags before or after it; --key-file spelled either way.
	for _, args := range [][]string{
		{"report", "decrypt", "--key-file", keyFile, file},
		{"report", "decrypt", "-key-file", keyFile, file},
		{"report", "decrypt", file, "--key-file", keyFile},
	} {
		code, out, errOut := runCLI(nil, args...)
		require.Equal(t, exitOK, code, errOut)
		require.Equal(t, want, out)
		require.Empty(t, errOut)
	}

	// From standard input, named "-" or implied.
	for _, args := range [][]string{{"-key-file", keyFile, "-"}, {"-key-file", keyFile}} {
		var out, errb bytes.Buffer
		code := reportDecrypt(args, strings.NewReader(token+"\n"), &out, &errb)
		require.Equal(t, exitOK, code, errb.String())
		require.Equal(t, want, out.String())
	}
}

func TestReportDecryptFailures(t *testing.T) {
	_, keyFile, token := sealed(t, `{"a":1}`)
	_, otherKeyFile, _ := sealed(t, `{}`)

	// A tampered token: flip one character of the ciphertext.
	parts := strings.Split(token, ".")
	c := []byte(parts[3])
	if c[0] == 'A' {
		c[0] = 'B'
	} else {
		c[0] = 'A'
	}
	parts[3] = string(c)
	tampered := strings.Join(parts, ".")

	tests := []struct {
		name    string
		args    []string
		code    int
		wantErr string
	}{
		{"no subcommand", []string{"report"}, exitUsage, "usage: upwatch report decrypt"},
		{"unknown subcommand", []string{"report", "encrypt"}, exitUsage, `unknown subcommand "encrypt"`},
		{"no key file", []string{"report", "decrypt", writeToken(t, token)}, exitUsage, "-key-file is required"},
		{"two files", []string{"report", "decrypt", "-key-file", keyFile, "a", "b"}, exitUsage, `unexpected argument "b"`},
		{"unknown flag", []string{"report", "decrypt", "-key", keyFile}, exitUsage, "flag provided but not defined"},
		{"missing token file", []string{"report", "decrypt", "-key-file", keyFile, "/nonexistent/r.jwe"}, exitFailed, "/nonexistent/r.jwe"},
		{"missing key file", []string{"report", "decrypt", "-key-file", "/nonexistent/k.jwk", writeToken(t, token)}, exitFailed, "reading key file"},
		{"tampered", []string{"report", "decrypt", "-key-file", keyFile, writeToken(t, tampered)}, exitFailed, "decryption failed"},
		{"another key", []string{"report", "decrypt", "-key-file", otherKeyFile, writeToken(t, token)}, exitFailed, "unknown key"},
		{"not a token", []string{"report", "decrypt", "-key-file", keyFile, writeToken(t, "hello")}, exitFailed, "malformed token"},
		{"empty", []string{"report", "decrypt", "-key-file", keyFile, writeToken(t, "")}, exitFailed, "no token in"},
		{"key file is not a key", []string{"report", "decrypt", "-key-file", writeToken(t, "{}"), writeToken(t, token)}, exitFailed, "invalid key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(nil, tt.args...)
			require.Equal(t, tt.code, code, errOut)
			require.Empty(t, out)
			require.Contains(t, errOut, tt.wantErr)
		})
	}

	code, out, _ := runCLI(nil, "report", "help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "JWK Set")
	code, out, _ = runCLI(nil, "help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "upwatch report decrypt")
}

// A JWK Set with the retired key opens a report sealed before a rotation.
func TestReportDecryptKeySet(t *testing.T) {
	old, _, oldToken := sealed(t, `{"v":"old"}`)
	cur, _, newToken := sealed(t, `{"v":"new"}`)
	oldJWK, err := old.JWK()
	require.NoError(t, err)
	curJWK, err := cur.JWK()
	require.NoError(t, err)
	set := filepath.Join(t.TempDir(), "keys.json")
	require.NoError(t, os.WriteFile(set, []byte(`{"keys":[`+string(curJWK)+`,`+string(oldJWK)+`]}`), 0o600))
	for token, want := range map[string]string{oldToken: "old", newToken: "new"} {
		code, out, errOut := runCLI(nil, "report", "decrypt", "-key-file", set, writeToken(t, token))
		require.Equal(t, exitOK, code, errOut)
		require.Equal(t, "{\n  \"v\": \""+want+"\"\n}\n", out)
	}
}
