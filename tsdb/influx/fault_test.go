package influx

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/spool"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// fakeInflux accepts /api/v2/write and remembers every point by series and
// timestamp, in arrival order. status, when not 0, is answered instead.
type fakeInflux struct {
	*httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	order  []string       // point keys in arrival order
	seen   map[string]int // how often each point arrived
}

func newFake(t *testing.T) *fakeInflux {
	f := &fakeInflux{seen: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v2/write" {
			http.NotFound(w, r)
			return
		}
		if st := int(f.status.Load()); st != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"code":"unavailable","message":"status %d"}`, st)
			return
		}
		sc := bufio.NewScanner(r.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var keys []string
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				continue
			}
			keys = append(keys, pointKey(line))
		}
		f.mu.Lock()
		for _, k := range keys {
			f.order = append(f.order, k)
			f.seen[k]++
		}
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(f.Close)
	return f
}

// pointKey is the series (measurement and tags) and timestamp of a line.
func pointKey(line string) string {
	series := line[:strings.Index(line, " up=")]
	return series + " " + line[strings.LastIndexByte(line, ' ')+1:]
}

func (f *fakeInflux) points() (order []string, seen map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen = make(map[string]int, len(f.seen))
	for k, v := range f.seen {
		seen[k] = v
	}
	return append([]string(nil), f.order...), seen
}

// batches returns n batches of size samples of target "f", starts
// increasing by 1ms across all of them.
func batches(first, n, size int) [][]prober.Result {
	var out [][]prober.Result
	for b := range n {
		rs := make([]prober.Result, size)
		for i := range rs {
			k := (first+b)*size + i
			rs[i] = tsdbtest.Sample("f", time.Duration(k)*time.Millisecond, time.Duration(k%500)*time.Millisecond)
		}
		out = append(out, rs)
	}
	return out
}

func keyOf(r prober.Result) string {
	return pointKey(strings.TrimSuffix(string(AppendLine(nil, &r, DefaultTenant)), "\n"))
}

func waitSpoolEmpty(t *testing.T, s *Store) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, _ := s.SpoolStats()
		return st.Records == 0
	}, 2*time.Minute, 5*time.Millisecond, "spool never drained")
}

// TestSpoolOn503ReplaysInOrderExactlyOnce: one batch in flight keeps the
// order of arrival; several (the default) keep exactly once, in any order.
func TestSpoolOn503ReplaysInOrderExactlyOnce(t *testing.T) {
	t.Run("sequential", func(t *testing.T) { testSpoolOn503(t, 1) })
	t.Run("concurrent", func(t *testing.T) { testSpoolOn503(t, 0) })
}

func testSpoolOn503(t *testing.T, inFlight int) {
	f := newFake(t)
	reg := prometheus.NewRegistry()
	s := openStore(t, Options{URL: f.URL, Bucket: "b", Registerer: reg,
		Spool:  spool.Options{Dir: t.TempDir(), MaxBytes: 16 << 20},
		Replay: spool.ReplayOptions{RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, InFlight: inFlight}})
	ctx := context.Background()
	all := batches(0, 30, 50)
	for i, b := range all {
		switch i {
		case 10:
			f.status.Store(http.StatusServiceUnavailable)
		case 20:
			st, _ := s.SpoolStats()
			require.EqualValues(t, 10*50, st.Samples, "batches written while InfluxDB answered 503 are spooled")
			f.status.Store(0)
		}
		require.NoError(t, s.WriteSamples(ctx, b), "batch %d", i)
	}
	waitSpoolEmpty(t, s)
	order, seen := f.points()
	var want []string
	for _, b := range all {
		for _, r := range b {
			want = append(want, keyOf(r))
		}
	}
	if inFlight == 1 {
		require.Equal(t, want, order, "every sample arrived once, in order")
	} else {
		require.ElementsMatch(t, want, order, "every sample arrived once")
	}
	for k, n := range seen {
		require.Equal(t, 1, n, k)
	}
	// Batches written after the recovery queue behind the spool until it is
	// empty, so between 500 and 1000 samples took the spool.
	replayed := testutil.ToFloat64(s.spool.ReplayedCounter())
	require.GreaterOrEqual(t, replayed, 500.0)
	require.LessOrEqual(t, replayed, 1000.0)
}

func TestRefusedBatchIsDroppedAndCounted(t *testing.T) {
	f := newFake(t)
	f.status.Store(http.StatusBadRequest)
	reg := prometheus.NewRegistry()
	s := openStore(t, Options{URL: f.URL, Bucket: "b", Registerer: reg, Spool: spool.Options{Dir: t.TempDir()}})
	require.NoError(t, s.WriteSamples(context.Background(), batches(0, 1, 7)[0]))
	require.EqualValues(t, 7, testutil.ToFloat64(s.rejected))
	st, _ := s.SpoolStats()
	require.Zero(t, st.Samples, "a refused batch is not spooled: it would be refused forever")

	direct := openStore(t, Options{URL: f.URL, Bucket: "b"})
	err := direct.WriteSamples(context.Background(), batches(0, 1, 3)[0])
	require.Error(t, err, "without a spool the error is returned")
	require.ErrorContains(t, err, "write 3 samples")
}

func TestWithoutSpoolErrorsAreReturned(t *testing.T) {
	f := newFake(t)
	f.status.Store(http.StatusServiceUnavailable)
	s := openStore(t, Options{URL: f.URL, Bucket: "b"})
	require.Error(t, s.WriteSamples(context.Background(), batches(0, 1, 3)[0]))
	f.status.Store(0)
	require.NoError(t, s.WriteSamples(context.Background(), batches(0, 1, 3)[0]))
}

// TestRestartReplaysSpool is "kill -9 with a full spool, restart": a store
// that cannot reach InfluxDB spools everything and goes away without
// replaying; a new store on the same directory replays it all.
func TestRestartReplaysSpool(t *testing.T) {
	dir := t.TempDir()
	closed := closedURL(t)
	a, err := Open(Options{URL: closed, Bucket: "b", Spool: spool.Options{Dir: dir, MaxBytes: 64 << 20},
		Replay: spool.ReplayOptions{RetryMin: time.Hour}})
	require.NoError(t, err)
	all := batches(0, 40, 100)
	for _, b := range all {
		require.NoError(t, a.WriteSamples(context.Background(), b))
	}
	st, _ := a.SpoolStats()
	require.EqualValues(t, 4000, st.Samples)
	a.stop() // as if killed: the replayer never ran, no Close, no cursor sync
	<-a.done
	a.spool.Abandon()

	f := newFake(t)
	b := openStore(t, Options{URL: f.URL, Bucket: "b", Spool: spool.Options{Dir: dir, MaxBytes: 64 << 20}})
	waitSpoolEmpty(t, b)
	order, _ := f.points()
	var want []string
	for _, b := range all {
		for _, r := range b {
			want = append(want, keyOf(r))
		}
	}
	require.ElementsMatch(t, want, order, "every spooled sample replayed once (batches in flight together may arrive in any order)")
}

// closedURL is an address nothing listens on.
func closedURL(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// switchProxy forwards to a real InfluxDB; it can refuse connections (the
// port closes) or answer 503, and come back on the same port.
type switchProxy struct {
	t      *testing.T
	addr   string
	target *url.URL
	mu     sync.Mutex
	srv    *http.Server
	status atomic.Int32
}

func newSwitchProxy(t *testing.T, target string) *switchProxy {
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &switchProxy{t: t, target: u}
	p.up()
	t.Cleanup(p.down)
	return p
}

func (p *switchProxy) url() string { return "http://" + p.addr }

func (p *switchProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return
	}
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	require.NoError(p.t, err)
	p.addr = ln.Addr().String()
	rp := httputil.NewSingleHostReverseProxy(p.target)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := int(p.status.Load()); st != 0 {
			http.Error(w, `{"code":"unavailable","message":"down for the test"}`, st)
			return
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
}

func (p *switchProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		_ = p.srv.Close()
		p.srv = nil
	}
}

// TestOutageAgainstRealInflux runs samples through the Buffer into
// InfluxDB while the way to it closes, answers 503, and comes back; every
// sample is stored exactly once.
func TestOutageAgainstRealInflux(t *testing.T) {
	base := serverURL(t)
	bucket := freshBucket(t, base)
	proxy := newSwitchProxy(t, base)
	s := openStore(t, Options{URL: proxy.url(), Bucket: bucket, Timeout: 5 * time.Second,
		Spool:  spool.Options{Dir: t.TempDir(), MaxBytes: 64 << 20},
		Replay: spool.ReplayOptions{RetryMin: 5 * time.Millisecond, RetryMax: 50 * time.Millisecond}})
	buf := tsdb.NewBuffer(s, tsdb.BufferOptions{BatchSize: 100, FlushInterval: time.Millisecond})
	buf.Start()
	ctx := context.Background()
	const phase = 1500
	var want []prober.Result
	record := func(n int) {
		for range n {
			k := len(want)
			r := tsdbtest.Sample("o", time.Duration(k)*time.Millisecond, time.Duration(k%900)*time.Millisecond)
			if k%11 == 0 {
				r = tsdbtest.Failed(r)
			}
			want = append(want, r)
			require.NoError(t, buf.Record(ctx, r))
		}
	}
	record(phase)
	proxy.down() // InfluxDB unreachable: connection refused
	record(phase)
	require.Eventually(t, func() bool { return buf.Pending() == 0 }, time.Minute, time.Millisecond)
	st, _ := s.SpoolStats()
	require.Positive(t, st.Samples, "samples written while InfluxDB was unreachable wait in the spool")
	proxy.status.Store(http.StatusServiceUnavailable)
	proxy.up() // reachable but failing
	record(phase)
	proxy.status.Store(0) // back
	record(phase)
	require.NoError(t, buf.Close(ctx))
	waitSpoolEmpty(t, s)

	got, _ := readAll(t, s, "o")
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, tsdbtest.Normalize(want[i]), got[i], "sample %d", i)
	}
	ru, err := s.Rollups(ctx, "o", time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, ru, 1)
	require.EqualValues(t, len(want), ru[0].Checks)
}

// TestRestartReplaysIntoRealInflux: spool while unreachable, stop without
// replaying, start again on the same spool: InfluxDB gets every sample.
func TestRestartReplaysIntoRealInflux(t *testing.T) {
	base := serverURL(t)
	bucket := freshBucket(t, base)
	dir := t.TempDir()
	a, err := Open(Options{URL: closedURL(t), Bucket: bucket, Spool: spool.Options{Dir: dir},
		Replay: spool.ReplayOptions{RetryMin: time.Hour}})
	require.NoError(t, err)
	all := batches(0, 20, 500)
	for _, b := range all {
		require.NoError(t, a.WriteSamples(context.Background(), b))
	}
	a.stop()
	<-a.done
	a.spool.Abandon()

	b := openStore(t, Options{URL: base, Bucket: bucket, Spool: spool.Options{Dir: dir}})
	waitSpoolEmpty(t, b)
	got, _ := readAll(t, b, "f")
	require.Len(t, got, 10000)
	require.Equal(t, tsdbtest.Normalize(all[19][499]), got[9999])
}

func readAll(t *testing.T, s *Store, target string) ([]prober.Result, int) {
	t.Helper()
	var out []prober.Result
	q := tsdb.SampleQuery{TargetID: target, Limit: MaxLimit}
	pages := 0
	for {
		p, err := s.Samples(context.Background(), q)
		require.NoError(t, err)
		pages++
		out = append(out, p.Samples...)
		if p.NextCursor == "" {
			return out, pages
		}
		q.Cursor = p.NextCursor
	}
}
