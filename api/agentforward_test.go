package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/prober"
)

// localAgents ingests every result as accepted and counts the pushes;
// while deposed it refuses them as a server that lost the lease does.
type localAgents struct {
	pushes  atomic.Int32
	deposed atomic.Bool
}

func (a *localAgents) Heartbeat(context.Context, fleet.Member) (fleet.Welcome, error) {
	return fleet.Welcome{}, nil
}

func (a *localAgents) Assignment(context.Context, string, string, string, time.Duration) (fleet.Assignment, bool, error) {
	return fleet.Assignment{}, false, nil
}

func (a *localAgents) Ingest(_ context.Context, _ string, rs []prober.Result) (fleet.BatchReply, error) {
	if a.deposed.Load() {
		return fleet.BatchReply{}, fmt.Errorf("%w: lost the lease", ErrNoResultsServer)
	}
	a.pushes.Add(1)
	return fleet.BatchReply{Accepted: len(rs)}, nil
}

func (a *localAgents) MaxBatch() int { return 1000 }

// TestAgentResultsForwarded: a server that does not evaluate alerts hands
// a push, as it came (the agent's Authorization, the body), to the one
// that does and answers what it answered; while none is known, the holder
// cannot be reached, or the push was already forwarded once, it answers
// 503 with Retry-After so the agent sends it again.
func TestAgentResultsForwarded(t *testing.T) {
	var seen struct {
		path, auth, forwarded, body string
		n                           atomic.Int32
	}
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen.path, seen.auth, seen.forwarded, seen.body = r.URL.Path, r.Header.Get("Authorization"), r.Header.Get(ForwardedHeader), string(b)
		seen.n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"accepted":1,"duplicates":0,"rejected":0}`)
	}))
	defer leader.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	var route atomic.Value // func() (*url.URL, error)
	local := &localAgents{}
	h := newHarness(t, func(o *Options) {
		o.Agents = local
		o.ResultsRoute = func(context.Context) (*url.URL, error) { return route.Load().(func() (*url.URL, error))() }
	})
	r := h.do(http.MethodPost, Prefix+"/keys", h.key(tenantA, ScopeAdmin), map[string]any{"name": "eu", "scopes": []any{"agent"}, "location": "eu-west"})
	require.Equal(t, http.StatusCreated, r.Status, string(r.Body))
	key := r.JSON(t)["key"].(string)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	batch := fleet.Batch{Results: []prober.Result{{TargetID: "eu", Location: "eu-west", Start: at, Scheduled: at, Success: true}}}
	raw, err := json.Marshal(batch)
	require.NoError(t, err)
	to := func(u string) func() (*url.URL, error) {
		return func() (*url.URL, error) { return url.Parse(u) }
	}

	// To the holder, under its path prefix.
	route.Store(to(leader.URL + "/upwatch"))
	r = h.do(http.MethodPost, Prefix+"/agent/results", key, raw)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, map[string]any{"accepted": 1.0, "duplicates": 0.0, "rejected": 0.0}, r.JSON(t))
	require.Equal(t, "/upwatch"+Prefix+"/agent/results", seen.path)
	require.Equal(t, "Bearer "+key, seen.auth)
	require.Equal(t, "1", seen.forwarded)
	require.JSONEq(t, string(raw), seen.body)
	require.Zero(t, local.pushes.Load(), "not ingested here")

	// Not authenticated here: not forwarded.
	r = h.do(http.MethodPost, Prefix+"/agent/results", "uw_"+strings.Repeat("x", 43), raw)
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.Equal(t, int32(1), seen.n.Load())

	unavailable := func(r response, detail string) {
		t.Helper()
		require.Equal(t, http.StatusServiceUnavailable, r.Status, string(r.Body))
		require.Equal(t, "1", r.Header.Get("Retry-After"))
		require.Contains(t, r.problem(t).Detail, detail)
	}
	// A forwarded push is not forwarded again (the lease moved meanwhile).
	unavailable(h.do(http.MethodPost, Prefix+"/agent/results", key, raw, ForwardedHeader, "1"), "no longer evaluates alerts")
	// Nobody holds the lease; the registry cannot say; the holder is away.
	route.Store(func() (*url.URL, error) { return nil, ErrNoResultsServer })
	unavailable(h.do(http.MethodPost, Prefix+"/agent/results", key, raw), "no server evaluates alerts right now")
	route.Store(func() (*url.URL, error) { return nil, errors.New("registry down") })
	unavailable(h.do(http.MethodPost, Prefix+"/agent/results", key, raw), "no server evaluates alerts right now")
	route.Store(to(gone.URL))
	unavailable(h.do(http.MethodPost, Prefix+"/agent/results", key, raw), "did not take the results")
	require.Equal(t, int32(1), seen.n.Load())
	require.Zero(t, local.pushes.Load())

	// The body stays bounded on the way.
	route.Store(to(leader.URL))
	big := `{"results":[` + strings.Repeat(" ", MaxBatchBytes) + `]}`
	r = h.do(http.MethodPost, Prefix+"/agent/results", key, big)
	require.Equal(t, http.StatusRequestEntityTooLarge, r.Status, string(r.Body))

	// This server leads: it ingests the push itself.
	route.Store(func() (*url.URL, error) { return nil, nil })
	r = h.do(http.MethodPost, Prefix+"/agent/results", key, raw)
	require.Equal(t, http.StatusOK, r.Status, string(r.Body))
	require.Equal(t, int32(1), local.pushes.Load())

	// Deposed between routing the push here and taking it: 503, retry.
	local.deposed.Store(true)
	unavailable(h.do(http.MethodPost, Prefix+"/agent/results", key, raw), "lost the lease")
}
