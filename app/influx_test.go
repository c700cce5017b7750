package app

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/config"
)

// TestInfluxStorageSpoolsWhileDown runs upwatch with storage.type influxdb
// against a stand-in that first answers 503: samples go to the spool,
// /readyz stays ready and says so; once it answers they are replayed.
func TestInfluxStorageSpoolsWhileDown(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	lines := map[string]int{}
	influx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, `{"code":"unavailable","message":"down"}`, http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/health":
			fmt.Fprint(w, `{"name":"influxdb","status":"pass","message":"ready"}`)
		case "/api/v2/write":
			sc := bufio.NewScanner(r.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			mu.Lock()
			for sc.Scan() {
				if l := sc.Text(); l != "" {
					lines[l]++
				}
			}
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(influx.Close)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "fine") }))
	t.Cleanup(target.Close)

	cfg, err := config.Parse(strings.NewReader(fmt.Sprintf(`
data_dir: %s
allow_private_targets: true
storage:
  type: influxdb
  influxdb: {url: %q, bucket: upwatch/autogen, flush_interval: 10ms, batch_size: 5}
targets:
  - {name: web, kind: http, interval: 1s, http: {url: %q}}
`, t.TempDir(), influx.URL, target.URL)), "t.yaml", nil)
	require.NoError(t, err)
	r := start(t, cfg, Options{})

	get := func(path string) (int, string) {
		resp, err := http.Get(r.addr + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	spooled := regexp.MustCompile(`(?m)^upwatch_spool_samples (\d+)`)
	metric := func() int {
		_, body := get("/metrics")
		m := spooled.FindStringSubmatch(body)
		require.NotNil(t, m, "upwatch_spool_samples is exported")
		n, _ := strconv.Atoi(m[1])
		return n
	}
	require.Eventually(t, func() bool { return metric() >= 2 }, 30*time.Second, 20*time.Millisecond)
	code, body := get("/readyz")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, "unreachable, samples spooled to disk")
	require.Contains(t, body, "samples waiting")

	down.Store(false)
	require.Eventually(t, func() bool { return metric() == 0 }, 30*time.Second, 20*time.Millisecond)
	r.shutdown(t)
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, len(lines), 2)
	for l, n := range lines {
		require.Equal(t, 1, n, "point written once: %s", l)
		require.True(t, strings.HasPrefix(l, "upwatch_check,kind=http,location=local,target=web,target_id=web,tenant=default up=1i,"), l)
	}
}
