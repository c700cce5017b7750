package influx

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/spool"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// standIn is an InfluxDB stand-in whose answer to each write is chosen by
// the test per batch: the batch number is the target id "batch-N" of its
// samples. hold, if set for a batch, is waited on before answering.
type standIn struct {
	*httptest.Server
	mu      sync.Mutex
	answer  map[int]int           // batch → status (default 204)
	hold    map[int]chan struct{} // batch → closed when it may answer
	arrived chan int              // every request's batch, as it arrives
	written map[int]int           // batch → times answered 204
}

var batchID = regexp.MustCompile(`target_id=batch-(\d+)`)

func newStandIn(t *testing.T) *standIn {
	f := &standIn{arrived: make(chan int, 100), written: map[int]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := batchID.FindSubmatch(body)
		if r.URL.Path != "/api/v2/write" || m == nil {
			http.NotFound(w, r)
			return
		}
		n, _ := strconv.Atoi(string(m[1]))
		if bytes.Count(body, []byte("target_id=batch-")) != bytes.Count(body, m[0]) {
			http.Error(w, "two batches in one request", http.StatusBadRequest) // fails the test
			return
		}
		f.mu.Lock()
		st, hold := f.answer[n], f.hold[n]
		f.mu.Unlock()
		f.arrived <- n
		if hold != nil {
			<-hold
		}
		if st == 0 || st == http.StatusNoContent {
			f.mu.Lock()
			f.written[n]++
			f.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(st)
		fmt.Fprintf(w, `{"code":"x","message":"status %d"}`, st)
	}))
	t.Cleanup(f.Close)
	return f
}

// script sets the answers and holds for the next store.
func (f *standIn) script(answer map[int]int, hold map[int]chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer, f.hold = answer, hold
}

func (f *standIn) writes() map[int]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int]int{}
	for k, v := range f.written {
		out[k] = v
	}
	return out
}

// awaitArrivals waits until the batches in want have all arrived once more.
func (f *standIn) awaitArrivals(t *testing.T, want ...int) {
	t.Helper()
	left := map[int]int{}
	for _, n := range want {
		left[n]++
	}
	for len(left) > 0 {
		n := <-f.arrived
		if left[n]--; left[n] <= 0 {
			delete(left, n)
		}
	}
}

// spoolBatches spools batches 0..n-1 of size samples each in dir, through
// a store that cannot reach InfluxDB.
func spoolBatches(t *testing.T, dir string, n, size int) {
	a, err := Open(Options{URL: closedURL(t), Bucket: "b", Spool: spool.Options{Dir: dir},
		Replay: spool.ReplayOptions{RetryMin: time.Hour}})
	require.NoError(t, err)
	for b := range n {
		rs := make([]prober.Result, size)
		for i := range rs {
			rs[i] = tsdbtest.Sample(fmt.Sprintf("batch-%d", b), time.Duration(b*size+i)*time.Second, time.Millisecond)
		}
		require.NoError(t, a.WriteSamples(context.Background(), rs))
	}
	require.NoError(t, a.Close())
}

func waitRecords(t *testing.T, s *Store, n int64) {
	t.Helper()
	for { // bounded by the test's own timeout, not by a clock here
		if st, _ := s.SpoolStats(); st.Records == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReplayCursorWaitsForEarlierBatches: with four spooled batches in
// flight at once, later batches that InfluxDB took do not move the spool's
// cursor past an earlier one that failed or is still unanswered; a restart
// replays from the earliest unwritten batch, and a permanent refusal is
// still dropped and counted.
func TestReplayCursorWaitsForEarlierBatches(t *testing.T) {
	const size = 10
	dir := t.TempDir()
	spoolBatches(t, dir, 4, size)
	f := newStandIn(t)
	open := func() *Store {
		s, err := Open(Options{URL: f.URL, Bucket: "b", Spool: spool.Options{Dir: dir},
			Replay: spool.ReplayOptions{RetryMin: time.Hour, InFlight: 4}})
		require.NoError(t, err)
		return s
	}
	stats := func(s *Store) spool.Stats {
		st, _ := s.SpoolStats()
		return st
	}

	// 1. Batch 0 is slow and then fails, batch 1 fails at once, batches 2
	// and 3 are written: nothing may be committed.
	release := make(chan struct{})
	f.script(map[int]int{0: http.StatusServiceUnavailable, 1: http.StatusServiceUnavailable},
		map[int]chan struct{}{0: release})
	s := open()
	f.awaitArrivals(t, 0, 1, 2, 3) // all four in flight together
	close(release)
	require.NoError(t, s.Close()) // waits for the sends in flight
	require.Equal(t, map[int]int{2: 1, 3: 1}, f.writes())
	require.Equal(t, spool.Stats{Bytes: stats(s).Bytes, Samples: 4 * size, Records: 4}, stats(s),
		"batches 2 and 3 were written, but 0 and 1 before them were not")

	// 2. After a restart batch 0 is written, batch 1 is slow and fails,
	// batches 2 and 3 are written again: the cursor moves past 0 only.
	release = make(chan struct{})
	f.script(map[int]int{1: http.StatusServiceUnavailable}, map[int]chan struct{}{1: release})
	s = open()
	f.awaitArrivals(t, 0, 1, 2, 3)
	waitRecords(t, s, 3)
	close(release)
	require.NoError(t, s.Close())
	require.Equal(t, map[int]int{0: 1, 2: 2, 3: 2}, f.writes())
	require.EqualValues(t, 3*size, stats(s).Samples, "batch 0 committed; 1, 2 and 3 wait")

	// 3. After another restart InfluxDB refuses batch 2 for good and takes
	// the rest: it is dropped and counted, and the spool empties.
	f.script(map[int]int{2: http.StatusBadRequest}, nil)
	s = open()
	waitRecords(t, s, 0)
	require.EqualValues(t, size, testutil.ToFloat64(s.rejected))
	require.NoError(t, s.Close())
	require.Equal(t, map[int]int{0: 1, 1: 1, 2: 2, 3: 3}, f.writes())
	require.Zero(t, stats(s).Samples)
}
