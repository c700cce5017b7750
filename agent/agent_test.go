package agent

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/spool"
)

// fakeServer takes result batches, or answers 503 while down; it keeps
// what it took, in order, and answers one batch in three with a lost
// reply (it takes the batch, then fails) to make the agent send it again.
type fakeServer struct {
	down  atomic.Bool
	mu    sync.Mutex
	got   []prober.Result
	seen  map[time.Time]bool
	calls int
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.down.Load() || r.URL.Path != "/api/v1/agent/results" {
		http.Error(w, "away", http.StatusServiceUnavailable)
		return
	}
	var b fleet.Batch
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var reply fleet.BatchReply
	for _, res := range b.Results {
		if f.seen[res.Scheduled] { // the server's idempotence
			reply.Duplicates++
			continue
		}
		f.seen[res.Scheduled] = true
		f.got = append(f.got, res)
		reply.Accepted++
	}
	f.calls++
	if f.calls%3 == 0 {
		http.Error(w, "reply lost", http.StatusBadGateway)
		return
	}
	_ = json.NewEncoder(w).Encode(reply)
}

// TestSpoolReplayInOrder: results checked while the server is away are
// spooled and, once it is back, reach it in the order they were checked,
// each once, though replies get lost.
func TestSpoolReplayInOrder(t *testing.T) {
	fs := &fakeServer{seen: map[time.Time]bool{}}
	fs.down.Store(true)
	srv := httptest.NewServer(fs)
	defer srv.Close()

	sp, err := spool.Open(spool.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	defer sp.Close()
	a := &agent{o: Options{RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}, log: slog.New(slog.DiscardHandler),
		c: &client{base: srv.URL, key: "uw_x", http: srv.Client()}, sp: sp, m: newAgentMetrics(prometheus.NewRegistry()), maxBatch: 7}
	b := newBatcher(sp, a.currentMaxBatch, a.log)

	ctx := t.Context()
	done := make(chan struct{})
	go func() {
		sp.Replay(ctx, a.push, spool.ReplayOptions{RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond})
		close(done)
	}()
	at := clocktest.Noon()
	const n = 100
	for i := range n {
		b.add(ctx, prober.Result{TargetID: "t", Location: "eu", Scheduled: at.Add(time.Duration(i) * time.Second)})
		if i%10 == 9 {
			require.NoError(t, b.flush(ctx))
		}
	}
	require.Equal(t, int64(n), sp.Stats().Samples, "all spooled while the server is away")
	fs.down.Store(false)
	require.Eventually(t, func() bool { return sp.Stats().Samples == 0 }, 30*time.Second, 5*time.Millisecond)

	fs.mu.Lock()
	defer fs.mu.Unlock()
	require.Len(t, fs.got, n)
	for i, r := range fs.got {
		require.True(t, r.Scheduled.Equal(at.Add(time.Duration(i)*time.Second)), "result %d out of order: %s", i, r.Scheduled)
	}
	require.Greater(t, fs.calls, n/7, "batches were resent after lost replies")
}

// TestPushMetrics: -push-metrics sends the agent's metrics, labelled with
// the agent and its location, in the Prometheus text format.
func TestPushMetrics(t *testing.T) {
	bodies := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rd = zr
		}
		b, _ := io.ReadAll(rd)
		select {
		case bodies <- string(b):
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m := newAgentMetrics(reg)
	m.targets.Set(3)
	o := Options{Registry: reg, PushMetrics: srv.URL + "/api/v1/import/prometheus", PushInterval: 20 * time.Millisecond,
		Location: "eu-west", Logger: slog.New(slog.DiscardHandler)}
	require.NoError(t, pushMetrics(t.Context(), o, "agt-1"))
	select {
	case b := <-bodies:
		require.Contains(t, b, `upwatch_agent_targets{agent="agt-1",location="eu-west"} 3`)
	case <-time.After(30 * time.Second):
		t.Fatal("no push")
	}
}

// TestTooLargeBatchIsSplit: a batch the server refuses as too large (its
// results carry evidence) is pushed in halves, not dropped: every result
// arrives once.
func TestTooLargeBatchIsSplit(t *testing.T) {
	const limit = 4 // results the stand-in takes in one request
	var mu sync.Mutex
	seen := map[time.Time]int{}
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b fleet.Batch
		require.NoError(t, json.NewDecoder(r.Body).Decode(&b))
		mu.Lock()
		defer mu.Unlock()
		requests++
		if len(b.Results) > limit {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = w.Write([]byte(`{"detail":"the body is larger than 16 MiB"}`))
			return
		}
		for _, res := range b.Results {
			seen[res.Scheduled]++
		}
		_ = json.NewEncoder(w).Encode(fleet.BatchReply{Accepted: len(b.Results)})
	}))
	defer srv.Close()
	a := &agent{log: slog.New(slog.DiscardHandler), c: &client{base: srv.URL, key: "uw_x", http: srv.Client()},
		m: newAgentMetrics(prometheus.NewRegistry())}
	at := clocktest.Noon()
	var rs []prober.Result
	for i := range 13 {
		rs = append(rs, prober.Result{TargetID: "t", Location: "eu", Scheduled: at.Add(time.Duration(i) * time.Second)})
	}
	require.NoError(t, a.pushResults(t.Context(), rs))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 13)
	for at, n := range seen {
		require.Equal(t, 1, n, "result at %s arrived %d times", at, n)
	}
	require.Greater(t, requests, 4, "split into several requests")
}
