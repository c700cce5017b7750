package config

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/quota"
)

func noEnv(string) string { return "" }

// requireErrors parses yaml as bad.yaml and requires exactly the errors
// want, in order (each a substring of its error); it returns the error.
func requireErrors(t *testing.T, yaml string, want []string) error {
	t.Helper()
	_, err := Parse(strings.NewReader(yaml), "bad.yaml", noEnv)
	var cerr *Error
	require.True(t, errors.As(err, &cerr), "want *config.Error, got %v", err)
	require.Len(t, cerr.Errors, len(want), "errors: %v", cerr)
	for i, w := range want {
		require.Contains(t, cerr.Errors[i].Error(), w)
	}
	return err
}

func TestSampleConfigIsValid(t *testing.T) {
	cfg, err := Load("../examples/upwatch.yaml", noEnv)
	require.NoError(t, err)
	require.True(t, cfg.AllowPrivateTargets)
	require.True(t, cfg.Demo)
	require.GreaterOrEqual(t, len(cfg.Targets), 3)
	for _, tg := range cfg.Targets {
		require.NotEmpty(t, tg.ID)
		require.LessOrEqual(t, tg.Timeout, tg.Interval)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
targets:
  - name: a
    kind: http
    http: {url: "https://example.com/"}
`), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, DefaultListen, cfg.Listen)
	require.Equal(t, DefaultDataDir, cfg.DataDir)
	require.Equal(t, "sqlite", cfg.Storage.Type)
	require.Equal(t, 30, cfg.Storage.Retention.RawDays)
	require.Equal(t, 1825, cfg.Storage.Retention.RollupDays)
	require.Equal(t, "local", cfg.Location)
	require.False(t, cfg.AllowPrivateTargets, "the SSRF guard is on unless asked")
	tg := cfg.Targets[0]
	require.Equal(t, "a", tg.ID)
	require.Equal(t, 60*time.Second, tg.Interval)
	require.Equal(t, 10*time.Second, tg.Timeout)
	require.Equal(t, "GET", tg.HTTP.Method)
	require.True(t, tg.HTTP.MaxBodyBytes > 0)
	require.Equal(t, quota.Limits{MaxTargets: 1000, MinInterval: 10 * time.Second, MaxChecksPerSecond: 20}, cfg.Quotas.For("default"))
}

func TestQuotasConfig(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
quotas:
  max_targets: 50
  min_interval: 30s
  tenants:
    default: {max_targets: 5000, max_checks_per_second: 200}
`), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, quota.Limits{MaxTargets: 50, MinInterval: 30 * time.Second, MaxChecksPerSecond: 20}, cfg.Quotas.For("acme"))
	require.Equal(t, quota.Limits{MaxTargets: 5000, MinInterval: 30 * time.Second, MaxChecksPerSecond: 200}, cfg.Quotas.For("default"))
	_, err = Parse(strings.NewReader("quotas: {max_target: 5}\n"), "t.yaml", noEnv)
	require.EqualError(t, err, "invalid config t.yaml (1 problem):\n  quotas.max_target: unknown field; did you mean max_targets? (line 1)")
}

func TestEmptyFileIsValid(t *testing.T) {
	cfg, err := Parse(strings.NewReader(""), "empty.yaml", noEnv)
	require.NoError(t, err)
	require.Empty(t, cfg.Targets)
}

// Each bad config lists exactly the errors expected, each with its path.
func TestInvalidConfigs(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // substrings, one per reported problem, in order
	}{
		{"interval too short", `
targets:
  - {name: a, kind: tcp, interval: 500ms, timeout: 100ms, tcp: {address: "h:1"}}`,
			[]string{"targets[0].interval: must be between 1s and 24h0m0s (got 500ms)"}},
		{"interval too long", `
targets:
  - {name: a, kind: tcp, interval: 2562047h, tcp: {address: "h:1"}}`,
			[]string{"targets[0].interval: must be between 1s and 24h0m0s (got 2562047h0m0s)"}},
		{"timeout above the cap", `
targets:
  - {name: a, kind: tcp, interval: 10m, timeout: 2m, tcp: {address: "h:1"}}`,
			[]string{"targets[0].timeout: must be at most 1m0s (got 2m0s)"}},
		{"negative timeout", `
targets:
  - {name: a, kind: tcp, timeout: -1s, tcp: {address: "h:1"}}`,
			[]string{"targets[0].timeout: must be positive"}},
		{"redirects and body cap", `
targets:
  - {name: a, kind: http, http: {url: "http://x/", max_redirects: 100000000, max_body_bytes: 1073741824}}`,
			[]string{
				"targets[0].http.max_redirects: must be between 0 and 20 (got 100000000)",
				"targets[0].http.max_body_bytes: must be between 0 and 10485760 (10 MiB) (got 1073741824)",
			}},
		{"locations", `
targets:
  - {name: a, kind: tcp, tcp: {address: "h:1"}, locations: [eu-west, "eu west", eu-west]}`,
			[]string{
				`targets[0].locations[1]: must be 1-64 letters, digits, '-', '_' or '.' (got "eu west")`,
				`targets[0].locations[2]: repeats location "eu-west"`,
			}},
		{"agents out of bounds", `
agents: {ttl: 30s, max_batch: 20000}`,
			[]string{
				"agents.ttl: must be between 1s and 15s (got 30s)",
				"agents.max_batch: must be between 1 and 10000 (got 20000)",
			}},
		{"advertise_url not a base URL", `
server: {advertise_url: "ftp://10.0.0.1:8080"}`,
			[]string{`server.advertise_url: must be an http or https URL with a host, as the other servers reach this one (got "ftp://10.0.0.1:8080")`}},
		{"advertise_url with credentials", `
server: {advertise_url: "http://u:p@10.0.0.1:8080/?x=1"}`,
			[]string{"server.advertise_url: must not carry credentials, a query or a fragment"}},
		{"quotas out of bounds", `
quotas:
  max_targets: 0
  min_interval: 500ms
  max_checks_per_second: 20000
  tenants:
    acme: {max_targets: 200000, min_interval: 25h, max_checks_per_second: -1}`,
			[]string{
				// max_targets 0 means the default, so only the others.
				"quotas.min_interval: must be between 1s and 24h0m0s (got 500ms)",
				"quotas.max_checks_per_second: must be above 0 and at most 10000 (got 20000)",
				"quotas.tenants.acme.max_targets: must be between 1 and 100000 (got 200000)",
				"quotas.tenants.acme.min_interval: must be between 1s and 24h0m0s (got 25h0m0s)",
				"quotas.tenants.acme.max_checks_per_second: must be above 0 and at most 10000 (got -1)",
			}},
		{"timeout longer than interval", `
targets:
  - {name: a, kind: tcp, interval: 5s, timeout: 6s, tcp: {address: "h:1"}}`,
			[]string{"targets[0].timeout: must not be longer than the interval (5s)"}},
		{"unknown kind", `
targets:
  - {name: a, kind: smtp}`,
			[]string{`targets[0].kind: unknown kind "smtp" (want one of dns, grpc, http, icmp, push, tcp, tls)`}},
		{"push token too short", `
targets:
  - {name: a, kind: push, push: {token: short, period: 0.5s, grace: 200h}}`,
			[]string{"targets[0].push.token: must be 22-128 of A-Z a-z 0-9 _ - (at least 128 bits; got 5 characters)",
				"targets[0].push.period: must be between 1s and 768h0m0s (got 500ms)",
				"targets[0].push.grace: must be between 0s and 168h0m0s (got 200h0m0s)"}},
		{"icmp without host", `
targets:
  - {name: a, kind: icmp, icmp: {count: 21}}`,
			[]string{"targets[0].icmp.host: is required", "targets[0].icmp.count: must be between 1 and 20 (got 21)"}},
		{"missing block", `
targets:
  - {name: a, kind: http}`,
			[]string{"targets[0].http: is required for kind http"}},
		{"wrong block", `
targets:
  - {name: a, kind: tcp, tcp: {address: "h:1"}, http: {url: "http://x/"}}`,
			[]string{`targets[0].http: is set but kind is "tcp"`}},
		{"bad url and regex and status", `
targets:
  - name: a
    kind: http
    http:
      url: ftp://x/
      expect_status: ["2xx", "700"]
      body_regex: ["("]`,
			[]string{
				`targets[0].http.url: scheme must be http or https (got "ftp")`,
				`targets[0].http.expect_status[1]: "700" is not a status code`,
				"targets[0].http.body_regex[0]: invalid regex",
			}},
		{"auth missing fields", `
targets:
  - name: a
    kind: http
    http:
      url: http://x/
      auth: {type: oauth2, client_id: c}`,
			[]string{"targets[0].http.auth.token_url: is required", "targets[0].http.auth.client_secret: is required"}},
		{"unknown auth", `
targets:
  - {name: a, kind: http, http: {url: "http://x/", auth: {type: ntlm}}}`,
			[]string{`targets[0].http.auth.type: unknown auth type "ntlm"`}},
		{"duplicate ids", `
targets:
  - {name: a, kind: tcp, tcp: {address: "h:1"}}
  - {name: b, kind: tcp, tcp: {address: "h:2"}}
  - {name: a, kind: tcp, tcp: {address: "h:3"}}`,
			[]string{`targets[2].id: "a" is already used by targets[0]`}},
		{"bad top level", `
listen: nowhere
workers: -1
location: "a b"
log: {level: loud}
storage: {type: mysql, retention: {raw_days: 10, rollup_days: 5}}`,
			[]string{
				"listen: must be host:port",
				"storage.type: unknown storage \"mysql\"",
				"storage.retention.rollup_days: must be at least raw_days (10)",
				"workers: must be between 1 and 10000",
				"location: must be 1-64",
				"log.level: must be debug, info, warn or error",
			}},
		{"dns and tcp", `
targets:
  - {name: d, kind: dns, dns: {name: "", type: SRV, transport: quic}}
  - {name: t, kind: tcp, tcp: {address: "nohost", expect: "["}}`,
			[]string{
				"targets[0].dns.name: is required",
				`targets[0].dns.type: unsupported record type "SRV"`,
				"targets[0].dns.transport: must be udp or tcp",
				"targets[1].tcp.address: must be host:port",
				"targets[1].tcp.expect: invalid regex",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := requireErrors(t, tc.yaml, tc.want)
			require.Contains(t, err.Error(), "invalid config bad.yaml")
		})
	}
}

func TestUnknownFieldIsAnErrorWithItsLine(t *testing.T) {
	_, err := Parse(strings.NewReader("listen: 127.0.0.1:1\ntargets:\n  - name: a\n    kind: tcp\n    intervall: 5s\n"), "typo.yaml", noEnv)
	require.Error(t, err)
	require.Contains(t, err.Error(), "line 5")
	require.Contains(t, err.Error(), "intervall")
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		"UPWATCH_LISTEN": "127.0.0.1:9999", "UPWATCH_DATA_DIR": "/tmp/x", "UPWATCH_WORKERS": "8",
		"UPWATCH_ALLOW_PRIVATE_TARGETS": "true", "UPWATCH_LOCATION": "eu-1",
	}
	cfg, err := Parse(strings.NewReader("listen: 127.0.0.1:1\nworkers: 2\n"), "t.yaml", func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9999", cfg.Listen)
	require.Equal(t, "/tmp/x", cfg.DataDir)
	require.Equal(t, 8, cfg.Workers)
	require.True(t, cfg.AllowPrivateTargets)
	require.Equal(t, "eu-1", cfg.Location)

	_, err = Parse(strings.NewReader(""), "t.yaml", func(k string) string {
		return map[string]string{"UPWATCH_WORKERS": "many", "UPWATCH_DEMO": "perhaps"}[k]
	})
	require.ErrorContains(t, err, "env UPWATCH_WORKERS: must be a whole number")
	require.ErrorContains(t, err, "env UPWATCH_DEMO: must be true or false")
}

func TestSecretReferences(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(f, []byte("s3cr3t-from-file\n"), 0o600))
	t.Setenv("UPWATCH_TEST_PASSWORD", "s3cr3t-from-env")
	cfg, err := Parse(strings.NewReader(`
targets:
  - name: a
    kind: http
    http:
      url: http://x/
      auth: {type: basic, username: u, password: "env:UPWATCH_TEST_PASSWORD"}
  - name: b
    kind: http
    http:
      url: http://x/
      auth: {type: bearer, token: "file:`+f+`"}
`), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, "s3cr3t-from-env", cfg.Targets[0].HTTP.Auth.Password.Reveal())
	require.Equal(t, "s3cr3t-from-file", cfg.Targets[1].HTTP.Auth.Token.Reveal())
	require.Equal(t, "<secret>", cfg.Targets[0].HTTP.Auth.Password.String())

	_, err = Parse(strings.NewReader(`
targets:
  - {name: a, kind: http, http: {url: "http://x/", auth: {type: bearer, token: "env:UPWATCH_TEST_UNSET_VAR"}}}
`), "t.yaml", noEnv)
	require.ErrorContains(t, err, "UPWATCH_TEST_UNSET_VAR is not set")
}

func TestRegistryConfig(t *testing.T) {
	cfg, err := Parse(strings.NewReader(""), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, "sqlite", cfg.Registry.Type)

	t.Setenv("UPWATCH_TEST_PG_URL", "postgres://upwatch:hunter2@db:5432/upwatch")
	cfg, err = Parse(strings.NewReader("registry: {type: postgres, postgres: {url: env:UPWATCH_TEST_PG_URL}}\n"), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, "postgres://upwatch:hunter2@db:5432/upwatch", cfg.Registry.Postgres.URL.Reveal())
	require.Equal(t, Lease{TTL: 6 * time.Second, Renew: 2 * time.Second}, cfg.Registry.Lease, "defaults: hand-over within 10s")

	_, err = Parse(strings.NewReader("registry: {type: postgres}\n"), "t.yaml", noEnv)
	require.ErrorContains(t, err, "registry.postgres.url: is required with registry.type postgres")
	_, err = Parse(strings.NewReader("registry: {type: postgres, postgres: {url: \"mysql://u:hunter2@x/db\"}}\n"), "t.yaml", noEnv)
	require.ErrorContains(t, err, "registry.postgres.url: must be a postgres:// URL")
	require.NotContains(t, err.Error(), "hunter2")
	cfg, err = Parse(strings.NewReader("registry: {type: postgres, postgres: {url: env:UPWATCH_TEST_PG_URL}, lease: {ttl: 3s, renew: 1s}}\n"), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, Lease{TTL: 3 * time.Second, Renew: time.Second}, cfg.Registry.Lease)
	_, err = Parse(strings.NewReader("registry: {type: postgres, postgres: {url: env:UPWATCH_TEST_PG_URL}, lease: {ttl: 3s, renew: 2s}}\n"), "t.yaml", noEnv)
	require.ErrorContains(t, err, "registry.lease.renew: must be more than 0 and at most half the TTL (3s)")
	_, err = Parse(strings.NewReader("registry: {type: postgres, postgres: {url: env:UPWATCH_TEST_PG_URL}, lease: {ttl: 1h}}\n"), "t.yaml", noEnv)
	require.ErrorContains(t, err, "registry.lease.ttl: must be between 100ms and 5m")
	_, err = Parse(strings.NewReader("registry: {type: etcd}\n"), "t.yaml", noEnv)
	require.ErrorContains(t, err, `registry.type: unknown registry "etcd"`)
}

// Header values may be env: and file: references, like the auth fields:
// resolved when the config loads and sent resolved (they used to be sent
// literally); a missing variable names the header's path.
func TestHeaderReferences(t *testing.T) {
	t.Setenv("UPWATCH_TEST_HEADER_KEY", "from-env")
	f := filepath.Join(t.TempDir(), "cookie")
	require.NoError(t, os.WriteFile(f, []byte("session=from-file\n"), 0o600))
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	t.Cleanup(srv.Close)
	cfg, err := Parse(strings.NewReader(`
targets:
  - name: a
    kind: http
    http:
      url: "`+srv.URL+`"
      headers:
        X-Api-Key: env:UPWATCH_TEST_HEADER_KEY
        Cookie: file:`+f+`
        Accept: text/plain
`), "t.yaml", noEnv)
	require.NoError(t, err)
	pt := cfg.Targets[0].Target
	res := prober.New(prober.Options{AllowPrivate: true}).Check(t.Context(), &pt)
	require.True(t, res.Success, res.Error)
	require.Equal(t, "from-env", got.Get("X-Api-Key"))
	require.Equal(t, "session=from-file", got.Get("Cookie"))
	require.Equal(t, "text/plain", got.Get("Accept"))

	_, err = Parse(strings.NewReader(`
targets:
  - name: a
    kind: http
    http:
      url: "https://example.com/"
      headers: {X-Api-Key: "env:UPWATCH_TEST_HEADER_MISSING"}
`), "t.yaml", noEnv)
	require.ErrorContains(t, err, "targets[0].http.headers.X-Api-Key: environment variable UPWATCH_TEST_HEADER_MISSING is not set")
}

// TestEveryProblemInOnePass: a misspelt field, a value of the wrong type
// and an invalid field are all reported by one load, in words a user knows
// (no Go type names), each with its path and line.
func TestEveryProblemInOnePass(t *testing.T) {
	_, err := Parse(strings.NewReader(`targets:
  - id: a
    name: A
    kind: http
    intervall: 30s
    http: {url: "http://example.com"}
  - id: b
    kind: tcp
    tcp: {address: "nope"}
    timeout: banana
    labels: [x]
`), "t.yaml", noEnv)
	require.EqualError(t, err, `invalid config t.yaml (5 problems):
  targets[0].intervall: unknown field; did you mean interval? (line 5)
  targets[1].timeout: "banana" is not valid here: want a duration such as "30s" or "1h30m" (line 10)
  targets[1].labels: a list is not valid here: want a mapping of names to values (line 11)
  targets[1].name: is required
  targets[1].tcp.address: must be host:port (address nope: missing port in address)`)
	require.NotContains(t, err.Error(), "config.Target")
	require.NotContains(t, err.Error(), "time.Duration")
}

// TestListenPlaceholder: targets on upwatch's own endpoints follow the
// listen address, from the file or overridden by UPWATCH_LISTEN (-listen),
// so the demo config runs on another port with one flag.
func TestListenPlaceholder(t *testing.T) {
	doc := `listen: 0.0.0.0:8080
targets:
  - {name: web, kind: http, http: {url: "http://{listen}/demo/ok"}}
  - {name: port, kind: tcp, tcp: {address: "{listen}"}}
`
	cfg, err := Parse(strings.NewReader(doc), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8080/demo/ok", cfg.Targets[0].HTTP.URL)
	require.Equal(t, "127.0.0.1:8080", cfg.Targets[1].TCP.Address)

	cfg, err = Parse(strings.NewReader(doc), "t.yaml", func(k string) string {
		return map[string]string{"UPWATCH_LISTEN": "[::1]:9090"}[k]
	})
	require.NoError(t, err)
	require.Equal(t, "http://[::1]:9090/demo/ok", cfg.Targets[0].HTTP.URL)
	require.Equal(t, "[::1]:9090", cfg.Targets[1].TCP.Address)
}

// start_window: 10ms unless set; 0 turns it off; the file, then the
// environment; out of range or unparsable is an error naming the setting.
func TestStartWindow(t *testing.T) {
	parse := func(yaml string, env map[string]string) (*Config, error) {
		return Parse(strings.NewReader(yaml), "t.yaml", func(k string) string { return env[k] })
	}
	cfg, err := parse("", nil)
	require.NoError(t, err)
	require.Equal(t, 10*time.Millisecond, *cfg.StartWindow)
	cfg, err = parse("start_window: 0s\n", nil)
	require.NoError(t, err)
	require.Zero(t, *cfg.StartWindow, "0 stays 0: the window is off")
	cfg, err = parse("start_window: 0s\n", map[string]string{"UPWATCH_START_WINDOW": "5ms"})
	require.NoError(t, err)
	require.Equal(t, 5*time.Millisecond, *cfg.StartWindow)

	_, err = parse("start_window: 200ms\n", nil)
	require.ErrorContains(t, err, "start_window: must be between 0 and 100ms (got 200ms)")
	_, err = parse("start_window: -1ms\n", nil)
	require.ErrorContains(t, err, "start_window: must be between 0 and 100ms")
	_, err = parse("", map[string]string{"UPWATCH_START_WINDOW": "soon"})
	require.ErrorContains(t, err, "env UPWATCH_START_WINDOW: must be a duration")
}
