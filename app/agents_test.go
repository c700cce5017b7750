package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry/registrytest"
	"github.com/upwatch/upwatch/secret"
)

const agentTestConfig = `
server: {check_locally: false}
agents: {max_batch: 5}
targets:
  - {name: eu, kind: tcp, interval: 1m, tcp: {address: "127.0.0.1:1"}, locations: [eu-west]}
  - {name: us, kind: tcp, interval: 1m, tcp: {address: "127.0.0.1:1"}, locations: [us-east]}
  - {name: all, kind: tcp, interval: 1m, tcp: {address: "127.0.0.1:1"}}
`

// TestAgentResultsIngestedOnce pushes one batch of agent results twice,
// then once more after a restart: the results reach the pipeline (checks
// counted with the agent's location) once.
func TestAgentResultsIngestedOnce(t *testing.T) {
	cfg := testConfig(t, agentTestConfig)
	testAgentIngest(t, cfg, cfg, nil)
}

// With PostgreSQL the second server is another one on the same database:
// a batch the first took is a resend to it too.
func TestAgentResultsIngestedOncePostgres(t *testing.T) {
	url := registrytest.PostgresSchemaURL(t)
	mk, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	pg := func() *config.Config {
		cfg := testConfig(t, agentTestConfig)
		cfg.Registry.Type = "postgres"
		cfg.Registry.Postgres.URL = secret.New(url)
		return cfg
	}
	testAgentIngest(t, pg(), pg(), map[string]string{"UPWATCH_MASTER_KEY": mk})
}

func testAgentIngest(t *testing.T, cfg, second *config.Config, env map[string]string) {
	admin, _, _, err := api.NewKey()
	require.NoError(t, err)
	base := clocktest.Noon()
	opts := func(reg *prometheus.Registry) Options {
		return Options{Registry: reg, Now: clocktest.Running(base), Getenv: func(name string) string {
			if name == EnvBootstrapKey {
				return admin
			}
			return env[name]
		}}
	}
	reg := prometheus.NewRegistry()
	r := start(t, cfg, opts(reg))

	// Agent keys: scope agent alone, with a location.
	st, body := apiCall(t, http.MethodPost, r.addr+"/api/v1/keys", admin, map[string]any{"name": "x", "scopes": []string{"agent", "read"}, "location": "eu-west"})
	require.Equal(t, http.StatusUnprocessableEntity, st, "%v", body)
	require.Contains(t, body["errors"], map[string]any{"path": "scopes", "message": "scope agent cannot be combined with other scopes"})
	st, body = apiCall(t, http.MethodPost, r.addr+"/api/v1/keys", admin, map[string]any{"name": "x", "scopes": []string{"agent"}})
	require.Equal(t, http.StatusUnprocessableEntity, st)
	require.Contains(t, body["errors"], map[string]any{"path": "location", "message": "is required for scope agent"})
	st, body = apiCall(t, http.MethodPost, r.addr+"/api/v1/keys", admin, map[string]any{"name": "eu", "scopes": []string{"agent"}, "location": "eu-west"})
	require.Equal(t, http.StatusCreated, st, "%v", body)
	require.Equal(t, []any{"agent"}, body["scopes"])
	key := body["key"].(string)

	// An admin key is not an agent key.
	st, _ = apiCall(t, http.MethodPost, r.addr+"/api/v1/agent/results", admin, fleet.Batch{})
	require.Equal(t, http.StatusForbidden, st)

	at := base.Add(-10 * time.Minute)
	res := func(target string, slot int) prober.Result {
		return prober.Result{TargetID: target, Target: target, Kind: "tcp", Location: "eu-west",
			Start: at.Add(time.Duration(slot) * time.Minute), Scheduled: at.Add(time.Duration(slot) * time.Minute), Success: true}
	}
	batch := fleet.Batch{Results: []prober.Result{res("eu", 0), res("eu", 1), res("all", 0), res("us", 0)}}
	push := func(addr string) map[string]any {
		// On a shared registry a server takes results once it leads
		// (503 until then).
		var st int
		var body map[string]any
		require.Eventually(t, func() bool {
			st, body = apiCall(t, http.MethodPost, addr+"/api/v1/agent/results", key, batch)
			return st != http.StatusServiceUnavailable
		}, 30*time.Second, 50*time.Millisecond)
		require.Equal(t, http.StatusOK, st, "%v", body)
		return body
	}
	require.Equal(t, map[string]any{"accepted": 3.0, "duplicates": 0.0, "rejected": 1.0}, push(r.addr), "us is not checked from eu-west")
	require.Equal(t, map[string]any{"accepted": 0.0, "duplicates": 3.0, "rejected": 1.0}, push(r.addr))
	require.Equal(t, 3, checksCounted(t, reg, "location", "eu-west"))

	// Bad batches are refused whole, naming the field.
	wrong := res("eu", 5)
	wrong.Location = "us-east"
	st, body = apiCall(t, http.MethodPost, r.addr+"/api/v1/agent/results", key, fleet.Batch{Results: []prober.Result{res("eu", 4), wrong}})
	require.Equal(t, http.StatusUnprocessableEntity, st)
	require.Equal(t, "results[1].location", body["errors"].([]any)[0].(map[string]any)["path"])
	six := fleet.Batch{Results: []prober.Result{res("eu", 10), res("eu", 11), res("eu", 12), res("eu", 13), res("eu", 14), res("eu", 15)}}
	st, _ = apiCall(t, http.MethodPost, r.addr+"/api/v1/agent/results", key, six)
	require.Equal(t, http.StatusRequestEntityTooLarge, st, "agents.max_batch is 5")

	// Assignments: heartbeat first, then eu-west's targets only.
	st, _ = apiCall(t, http.MethodGet, r.addr+"/api/v1/agent/assignments?agent=a1", key, nil)
	require.Equal(t, http.StatusConflict, st)
	st, body = apiCall(t, http.MethodPost, r.addr+"/api/v1/agent/heartbeat", key, fleet.Hello{ID: "a1", Name: "host"})
	require.Equal(t, http.StatusOK, st, "%v", body)
	require.Equal(t, "eu-west", body["location"])
	st, body = apiCall(t, http.MethodGet, r.addr+"/api/v1/agent/assignments?agent=a1", key, nil)
	require.Equal(t, http.StatusOK, st, "%v", body)
	var names []string
	for _, w := range body["targets"].([]any) {
		tg, err := fleet.DecodeTarget(fleet.WireTarget{Spec: w.(map[string]any)["spec"].(string)})
		require.NoError(t, err)
		names = append(names, tg.Name)
	}
	require.ElementsMatch(t, []string{"eu", "all"}, names)

	// After a restart (or on another server) the batch is still recognised.
	r.shutdown(t)
	reg = prometheus.NewRegistry()
	r = start(t, second, opts(reg))
	require.Equal(t, map[string]any{"accepted": 0.0, "duplicates": 3.0, "rejected": 1.0}, push(r.addr))
	require.Equal(t, 0, checksCounted(t, reg, "location", "eu-west"))

	// A revoked agent key is refused.
	st, body = apiCall(t, http.MethodGet, r.addr+"/api/v1/keys", admin, nil)
	require.Equal(t, http.StatusOK, st)
	for _, k := range body["items"].([]any) {
		if k := k.(map[string]any); k["location"] == "eu-west" {
			st, _ = apiCall(t, http.MethodDelete, r.addr+"/api/v1/keys/"+k["id"].(string), admin, nil)
			require.Equal(t, http.StatusNoContent, st)
		}
	}
	st, _ = apiCall(t, http.MethodPost, r.addr+"/api/v1/agent/results", key, batch)
	require.Equal(t, http.StatusUnauthorized, st)
}

// BenchmarkAgentIngest pushes batches of 1000 agent results (max_batch)
// through the API of a running server (SQLite registry and store); it
// reports results/s.
func BenchmarkAgentIngest(b *testing.B) {
	cfg, err := config.Parse(strings.NewReader(`
server: {check_locally: false}
targets:
  - {name: eu, kind: tcp, interval: 1s, tcp: {address: "127.0.0.1:1"}, locations: [eu-west]}
`), "bench.yaml", func(string) string { return "" })
	require.NoError(b, err)
	cfg.DataDir = b.TempDir()
	admin, _, _, err := api.NewKey()
	require.NoError(b, err)
	base := clocktest.Noon()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Listener: ln, Now: clocktest.Running(base), Getenv: func(name string) string {
			if name == EnvBootstrapKey {
				return admin
			}
			return ""
		}})
	}()
	defer func() { cancel(); <-done }()
	addr := "http://" + ln.Addr().String()
	require.Eventually(b, func() bool {
		resp, err := http.Get(addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond)
	key := benchAgentKey(b, addr, admin)
	const n = 1000
	slot := 0
	b.ResetTimer()
	for range b.N {
		batch := fleet.Batch{Results: make([]prober.Result, n)}
		for i := range batch.Results {
			at := base.Add(-time.Hour).Add(time.Duration(slot) * time.Millisecond)
			slot++
			batch.Results[i] = prober.Result{TargetID: "eu", Target: "eu", Kind: "tcp", Location: "eu-west", Start: at, Scheduled: at, Success: true}
		}
		body, _ := json.Marshal(batch)
		req, _ := http.NewRequest(http.MethodPost, addr+"/api/v1/agent/results", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(b, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(b, http.StatusOK, resp.StatusCode)
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "results/s")
}

func benchAgentKey(b *testing.B, addr, admin string) string {
	body, _ := json.Marshal(map[string]any{"name": "eu", "scopes": []string{"agent"}, "location": "eu-west"})
	req, _ := http.NewRequest(http.MethodPost, addr+"/api/v1/keys", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	defer resp.Body.Close()
	var k map[string]any
	require.NoError(b, json.NewDecoder(resp.Body).Decode(&k))
	return k["key"].(string)
}

// TestLocalTargets: serve checks, as its own location, the targets checked
// from it or from everywhere, unless server.check_locally is false.
func TestLocalTargets(t *testing.T) {
	all := []prober.Target{{ID: "any"}, {ID: "eu", Locations: []string{"eu-west"}}, {ID: "here", Locations: []string{"local", "eu-west"}}}
	ids := func(ts []prober.Target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	cfg := testConfig(t, "")
	require.Equal(t, []string{"any", "here"}, ids(localTargets(cfg, all)))
	cfg = testConfig(t, "location: eu-west\n")
	require.Equal(t, []string{"any", "eu", "here"}, ids(localTargets(cfg, all)))
	cfg = testConfig(t, "server: {check_locally: false}\n")
	require.Empty(t, localTargets(cfg, all))
}
