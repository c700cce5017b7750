package app

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry/registrytest"
	"github.com/upwatch/upwatch/secret"
)

// unlabelled returns the value of a series without labels, -2 if absent.
func unlabelled(t *testing.T, exposition, name string) string {
	t.Helper()
	for line := range strings.Lines(exposition) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return "absent"
}

// The embedded registry's server always evaluates alerts, as before.
func TestSQLiteServerAlwaysLeads(t *testing.T) {
	r := start(t, testConfig(t, ""), Options{})
	require.Equal(t, "1", unlabelled(t, get(t, r.addr+"/metrics"), "upwatch_leader"))
}

// Two servers on one PostgreSQL registry: one leads; a result given to the
// other is not evaluated there; when the leader stops cleanly the other
// takes over at once (the lease is released) with the state the first one
// committed.
func TestSharedRegistryOneLeader(t *testing.T) {
	url := registrytest.PostgresSchemaURL(t)
	target := httptest.NewServer(&flapper{})
	defer target.Close()
	mk, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	getenv := func(k string) string { return map[string]string{"UPWATCH_MASTER_KEY": mk}[k] }
	newServer := func() *Service {
		cfg := testConfig(t, `
allow_private_targets: true
targets:
  - {name: web, kind: http, interval: 1s, timeout: 500ms, http: {url: "`+target.URL+`/"}}
`)
		cfg.Registry.Type = "postgres"
		cfg.Registry.Postgres.URL = secret.New(url)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		s, err := New(context.Background(), Options{Config: cfg, Listener: ln, Getenv: getenv, ShutdownTimeout: 10 * time.Second})
		require.NoError(t, err)
		s.Start(context.Background())
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		return s
	}
	a := newServer()
	require.Eventually(t, func() bool {
		st, ok := a.engine.State("web")
		return ok && st.Status == alerting.StatusUp
	}, 30*time.Second, 20*time.Millisecond, "a leads and checks")
	b := newServer()
	require.True(t, a.leader.leading.Load())
	require.False(t, b.leader.leading.Load(), "one leader")
	require.False(t, b.checksLocal(), "the follower runs no local checks")

	// The seam: a result handed to the follower is not evaluated there.
	res := prober.Result{TargetID: "web", Target: "web", Kind: "http", Start: time.Now(), Success: false, ErrorClass: prober.ClassStatus}
	require.NoError(t, b.evaluate.Observe(context.Background(), res))
	require.Equal(t, 1.0, testutil.ToFloat64(b.leader.notEvaluated))

	stopped := time.Now()
	require.NoError(t, a.Stop(context.Background()))
	require.Eventually(t, func() bool { return b.leader.leading.Load() }, 30*time.Second, 10*time.Millisecond)
	t.Logf("hand-over after a clean stop: %s", time.Since(stopped).Round(time.Millisecond))
	require.Less(t, time.Since(stopped), 6*time.Second, "released, not left to expire")
	st, ok := b.engine.State("web")
	require.True(t, ok)
	require.Equal(t, alerting.StatusUp, st.Status, "the new leader starts from the committed state")
	require.True(t, b.checksLocal())
}
