package metrics

import (
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

var update = flag.Bool("update", false, "rewrite the golden expositions in testdata")

// goldenScenario drives a Probe (and the alert engine's PerTarget families)
// through what changes series: every kind, several locations, labels that
// need escaping, a target changing kind, failures, Forget, Retain and a
// late result of a retired target. It returns the bodies of /metrics after
// each step, joined.
func goldenScenario(t *testing.T, full bool) string {
	reg := prometheus.NewRegistry()
	p := NewProbe(ProbeOptions{Full: full, Registerer: reg})
	up := NewPerTargetGauge("upwatch_target_up", "Target state.")
	incidents := NewPerTargetCounter("upwatch_incidents_total", "Incidents opened.")
	h := Handler(reg, p, up, incidents)
	var out strings.Builder
	scrape := func(step string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		require.Equal(t, http.StatusOK, rec.Code)
		out.WriteString("### " + step + "\n" + rec.Body.String())
	}
	at := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	ph := prober.Phases{DNS: 1234 * time.Microsecond, Connect: 2 * time.Millisecond, TLS: 3 * time.Millisecond, TTFB: 40 * time.Millisecond, Transfer: 5 * time.Millisecond}
	https := func(id, loc string) prober.Result {
		return prober.Result{TargetID: id, Kind: "http", Location: loc, Success: true, StatusCode: 200, Duration: 51234 * time.Microsecond,
			Phases: ph, TLSExpiry: at, HTTPVersion: "HTTP/1.1", TLSVersion: "TLS 1.3", LastChainExpiry: at.Add(time.Hour),
			ContentLength: 1234, BodyBytes: 1234, Redirects: 1, RemoteAddr: "192.0.2.10:443"}
	}
	scrape("empty")

	p.Observe(https("web", "local"))
	p.Observe(prober.Result{TargetID: "plain", Kind: "http", Location: "local", StatusCode: 503, Duration: time.Second / 3,
		ErrorClass: prober.ClassStatus, HTTPVersion: "HTTP/1.0", ContentLength: -1, RemoteAddr: "[2001:db8::1]:80", FailedDueToRegex: true})
	p.Observe(prober.Result{TargetID: "h2", Kind: "http", Location: "local", Success: true, StatusCode: 204, HTTPVersion: "HTTP/2.0", TLSVersion: "TLS 1.2", RemoteAddr: "::1"})
	p.Observe(prober.Result{TargetID: "h3", Kind: "http", Location: "local", Success: true, StatusCode: 200, HTTPVersion: "HTTP/3", RemoteAddr: "127.0.0.1"})
	p.Observe(prober.Result{TargetID: "odd", Kind: "http", Location: "local", HTTPVersion: "SPDY/x", ErrorClass: prober.ClassTimeout})
	p.Observe(prober.Result{TargetID: "db", Kind: "tcp", Location: "local", ErrorClass: prober.ClassConnect, Duration: time.Millisecond})
	p.Observe(prober.Result{TargetID: "ping", Kind: "icmp", Location: "local", Success: true, Duration: 2 * time.Millisecond,
		Phases: prober.Phases{DNS: time.Microsecond}, ICMP: &prober.ICMPStats{RTTAvg: 1500 * time.Microsecond}, RemoteAddr: "192.0.2.1"})
	p.Observe(prober.Result{TargetID: "rpc", Kind: "grpc", Location: "local", Success: true, GRPC: &prober.GRPCStats{Code: 0, ServingStatus: "SERVING"}})
	p.Observe(prober.Result{TargetID: "rpc-down", Kind: "grpc", Location: "local", GRPC: &prober.GRPCStats{Code: 14}, ErrorClass: prober.ClassConnect})
	p.Observe(prober.Result{TargetID: "noclass", Kind: "tcp", Location: "local"})
	p.Observe(prober.Result{TargetID: "newclass", Kind: "tcp", Location: "local", ErrorClass: "novel"})
	p.Observe(prober.Result{TargetID: "ns", Kind: "dns", Location: "local", Success: true, Phases: prober.Phases{DNS: 3 * time.Millisecond}})
	p.Observe(prober.Result{TargetID: `we"ird\` + "\nid\xff", Kind: "tcp", Location: "eu\"west", Success: true})
	for _, loc := range []string{"eu-west", "us-east", "ap-south"} {
		p.Observe(https("multi", loc))
	}
	up.Set("web", 1)
	up.Set(`we"ird\`+"\nid\xff", -1)
	incidents.Add("web", 0)
	incidents.Add("db", 1)
	scrape("first results")

	// Second round: counters grow, a TLS version and expiry survive a
	// failure, a target changes kind, one location fails.
	p.Observe(https("web", "local"))
	p.Observe(prober.Result{TargetID: "web", Kind: "http", Location: "local", ErrorClass: prober.ClassConnect, Duration: 3 * time.Second})
	p.Observe(prober.Result{TargetID: "db", Kind: "http", Location: "local", Success: true, StatusCode: 301, HTTPVersion: "HTTP/1.1"})
	p.Observe(prober.Result{TargetID: "multi", Kind: "http", Location: "us-east", ErrorClass: prober.ClassTLS, Duration: time.Millisecond})
	p.Observe(prober.Result{TargetID: "ping", Kind: "icmp", Location: "local", ErrorClass: prober.ClassTimeout})
	p.Observe(prober.Result{TargetID: "rpc", Kind: "grpc", Location: "local", Success: true, GRPC: &prober.GRPCStats{ServingStatus: "NOT_SERVING"}})
	up.Set("web", 0)
	incidents.Add("web", 1)
	scrape("second round")

	// Removal reorders: the last series moves into the gap.
	p.Forget("plain")
	p.Forget("multi")
	p.Observe(https("multi", "us-east"))
	incidents.Delete("web")
	scrape("forget")

	// Retain removes one target here: which of several goes first would
	// decide the order, and the order of a map decided that.
	for _, id := range []string{"h3", "odd", "rpc", "rpc-down", "noclass", "newclass", "ns", `we"ird\` + "\nid\xff"} {
		p.Forget(id)
	}
	p.Retain([]string{"web", "h2", "multi", "late", "ping"})
	p.Observe(prober.Result{TargetID: "db", Kind: "tcp", Location: "local", Success: true}) // retired: ignored
	p.Observe(https("late", "local"))
	p.Observe(https("multi", "eu-west"))
	p.Forget("web")
	p.Observe(https("web", "local")) // still retained: back
	scrape("retain")
	p.Retain(nil)
	scrape("retain none")
	return out.String()
}

// The exposition is byte for byte the one in testdata (rewritten with
// -update): the text is written by hand, so this pins its exact form.
func TestGoldenExposition(t *testing.T) {
	for name, full := range map[string]bool{"core": false, "full": true} {
		t.Run(name, func(t *testing.T) {
			got := goldenScenario(t, full)
			path := filepath.Join("testdata", "exposition_"+name+".txt")
			if *update {
				require.NoError(t, os.MkdirAll("testdata", 0o755))
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, string(want), got)
		})
	}
}
