package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/lease"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry/registrytest"
	"github.com/upwatch/upwatch/secret"
)

// Two servers on one PostgreSQL registry: agent results pushed to either
// are evaluated once, by the lease holder; after it stops, by the other.
func TestAgentResultsReachLeaderPostgres(t *testing.T) {
	pgURL := registrytest.PostgresSchemaURL(t)
	mk, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	admin, _, _, err := api.NewKey()
	require.NoError(t, err)
	getenv := func(k string) string {
		return map[string]string{"UPWATCH_MASTER_KEY": mk, EnvBootstrapKey: admin}[k]
	}
	type server struct {
		*Service
		reg  *prometheus.Registry
		addr string
	}
	newServer := func() server {
		cfg := testConfig(t, agentTestConfig)
		cfg.Registry.Type = "postgres"
		cfg.Registry.Postgres.URL = secret.New(pgURL)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		reg := prometheus.NewRegistry()
		s, err := New(context.Background(), Options{Config: cfg, Listener: ln, Getenv: getenv, Registry: reg, ShutdownTimeout: 10 * time.Second})
		require.NoError(t, err)
		s.Start(context.Background())
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		return server{Service: s, reg: reg, addr: "http://" + ln.Addr().String()}
	}
	a := newServer()
	require.Eventually(t, func() bool { return a.leader.leading.Load() }, 30*time.Second, 10*time.Millisecond)
	b := newServer()
	require.False(t, b.leader.leading.Load())

	st, body := apiCall(t, http.MethodPost, b.addr+"/api/v1/keys", admin, map[string]any{"name": "eu", "scopes": []string{"agent"}, "location": "eu-west"})
	require.Equal(t, http.StatusCreated, st, "%v", body)
	key := body["key"].(string)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	batch := func(slots ...int) fleet.Batch {
		var b fleet.Batch
		for _, s := range slots {
			ts := at.Add(time.Duration(s) * time.Second)
			b.Results = append(b.Results, prober.Result{TargetID: "eu", Target: "eu", Kind: "tcp", Location: "eu-west", Start: ts, Scheduled: ts, Success: true})
		}
		return b
	}
	push := func(s server, b fleet.Batch) map[string]any {
		t.Helper()
		st, body := apiCall(t, http.MethodPost, s.addr+"/api/v1/agent/results", key, b)
		require.Equal(t, http.StatusOK, st, "%v", body)
		return body
	}

	// Pushed to the follower: evaluated by the leader, once.
	require.Equal(t, map[string]any{"accepted": 2.0, "duplicates": 0.0, "rejected": 0.0}, push(b, batch(0, 1)))
	require.Equal(t, map[string]any{"accepted": 0.0, "duplicates": 2.0, "rejected": 0.0}, push(b, batch(0, 1)))
	require.Equal(t, map[string]any{"accepted": 0.0, "duplicates": 2.0, "rejected": 0.0}, push(a, batch(0, 1)))
	require.Equal(t, 2, checksCounted(t, a.reg, "location", "eu-west"))
	require.Zero(t, checksCounted(t, b.reg, "location", "eu-west"))
	require.Zero(t, testutil.ToFloat64(b.leader.notEvaluated), "the follower evaluated nothing and dropped nothing")
	_, ok := a.engine.State("eu")
	require.True(t, ok, "the leader's engine saw the results")

	// The leader stops: the other takes over and takes pushes itself.
	require.NoError(t, a.Stop(context.Background()))
	require.Eventually(t, func() bool { return b.leader.leading.Load() }, 30*time.Second, 10*time.Millisecond)
	require.Equal(t, map[string]any{"accepted": 1.0, "duplicates": 2.0, "rejected": 0.0}, push(b, batch(0, 1, 2)))
	require.Equal(t, 1, checksCounted(t, b.reg, "location", "eu-west"))
	require.Zero(t, testutil.ToFloat64(b.leader.notEvaluated))
}

type fakeHolders struct {
	h     lease.Holder
	ok    bool
	err   error
	calls int
}

func (f *fakeHolders) LeaseHolder(context.Context, string) (lease.Holder, bool, error) {
	f.calls++
	return f.h, f.ok, f.err
}

// resultsRoute: here while leading; the holder's URL, kept a second; no
// server while nobody holds the lease, this server is taking it over, or
// the holder advertises no URL; a registry error is not kept.
func TestResultsRoute(t *testing.T) {
	leading := false
	f := &fakeHolders{}
	r := &resultsRoute{holders: f, self: "me", leading: func() bool { return leading }}
	leading = true
	to, err := r.route(t.Context())
	require.NoError(t, err)
	require.Nil(t, to)
	require.Zero(t, f.calls)
	leading = false

	for _, tc := range []struct {
		h  lease.Holder
		ok bool
	}{{lease.Holder{}, false}, {lease.Holder{ID: "me", URL: "http://me:1"}, true}, {lease.Holder{ID: "old"}, true}} {
		*f = fakeHolders{h: tc.h, ok: tc.ok}
		r.asked = time.Time{}
		_, err = r.route(t.Context())
		require.ErrorIs(t, err, api.ErrNoResultsServer, "%+v", tc)
	}

	*f = fakeHolders{err: errors.New("registry down")}
	r.asked = time.Time{}
	_, err = r.route(t.Context())
	require.ErrorContains(t, err, "registry down")
	*f = fakeHolders{h: lease.Holder{ID: "other", URL: "http://10.0.0.2:8080/up"}, ok: true}
	to, err = r.route(t.Context())
	require.NoError(t, err, "an error is not kept")
	require.Equal(t, "http://10.0.0.2:8080/up", to.String())
	_, _ = r.route(t.Context())
	require.Equal(t, 1, f.calls, "asked once a second at most")
}

func TestAdvertiseURL(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	require.Equal(t, "http://127.0.0.1:8080", advertiseURL(&config.Config{}, addr))
	cfg := &config.Config{Server: config.Server{AdvertiseURL: "https://mon-1.internal:8443/up/"}}
	require.Equal(t, "https://mon-1.internal:8443/up", advertiseURL(cfg, addr))
	got := advertiseURL(&config.Config{}, &net.TCPAddr{IP: net.IPv6unspecified, Port: 9000})
	require.NotContains(t, got, "[::]", "an unspecified address is no place to reach")
	require.Contains(t, got, ":9000")
}
