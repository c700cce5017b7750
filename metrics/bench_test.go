package metrics

import (
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
)

// benchResults are n targets' successful HTTPS results from each of
// locations, as the scheduler hands them over: the ids come from the
// targets, not built per result.
func benchResults(n int, locations ...string) []prober.Result {
	at := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	rs := make([]prober.Result, 0, n*len(locations))
	for i := range n {
		id := fmt.Sprintf("shop-api-%06d", i)
		for _, loc := range locations {
			rs = append(rs, prober.Result{TargetID: id, Kind: "http", Location: loc, Success: true, StatusCode: 200,
				Duration: time.Duration(i%997) * 137 * time.Microsecond, TLSExpiry: at.Add(time.Duration(i) * time.Minute),
				Phases: prober.Phases{DNS: 1234 * time.Microsecond, Connect: 2345 * time.Microsecond, TLS: 12 * time.Millisecond,
					TTFB: time.Duration(i%313) * time.Millisecond, Transfer: 321 * time.Microsecond},
				HTTPVersion: "HTTP/1.1", TLSVersion: "TLS 1.3", LastChainExpiry: at.Add(time.Duration(i) * time.Hour),
				ContentLength: int64(i % 5000), BodyBytes: int64(i % 5000), RemoteAddr: "192.0.2.10:443"})
		}
	}
	return rs
}

// BenchmarkObserve is the steady state: every target already has its
// series, each op observes one result, going round all targets as the
// checks come in. Run: go test -run '^$' -bench Observe ./metrics/
func BenchmarkObserve(b *testing.B) {
	for _, c := range []struct {
		name      string
		n         int
		locations []string
	}{
		{"100k/local", 100_000, []string{"local"}},
		{"33k/3locations", 33_334, []string{"eu-west", "us-east", "ap-south"}},
	} {
		for _, full := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/full=%v", c.name, full), func(b *testing.B) {
				p := NewProbe(ProbeOptions{Full: full, Registerer: prometheus.NewRegistry()})
				rs := benchResults(c.n, c.locations...)
				for i := range rs {
					p.Observe(rs[i])
				}
				b.ReportAllocs()
				b.ResetTimer()
				i := 0
				for b.Loop() {
					p.Observe(rs[i])
					if i++; i == len(rs) {
						i = 0
					}
				}
			})
		}
	}
}

// BenchmarkProbeMemory reports the heap a Probe holds per target (50,000
// HTTPS targets with results, from one location and from three), measured
// after a GC, the results themselves not counted.
func BenchmarkProbeMemory(b *testing.B) {
	const n = 50_000
	for _, locations := range [][]string{{"local"}, {"eu-west", "us-east", "ap-south"}} {
		b.Run(fmt.Sprintf("locations=%d", len(locations)), func(b *testing.B) {
			rs := benchResults(n, locations...)
			ids := make([]string, n)
			for i := range ids {
				ids[i] = rs[i*len(locations)].TargetID
			}
			var per float64
			for b.Loop() {
				before := heapInUse()
				p := NewProbe(ProbeOptions{Registerer: prometheus.NewRegistry()})
				p.Retain(ids)
				for i := range rs {
					p.Observe(rs[i])
				}
				per = float64(heapInUse()-before) / n
				runtime.KeepAlive(p)
			}
			b.ReportMetric(per, "B/target")
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkWriteTo renders 100,000 HTTPS targets' series, the bulk of a
// scrape. Run: go test -run '^$' -bench WriteTo -benchtime 5x ./metrics/
func BenchmarkWriteTo(b *testing.B) {
	for _, full := range []bool{false, true} {
		b.Run(fmt.Sprintf("full=%v", full), func(b *testing.B) {
			p := NewProbe(ProbeOptions{Full: full})
			rs := benchResults(100_000, "local")
			for i := range rs {
				p.Observe(rs[i])
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
