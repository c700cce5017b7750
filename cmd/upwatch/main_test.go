package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/crypt"
)

func runCLI(env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "upwatch.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func TestVersionAndHelp(t *testing.T) {
	code, out, _ := runCLI(nil, "version")
	require.Equal(t, 0, code)
	require.Equal(t, "upwatch dev (revision unknown, "+runtime.Version()+")\n", out)

	code, out, _ = runCLI(nil, "keygen", "-help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "UPWATCH_MASTER_KEY")

	code, out, _ = runCLI(nil, "help")
	require.Equal(t, 0, code)
	for _, cmd := range []string{"serve", "check", "config validate", "version"} {
		require.Contains(t, out, "upwatch "+cmd)
	}

	code, _, errOut := runCLI(nil, "frobnicate")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, `unknown command "frobnicate"`)

	for _, cmd := range [][]string{{"serve", "-help"}, {"check", "-help"}, {"config", "validate", "-help"}} {
		code, _, errOut = runCLI(nil, cmd...)
		require.Equal(t, 0, code, cmd)
		require.Contains(t, errOut, "-config", cmd)
	}
}

func TestConfigValidate(t *testing.T) {
	code, out, _ := runCLI(nil, "config", "validate", "-config", "../../examples/upwatch.yaml")
	require.Equal(t, 0, code)
	require.Contains(t, out, "ok (4 targets)")

	bad := writeFile(t, `
targets:
  - {name: a, kind: tcp, interval: 500ms, timeout: 1s, tcp: {address: "h:1"}}
  - {name: b, kind: http, http: {url: "ftp://x"}}
`)
	code, _, errOut := runCLI(nil, "config", "validate", "-config", bad)
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "(3 problems)")
	require.Contains(t, errOut, "targets[0].interval: must be between 1s and 24h0m0s")
	require.Contains(t, errOut, "targets[0].timeout: must not be longer than the interval (500ms)")
	require.Contains(t, errOut, `targets[1].http.url: scheme must be http or https (got "ftp")`)

	// The config path can come from the environment; a missing file names itself.
	code, _, errOut = runCLI(map[string]string{"UPWATCH_CONFIG": "/nonexistent/upwatch.yaml"}, "config", "validate")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "/nonexistent/upwatch.yaml")
}

func TestServeRefusesAnInvalidConfigWithExit2(t *testing.T) {
	bad := writeFile(t, "workers: 0\nlisten: nowhere\n")
	code, _, errOut := runCLI(nil, "serve", "-config", bad)
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "listen: must be host:port")

	code, _, errOut = runCLI(nil, "serve", "-config", bad, "-listen", "127.0.0.1:x")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, `port "x"`, "the flag overrides the file")
}

func TestCheckAdHocURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "hello")
	}))
	defer srv.Close()

	code, out, errOut := runCLI(nil, "check", "-allow-private", srv.URL+"/")
	require.Equal(t, 0, code, errOut)
	for _, row := range []string{"result       UP", "status       200", "dns ", "connect ", "tls ", "ttfb ", "transfer ", "total "} {
		require.Contains(t, out, row)
	}

	code, out, _ = runCLI(nil, "check", "-allow-private", srv.URL+"/bad")
	require.Equal(t, exitFailed, code)
	require.Contains(t, out, "result       DOWN")
	require.Contains(t, out, "error        status:")

	// Without -allow-private the SSRF guard refuses loopback.
	code, out, _ = runCLI(nil, "check", srv.URL+"/")
	require.Equal(t, exitFailed, code)
	require.Contains(t, out, "blocked")

	code, out, _ = runCLI(nil, "check", "-json", "-allow-private", "tcp://"+srv.Listener.Addr().String())
	require.Equal(t, 0, code)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.Equal(t, true, res["success"])
	// The API's sample shape: seconds, not nanoseconds; empty fields left out.
	require.IsType(t, float64(0), res["duration_seconds"])
	require.Less(t, res["duration_seconds"].(float64), 10.0)
	require.Contains(t, res, "phases_seconds")
	for _, empty := range []string{"tls_expiry", "error", "status_code", "duration", "phases"} {
		require.NotContains(t, res, empty)
	}

	code, _, errOut = runCLI(nil, "check", "gopher://x")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, `unsupported scheme "gopher"`)
}

func TestCheckConfiguredTarget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	defer srv.Close()
	cfg := writeFile(t, "allow_private_targets: true\ntargets:\n  - {name: web, kind: http, http: {url: "+srv.URL+"}}\n")

	code, out, errOut := runCLI(nil, "check", "-config", cfg, "web")
	require.Equal(t, 0, code, errOut)
	require.True(t, strings.HasPrefix(out, "target       web (http, from local)"), out)

	code, _, errOut = runCLI(nil, "check", "-config", cfg, "nope")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, `no target with id or name "nope"`)
}

func TestKeygen(t *testing.T) {
	code, out, _ := runCLI(nil, "keygen", "api-key")
	require.Equal(t, 0, code)
	require.Regexp(t, `^uw_[0-9A-Za-z]{43}\n$`, out)
	code, out, _ = runCLI(nil, "keygen", "master-key")
	require.Equal(t, 0, code)
	key := strings.TrimSpace(out)
	code, _, errOut := runCLI(map[string]string{}, "keygen")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "api-key|master-key")
	_, err := crypt.LoadMasterKey(func(k string) string { return map[string]string{"UPWATCH_MASTER_KEY": key}[k] })
	require.NoError(t, err, "the printed master key loads")
}

// TestConfigValidateReadsIncludes: `config validate` counts the targets of
// included files and names an included file's problem by file and line.
func TestConfigValidateReadsIncludes(t *testing.T) {
	code, out, errOut := runCLI(nil, "config", "validate", "-config", "../../config/testdata/include/ok/upwatch.yaml")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "ok (4 targets)")

	code, _, errOut = runCLI(nil, "config", "validate", "-config", "../../config/testdata/include/invalid-target/upwatch.yaml")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, `../../config/testdata/include/invalid-target/targets.d/eu.yaml:12: targets[2].http.url: scheme must be http or https (got "ftp")`)
}

// TestCheckInsecure: -insecure lets an https check accept a certificate no
// root vouches for; without it the check fails on the certificate.
func TestCheckInsecure(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	defer srv.Close()

	code, out, _ := runCLI(nil, "check", "-allow-private", srv.URL+"/")
	require.Equal(t, exitFailed, code)
	require.Contains(t, out, "certificate")

	code, out, errOut := runCLI(nil, "check", "-allow-private", "-insecure", srv.URL+"/")
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out, "result       UP")

	code, _, errOut = runCLI(nil, "check", "-insecure", "tls://"+srv.Listener.Addr().String())
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, "-insecure: a tls check exists to verify the certificate")
}
