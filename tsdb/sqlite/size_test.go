package sqlite

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// realistic generates what a prober writes for many HTTP targets checked
// every interval: each target has its own phase in the interval, its own
// latency profile (DNS, connect, TLS, time to first byte, transfer) with
// a few per cent of jitter at nanosecond resolution and rare spikes,
// scheduling lag of about half a millisecond, a fixed or round-robin
// remote address, a fixed certificate expiry, and about 1 % failures
// (timeouts, refused connections, bad status) with their error text.
type realistic struct {
	rng     *rand.Rand
	targets []realTarget
}

type realTarget struct {
	id, name, url string
	phase         time.Duration
	base          prober.Phases
	addrs         []string
	tlsExpiry     time.Time
	body          int64
	bodyVaries    bool
}

func newRealistic(targets int, seed uint64) *realistic {
	g := &realistic{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	ms := func(lo, hi float64) time.Duration {
		return time.Duration((lo + g.rng.Float64()*(hi-lo)) * float64(time.Millisecond))
	}
	for i := range targets {
		t := realTarget{
			id:    fmt.Sprintf("tenant-%02d/target-%05d", i%37, i),
			name:  fmt.Sprintf("API health %d", i),
			url:   fmt.Sprintf("https://svc%d.example.com/health", i),
			phase: time.Duration(g.rng.Int64N(int64(time.Minute))),
			body:  200 + g.rng.Int64N(50000),
		}
		t.bodyVaries = g.rng.IntN(10) == 0
		if g.rng.IntN(5) != 0 { // a name to resolve
			t.base.DNS = ms(0.2, 3)
		}
		t.base.Connect = ms(1, 80)
		if g.rng.IntN(5) != 0 { // https
			t.base.TLS = ms(5, 120)
			t.tlsExpiry = tsdbtest.T0.Add(time.Duration(g.rng.IntN(90*24*3600)) * time.Second)
		}
		t.base.TTFB = ms(10, 400)
		t.base.Transfer = ms(0.05, 20)
		addrs := 1
		if g.rng.IntN(5) == 0 { // DNS round robin
			addrs = 2 + g.rng.IntN(3)
		}
		for range addrs {
			t.addrs = append(t.addrs, fmt.Sprintf("203.0.%d.%d:443", g.rng.IntN(256), g.rng.IntN(256)))
		}
		g.targets = append(g.targets, t)
	}
	return g
}

// jitter returns d varied by about 5 % (normal), with a rare spike.
func (g *realistic) jitter(d time.Duration) time.Duration {
	if d == 0 {
		return 0
	}
	f := 1 + 0.05*g.rng.NormFloat64()
	if g.rng.IntN(100) == 0 {
		f *= 3
	}
	return time.Duration(math.Max(0.1, f) * float64(d))
}

// sample returns target i's check of the given interval number (60 s
// intervals from T0).
func (g *realistic) sample(i, interval int) prober.Result {
	t := &g.targets[i]
	lag := time.Duration(g.rng.ExpFloat64() * 500_000)
	r := prober.Result{
		TargetID: t.id, Target: t.name, Kind: "http", Location: "local",
		Start:      tsdbtest.T0.Add(time.Duration(interval)*time.Minute + t.phase + lag),
		Success:    true,
		StatusCode: 200,
		TLSExpiry:  t.tlsExpiry,
		BodyBytes:  t.body,
		RemoteAddr: t.addrs[g.rng.IntN(len(t.addrs))],
	}
	if t.bodyVaries {
		r.BodyBytes += g.rng.Int64N(200)
	}
	p := prober.Phases{DNS: g.jitter(t.base.DNS), Connect: g.jitter(t.base.Connect), TLS: g.jitter(t.base.TLS),
		TTFB: g.jitter(t.base.TTFB), Transfer: g.jitter(t.base.Transfer)}
	r.Phases = p
	r.Duration = p.DNS + p.Connect + p.TLS + p.TTFB + p.Transfer + time.Duration(20_000+g.rng.Int64N(200_000))
	switch g.rng.IntN(300) {
	case 0:
		r = r.Fail(prober.ClassTimeout, fmt.Sprintf("Get %q: context deadline exceeded (Client.Timeout exceeded while awaiting headers)", t.url))
		r.Phases.TTFB, r.Phases.Transfer, r.StatusCode, r.BodyBytes = 0, 0, 0, 0
		r.Duration = 10*time.Second + time.Duration(g.rng.Int64N(2_000_000))
	case 1:
		r = r.Fail(prober.ClassConnect, fmt.Sprintf("dial tcp %s: connect: connection refused", r.RemoteAddr))
		r.Phases = prober.Phases{DNS: p.DNS}
		r.StatusCode, r.BodyBytes, r.TLSExpiry = 0, 0, time.Time{}
		r.Duration = p.DNS + time.Duration(g.rng.Int64N(1_000_000))
	case 2:
		r = r.Fail(prober.ClassStatus, "unexpected status 503")
		r.StatusCode, r.BodyBytes = 503, 19
	}
	return r
}

// fillRealistic writes hours of checks of g's targets at 60 s, in batches
// of about 2000 as the write buffer hands them over, and returns how many
// samples it wrote.
func fillRealistic(tb testing.TB, s *Store, g *realistic, hours int) int {
	tb.Helper()
	ctx := context.Background()
	batch := make([]prober.Result, 0, 2000)
	n := 0
	for iv := range hours * 60 {
		for i := range g.targets {
			batch = append(batch, g.sample(i, iv))
			if len(batch) == cap(batch) {
				if err := s.WriteSamples(ctx, batch); err != nil {
					tb.Fatal(err)
				}
				n += len(batch)
				batch = batch[:0]
			}
		}
	}
	if err := s.WriteSamples(ctx, batch); err != nil {
		tb.Fatal(err)
	}
	return n + len(batch)
}

// bytesPerSample vacuums the store's file and divides its size by samples.
func bytesPerSample(tb testing.TB, s *Store, samples int) float64 {
	tb.Helper()
	if _, err := s.w.Exec(`VACUUM`); err != nil {
		tb.Fatal(err)
	}
	if _, err := s.w.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		tb.Fatal(err)
	}
	fi, err := os.Stat(s.opts.Path)
	if err != nil {
		tb.Fatal(err)
	}
	return float64(fi.Size()) / float64(samples)
}

// afterDay is a clock past the close of the 24 hours fillRealistic writes:
// the hours of T0's day are in its day block, the next day's in hour
// blocks.
func afterDay() time.Time { return tsdbtest.T0.Add(26 * time.Hour) }

// BenchmarkDiskPerSample writes 24 hours of realistic checks of 1000
// targets at 60 s, compacts them and reports the file's bytes per sample
// after VACUUM (rollups and indexes included): B/sample with the hours
// after T0's day still in hour blocks (as on the day they were written),
// B/sample-days once their day has closed too (as the rest of the
// retention is kept).
// Run it once: go test -run '^$' -bench DiskPerSample -benchtime 1x.
func BenchmarkDiskPerSample(b *testing.B) {
	for b.Loop() {
		clk := &clock{now: afterDay()}
		s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "size.db"),
			PruneInterval: -1, CompactInterval: -1, Now: clk.Now})
		if err != nil {
			b.Fatal(err)
		}
		n := fillRealistic(b, s, newRealistic(1000, 1), 24)
		b.ReportMetric(bytesPerSample(b, s, n), "B/sample-raw")
		start := time.Now()
		if _, err := s.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "compacted/s")
		b.ReportMetric(bytesPerSample(b, s, n), "B/sample")
		clk.Set(tsdbtest.T0.Add(48 * time.Hour))
		if _, err := s.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(bytesPerSample(b, s, n), "B/sample-days")
		_ = s.Close()
	}
}

// TestDiskPerSample guards the size of compacted samples: a day of
// realistic checks of 50 targets, compacted once their days have closed,
// everything in the file counted (measured 21.4 bytes per sample: the
// day from 09:00 makes two day blocks per target, of 900 and 540
// samples; with one block per hour 27.7, before blocks 177).
func TestDiskPerSample(t *testing.T) {
	if raceDetector {
		t.Skip("a storage measurement, not a concurrency test: it runs in the plain pass (make test-future)")
	}
	s := open(t, Options{Now: func() time.Time { return tsdbtest.T0.Add(48 * time.Hour) }})
	n := fillRealistic(t, s, newRealistic(50, 4), 24)
	_, err := s.Compact(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := bytesPerSample(t, s, n)
	t.Logf("%.2f bytes per sample", got)
	if got > 22 {
		t.Fatalf("%.2f bytes per sample, want at most 22", got)
	}
}

// BenchmarkHistoryDay reads one target's day of samples (1440 at 60 s)
// in pages of 1000, the way the history API does, from a store holding a
// day of 200 targets, as rows and as blocks.
func BenchmarkHistoryDay(b *testing.B) {
	s, err := Open(context.Background(), Options{Path: filepath.Join(b.TempDir(), "hist.db"),
		PruneInterval: -1, CompactInterval: -1, Now: afterDay})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g := newRealistic(200, 2)
	fillRealistic(b, s, g, 24)
	b.Run("rows", func(b *testing.B) { benchmarkHistoryDay(b, s, g) })
	if _, err := s.Compact(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Run("blocks", func(b *testing.B) { benchmarkHistoryDay(b, s, g) })
}

func benchmarkHistoryDay(b *testing.B, s *Store, g *realistic) {
	ctx := context.Background()
	id := g.targets[77].id
	b.ReportAllocs()
	for b.Loop() {
		q := tsdb.SampleQuery{TargetID: id, From: tsdbtest.T0, To: tsdbtest.T0.Add(24 * time.Hour)}
		got := 0
		for {
			p, err := s.Samples(ctx, q)
			if err != nil {
				b.Fatal(err)
			}
			got += len(p.Samples)
			if p.NextCursor == "" {
				break
			}
			q.Cursor = p.NextCursor
		}
		if got != 24*60 {
			b.Fatalf("read %d samples", got)
		}
	}
}
