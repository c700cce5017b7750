package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// TestEvidenceEndToEnd: a target goes down; its incident links to what
// the server said at the first failed check, with the credential the
// server echoed and its cookie redacted.
func TestEvidenceEndToEnd(t *testing.T) {
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !down.Load() {
			fmt.Fprintln(w, "fine")
			return
		}
		w.Header().Set("Set-Cookie", "sid=cookie-value-123")
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "database unreachable; you sent %s", r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	cfg := testConfig(t, "allow_private_targets: true\nquotas: {min_interval: 1s}\n")
	key, _, _, err := api.NewKey()
	require.NoError(t, err)
	r := start(t, cfg, Options{Getenv: func(name string) string {
		if name == EnvBootstrapKey {
			return key
		}
		return ""
	}})
	status, body := apiCall(t, http.MethodPost, r.addr+"/api/v1/targets", key, map[string]any{
		"id": "web", "name": "web", "kind": "http", "interval": "1s", "timeout": "500ms", "capture": "failures", "capture_bytes": 1024,
		"http": map[string]any{"url": srv.URL + "/", "auth": map[string]any{"type": "bearer", "token": "s3cr3t-t0ken"}},
	})
	require.Equal(t, http.StatusCreated, status, body)
	require.Equal(t, "failures", body["capture"])
	down.Store(true)

	var link string
	require.Eventually(t, func() bool {
		status, body := apiCall(t, http.MethodGet, r.addr+"/api/v1/targets/web/incidents", key, nil)
		if status != http.StatusOK || len(body["items"].([]any)) == 0 {
			return false
		}
		link, _ = body["items"].([]any)[0].(map[string]any)["first_failure_evidence"].(string)
		return link != ""
	}, 30*time.Second, 50*time.Millisecond)
	var ev map[string]any
	require.Eventually(t, func() bool { // the sample store is written in groups
		status, body := apiCall(t, http.MethodGet, r.addr+link, key, nil)
		ev = body
		return status == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond)
	item := ev["evidence"].([]any)[0].(map[string]any)
	require.Equal(t, "local", item["location"])
	require.Equal(t, "failures", item["reason"])
	require.Equal(t, "database unreachable; you sent Bearer <secret>", item["body"])
	hdr := item["headers"].(map[string]any)
	require.Equal(t, []any{"60"}, hdr["Retry-After"])
	require.Equal(t, []any{"<secret>"}, hdr["Set-Cookie"])
	require.NotContains(t, fmt.Sprint(ev), "s3cr3t-t0ken")
	require.NotContains(t, fmt.Sprint(ev), "cookie-value-123")
}

// fakeSamples is a sample store that keeps no evidence, as InfluxDB.
type fakeSamples struct {
	tsdb.Store
	got []prober.Result
}

func (f *fakeSamples) WriteSamples(_ context.Context, rs []prober.Result) error {
	f.got = append(f.got, rs...)
	return nil
}
func (f *fakeSamples) Close() error { return nil }

// TestEvidenceBesideInflux: with a store that keeps no evidence the
// embedded store keeps it, and only it: the samples go to the other store.
func TestEvidenceBesideInflux(t *testing.T) {
	ctx := context.Background()
	ev, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), DBFile), PruneInterval: -1, CompactInterval: -1})
	require.NoError(t, err)
	other := &fakeSamples{}
	s := evidenceBeside{Store: other, ev: ev}
	defer s.Close()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	bad := prober.Result{TargetID: "web", Location: "local", Start: at}.Fail(prober.ClassStatus, "status 503")
	bad.Evidence = &prober.Evidence{Reason: "failures", Body: strings.Repeat("down ", 10)}
	good := prober.Result{TargetID: "web", Location: "local", Start: at.Add(time.Minute), Success: true}
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{bad, good}))
	require.Len(t, other.got, 2)

	recs, err := s.Evidence(ctx, "web", at, at.Add(time.Hour), 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, bad.Evidence.Body, recs[0].Evidence.Body)
	page, err := ev.Samples(ctx, tsdb.SampleQuery{TargetID: "web", From: at, To: at.Add(time.Hour)})
	require.NoError(t, err)
	require.Empty(t, page.Samples, "the embedded store keeps no samples beside InfluxDB")
}
