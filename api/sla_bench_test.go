package api

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/report"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// benchServer is a Server over the embedded stores with config targets
// and a key of every scope for tenant "default".
type benchServer struct {
	srv     *Server
	reg     *registry.SQLite
	samples *sqlite.Store
	cfg     *config.Config
	key     string
}

func newBenchServer(b *testing.B, now time.Time) *benchServer {
	b.Helper()
	ctx := b.Context()
	dir := b.TempDir()
	mk, err := crypt.NewMasterKey(bytes.Repeat([]byte{7}, crypt.KeySize))
	must(b, err)
	clock := func() time.Time { return now }
	bs := &benchServer{cfg: &config.Config{}}
	bs.reg, err = registry.OpenSQLite(ctx, registry.SQLiteOptions{Path: filepath.Join(dir, "registry.db"), MasterKey: mk, Now: clock})
	must(b, err)
	b.Cleanup(func() { _ = bs.reg.Close() })
	bs.samples, err = sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(dir, "samples.db"), PruneInterval: -1, Now: clock,
		RawRetention: 400 * 24 * time.Hour})
	must(b, err)
	b.Cleanup(func() { _ = bs.samples.Close() })
	bs.cfg.Normalize()
	bs.srv, err = New(Options{Stores: storesOf(bs.reg), Samples: bs.samples, Incidents: bs.reg, MasterKey: mk,
		Config: func() *config.Config { return bs.cfg }, Now: clock, RateLimit: RateLimit{RPS: 1e9, Burst: 1e9}})
	must(b, err)
	must(b, bs.reg.CreateTenant(ctx, registry.Tenant{ID: registry.DefaultTenant, Name: "bench", CreatedAt: now}))
	key, prefix, hash, err := NewKey()
	must(b, err)
	must(b, bs.reg.CreateAPIKey(ctx, registry.APIKey{ID: "key_bench", TenantID: registry.DefaultTenant, Name: "bench",
		Prefix: prefix, Hash: hash, Scopes: []string{string(ScopeAdmin)}, CreatedAt: now}))
	bs.key = key
	return bs
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

func (bs *benchServer) target(b *testing.B, id string) {
	t := config.Target{Target: prober.Target{ID: id, Name: id, Kind: "http", Interval: 30 * time.Second,
		HTTP: &prober.HTTPSpec{URL: "https://" + id + ".example/"}}}
	t.Normalize()
	bs.cfg.Targets = append(bs.cfg.Targets, t)
}

// write stores checks of id every `every` in [from, to); one in 500 fails.
func (bs *benchServer) write(b *testing.B, id string, from, to time.Time, every time.Duration) {
	var batch []prober.Result
	i := 0
	for at := from; at.Before(to); at = at.Add(every) {
		r := prober.Result{TargetID: id, Start: at, Duration: time.Duration(20+i%80) * time.Millisecond, Success: i%500 != 0}
		batch = append(batch, r)
		i++
		if len(batch) == 10000 {
			must(b, bs.samples.WriteSamples(b.Context(), batch))
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		must(b, bs.samples.WriteSamples(b.Context(), batch))
	}
}

func (bs *benchServer) get(b *testing.B, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(b.Context(), http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+bs.key)
	rec := httptest.NewRecorder()
	bs.srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
	}
	return rec
}

// BenchmarkTargetSLA90Days: the SLA of one target over 90 days of 30 s
// checks (259 200 samples → 2 160 hourly rollups) with 30 incidents,
// through the handler, on the embedded store. Goal: < 20 ms.
func BenchmarkTargetSLA90Days(b *testing.B) {
	to := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	from := to.Add(-90 * 24 * time.Hour)
	bs := newBenchServer(b, to)
	bs.target(b, "web")
	bs.write(b, "web", from, to, 30*time.Second)
	for i := range 30 {
		start := from.Add(time.Duration(i)*3*24*time.Hour + 5*time.Hour)
		must(b, bs.reg.Commit(b.Context(), alertingState("web"), incidentsOf("web", start, start.Add(17*time.Minute)), nil))
	}
	path := Prefix + "/targets/web/sla?slo=99.9&from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
	b.ResetTimer()
	for b.Loop() {
		bs.get(b, path)
	}
}

// BenchmarkSLAReport1000Targets: an encrypted SLA report over 30 days for
// 1 000 targets, through the handler. Each target has one check an hour:
// the report reads hourly rollups only, so it costs the same as with 30 s
// checks (720 rollups a target) while the setup stays quick. Goal: < 1 s.
func BenchmarkSLAReport1000Targets(b *testing.B) {
	to := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	from := to.Add(-30 * 24 * time.Hour)
	bs := newBenchServer(b, to)
	for i := range 1000 {
		id := fmt.Sprintf("t%04d", i)
		bs.target(b, id)
		bs.write(b, id, from, to, time.Hour)
		if i%10 == 0 {
			start := from.Add(time.Duration(i) * time.Hour)
			must(b, bs.reg.Commit(b.Context(), alertingState(id), incidentsOf(id, start, start.Add(20*time.Minute)), nil))
		}
	}
	k, err := report.NewKey(to)
	must(b, err)
	must(b, bs.reg.CreateReportKey(b.Context(), registry.DefaultTenant, k))
	path := Prefix + "/reports/sla?slo=99.9&from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
	b.ResetTimer()
	for b.Loop() {
		rec := bs.get(b, path)
		if rec.Body.Len() < 1000 {
			b.Fatal("report too short")
		}
	}
}

func alertingState(id string) alerting.State {
	return alerting.State{TargetID: id, Status: alerting.StatusUp}
}

func incidentsOf(id string, start, end time.Time) []alerting.Incident {
	return []alerting.Incident{{ID: alerting.IncidentID(id, start), TargetID: id, Start: start, End: end, Cause: "timeout"}}
}
