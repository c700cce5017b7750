package victoria

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// vmURL returns the VictoriaMetrics started by .ci/services/victoria.sh.
func vmURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("UPWATCH_TEST_VM_URL")
	if u == "" {
		if os.Getenv("UPWATCH_REQUIRE_VM") != "" {
			t.Fatal("UPWATCH_REQUIRE_VM is set but UPWATCH_TEST_VM_URL is not: start VictoriaMetrics with .ci/services/victoria.sh start")
		}
		t.Skip("UPWATCH_TEST_VM_URL is not set; start VictoriaMetrics with .ci/services/victoria.sh start")
	}
	return u
}

type series struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// export reads back every series of one target.
func export(t *testing.T, base, targetID string) map[string]series {
	t.Helper()
	resp, err := http.Get(base + "/internal/force_flush")
	require.NoError(t, err)
	resp.Body.Close()
	resp, err = http.PostForm(base+"/api/v1/export", url.Values{"match[]": {fmt.Sprintf(`{target_id=%q}`, targetID)}})
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := map[string]series{}
	dec := json.NewDecoder(resp.Body)
	for {
		var s series
		if err := dec.Decode(&s); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		out[s.Metric["__name__"]] = s
	}
	return out
}

// TestWriteReadBack writes samples through a Buffer to a real
// VictoriaMetrics and reads them back with /api/v1/export.
func TestWriteReadBack(t *testing.T) {
	base := vmURL(t)
	w, err := New(Options{URL: base + "/", Timeout: 5 * time.Second})
	require.NoError(t, err)
	id := fmt.Sprintf("vm-test-%d", time.Now().UnixNano())
	now := time.Now().Truncate(time.Millisecond).Add(-time.Minute)
	in := []prober.Result{
		{TargetID: id, Target: "web one", Kind: "http", Location: "eu-west", Start: now, Success: true,
			Duration: 250 * time.Millisecond, StatusCode: 200, Phases: prober.Phases{DNS: 3 * time.Millisecond}},
		{TargetID: id, Target: "web one", Kind: "http", Location: "eu-west", Start: now.Add(time.Second), Success: false,
			Duration: 1500 * time.Millisecond, StatusCode: 503, ErrorClass: "http_status", Error: `got "503"`},
		{TargetID: id, Target: "web one", Kind: "http", Location: "eu-west", Start: now.Add(2 * time.Second), Success: true,
			Duration: 125 * time.Millisecond, StatusCode: 204},
	}
	buf := tsdb.NewBuffer(w, tsdb.BufferOptions{BatchSize: 2, FlushInterval: 10 * time.Millisecond})
	buf.Start()
	for _, r := range in {
		require.NoError(t, buf.Record(context.Background(), r))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, buf.Close(ctx))

	var got map[string]series
	require.Eventually(t, func() bool {
		got = export(t, base, id)
		return len(got["upwatch_check_up"].Values) == len(in)
	}, 10*time.Second, 100*time.Millisecond, "samples never showed up: %v", got)

	wantTS := []int64{now.UnixMilli(), now.Add(time.Second).UnixMilli(), now.Add(2 * time.Second).UnixMilli()}
	for name, want := range map[string][]float64{
		"upwatch_check_up":               {1, 0, 1},
		"upwatch_check_duration_seconds": {0.25, 1.5, 0.125},
		"upwatch_check_status_code":      {200, 503, 204},
		"upwatch_check_dns_seconds":      {0.003, 0, 0},
	} {
		s, ok := got[name]
		require.True(t, ok, "series %s missing; have %v", name, got)
		require.Equal(t, want, s.Values, name)
		require.Equal(t, wantTS, s.Timestamps, name)
		require.Equal(t, map[string]string{
			"__name__": name, "target_id": id, "target": "web one", "location": "eu-west", "kind": "http", "tenant": "default",
		}, s.Metric, name)
	}
}

func TestWriteErrors(t *testing.T) {
	var status int
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/base/api/v2/write", r.URL.Path)
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	reg := prometheus.NewPedanticRegistry()
	w, err := New(Options{URL: srv.URL + "/base", Registerer: reg})
	require.NoError(t, err)
	samples := []prober.Result{{TargetID: "a", Start: time.Unix(1, 0)}, {TargetID: "b", Start: time.Unix(2, 0)}}

	status = http.StatusNoContent
	require.NoError(t, w.WriteSamples(context.Background(), samples))
	require.Equal(t, 2, strings.Count(body, "\n"))
	require.True(t, strings.HasPrefix(body, "upwatch_check,target_id=a,tenant=default up=0i,"), body)

	status = http.StatusServiceUnavailable
	require.ErrorContains(t, w.WriteSamples(context.Background(), samples), "503", "5xx is retried")

	status = http.StatusBadRequest
	require.NoError(t, w.WriteSamples(context.Background(), samples), "a refused batch is dropped, not retried")
	require.Equal(t, 2.0, testutil.ToFloat64(w.rejected))

	require.NoError(t, w.WriteSamples(context.Background(), nil))

	for _, bad := range []string{"", "ftp://h", "http://u:p@h:8428", "http://"} {
		_, err := New(Options{URL: bad})
		require.Error(t, err, bad)
	}
}
