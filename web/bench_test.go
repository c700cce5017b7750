package web

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/cputime"
	"github.com/upwatch/upwatch/prober"
)

// bigHarness has n config targets in tenant default, each up and checked
// once an hour for the last 24 hours (every 7th failed once).
func bigHarness(tb testing.TB, n int) (*harness, *client) {
	h := newHarness(tb, harnessOpts{cfg: func(c *config.Config) {
		for i := range n {
			c.Targets = append(c.Targets, config.Target{Target: prober.Target{ID: fmt.Sprintf("t%04d", i), Name: fmt.Sprintf("Target %04d", i),
				Kind: "http", Labels: map[string]string{"team": fmt.Sprint("team", i%10)}, HTTP: &prober.HTTPSpec{URL: fmt.Sprintf("https://t%d.example.com/", i)}}})
		}
	}})
	var rs []prober.Result
	for i := range n {
		id := fmt.Sprintf("t%04d", i)
		h.setState(id, alerting.State{Status: alerting.StatusUp, Since: t0.Add(-time.Hour)})
		for hr := range 24 {
			rs = append(rs, prober.Result{TargetID: id, Kind: "http", Location: "local", Start: t0.Add(-time.Duration(hr)*time.Hour - time.Minute),
				Duration: time.Duration(100+i%50) * time.Millisecond, Success: hr != 3 || i%7 != 0})
		}
	}
	require.NoError(tb, h.samples.WriteSamples(tb.Context(), rs))
	return h, h.as(tenantA, "vera")
}

// sessionCookieOf is the client's session cookie, to replay on a recorder.
func (c *client) sessionCookieOf() *http.Cookie {
	u, _ := http.NewRequest(http.MethodGet, c.h.ts.URL+Prefix+"/", nil)
	for _, ck := range c.jar.Cookies(u.URL) {
		if ck.Name == sessionCookie {
			return ck
		}
	}
	return nil
}

// TestDashboardOf1000TargetsWeighsUnder150KB: the dashboard of 1,000
// targets with its scripts and stylesheet, as a browser fetches them
// (gzip), stays under the 150 KB.
func TestDashboardOf1000TargetsWeighsUnder150KB(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("1,000 targets: run by the plain pass (make test-future)")
	}
	h, c := bigHarness(t, 1000)
	total, raw := 0, 0
	for _, path := range []string{"/ui/", "/ui/static/htmx-2.0.11.min.js", "/ui/static/app.js", "/ui/static/app.css"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		req.AddCookie(c.sessionCookieOf())
		rec := httptest.NewRecorder()
		h.web.Handler().ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, path)
		body := rec.Body.Bytes()
		if rec.Header().Get("Content-Encoding") != "gzip" { // static files: what a gzipping proxy or the browser cache holds
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			_, _ = zw.Write(body)
			_ = zw.Close()
			raw += len(body)
			body = buf.Bytes()
		} else {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			require.NoError(t, err)
			var plain bytes.Buffer
			_, _ = plain.ReadFrom(zr)
			raw += plain.Len()
			require.Equal(t, 1000, bytes.Count(plain.Bytes(), []byte(`data-target="t`)))
		}
		total += len(body)
	}
	t.Logf("dashboard of 1,000 targets: %d KB transferred (%d KB uncompressed)", total/1024, raw/1024)
	require.Less(t, total, 150*1024)
}

// BenchmarkDashboard1000 is the server time of the dashboard of 1,000
// targets (goal: under 200 ms).
func BenchmarkDashboard1000(b *testing.B) {
	h, c := bigHarness(b, 1000)
	ck := c.sessionCookieOf()
	b.ResetTimer()
	cpu0 := cputime.Used()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/ui/", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		req.AddCookie(ck)
		rec := httptest.NewRecorder()
		h.web.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
	b.ReportMetric(float64(cputime.Used()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
}
