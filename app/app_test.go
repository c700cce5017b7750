package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// flapper is a target whose health the test switches.
type flapper struct{ down atomic.Bool }

func (f *flapper) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if f.down.Load() {
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "fine")
}

type running struct {
	addr string
	stop context.CancelFunc
	done chan error
}

func start(t *testing.T, cfg *config.Config, o Options) *running {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	o.Config, o.Listener = cfg, ln
	o.ShutdownTimeout = 10 * time.Second
	r := &running{addr: "http://" + ln.Addr().String(), stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, o) }()
	t.Cleanup(func() { cancel(); <-r.done })
	require.Eventually(t, func() bool {
		resp, err := http.Get(r.addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "never became ready")
	return r
}

func (r *running) shutdown(t *testing.T) {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		require.NoError(t, err)
		r.done <- nil // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// checks returns whether the running service exports probe series for a
// target id (is checking it).
func (r *running) checks(t *testing.T) func(id string) bool {
	return func(id string) bool {
		return metricValue(get(t, r.addr+"/metrics"), "probe_success", `target="`+id+`"`) >= 0
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// metricValue finds one series in the exposition text, or returns -1.
func metricValue(exposition, name string, labels ...string) float64 {
	for line := range strings.Lines(exposition) {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return -1
}

func testConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml), "test.yaml", func(string) string { return "" })
	require.NoError(t, err)
	cfg.DataDir = t.TempDir()
	return cfg
}

// TestEndToEnd runs the service as main does, takes a target down and up,
// and checks the samples in the store and the series on /metrics.
func TestEndToEnd(t *testing.T) {
	target := &flapper{}
	srv := httptest.NewServer(target)
	defer srv.Close()
	cfg := testConfig(t, `
allow_private_targets: true
demo: true
targets:
  - name: flap
    kind: http
    interval: 1s
    timeout: 500ms
    http: {url: "`+srv.URL+`/", expect_status: ["200"], body_contains: ["fine"]}
  - name: listener
    kind: tcp
    interval: 1s
    timeout: 500ms
    tcp: {address: "`+srv.Listener.Addr().String()+`"}
`)
	reg := prometheus.NewRegistry()
	// The service runs years ahead of the test's day: every sample must be
	// stamped by the injected clock, none by the wall clock.
	base := clocktest.Start().AddDate(7, 0, 0)
	r := start(t, cfg, Options{Registry: reg, Now: clocktest.Running(base)})

	success := func() float64 { return metricValue(get(t, r.addr+"/metrics"), "probe_success", `target="flap"`) }
	require.Eventually(t, func() bool { return success() == 1 }, 10*time.Second, 50*time.Millisecond)
	target.down.Store(true)
	require.Eventually(t, func() bool { return success() == 0 }, 10*time.Second, 50*time.Millisecond)
	target.down.Store(false)
	require.Eventually(t, func() bool { return success() == 1 }, 10*time.Second, 50*time.Millisecond)

	text := get(t, r.addr+"/metrics")
	for _, name := range []string{"probe_duration_seconds", "probe_http_status_code",
		"upwatch_checks_total", "upwatch_target_up", "upwatch_incidents_total", "upwatch_scheduler_lag_seconds_bucket", "upwatch_store_queue_depth", "upwatch_build_info"} {
		require.Contains(t, text, name)
	}
	require.Equal(t, 1.0, metricValue(text, "probe_success", `target="listener"`))
	promtoolCheck(t, text)
	require.Contains(t, get(t, r.addr+"/demo/ok"), `"ok"`)
	require.Contains(t, get(t, r.addr+"/healthz"), "ok")

	r.shutdown(t)

	store, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(cfg.DataDir, DBFile)})
	require.NoError(t, err)
	defer store.Close()
	page, err := store.Samples(context.Background(), tsdb.SampleQuery{TargetID: "flap", From: time.Unix(0, 0), To: base.AddDate(1, 0, 0), Limit: 10000})
	require.NoError(t, err)
	var ok, failed int
	for _, s := range page.Samples {
		require.Equal(t, "local", s.Location)
		require.WithinRange(t, s.Start, base, base.Add(10*time.Minute), "stamped by the injected clock")
		if s.Success {
			ok++
			require.Equal(t, 200, s.StatusCode)
		} else {
			failed++
			require.Equal(t, 503, s.StatusCode)
			require.Equal(t, "status", string(s.ErrorClass))
		}
	}
	require.Positive(t, ok)
	require.Positive(t, failed)
	// Exactly the checks counted on /metrics are in the store: the shutdown
	// flushed every one, once.
	// (flap is the only http target: checks are counted by kind.)
	require.Equal(t, checksCounted(t, reg, "kind", "http"), len(page.Samples))

	latest, err := store.Latest(context.Background())
	require.NoError(t, err)
	require.Contains(t, latest, "flap")
	require.Contains(t, latest, "listener")
}

// checksCounted sums upwatch_checks_total over the series with label=value.
func checksCounted(t *testing.T, reg *prometheus.Registry, label, value string) int {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "upwatch_checks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(n)
}

// promtoolCheck lints the exposition with the real promtool.
func promtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("UPWATCH_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool not found but UPWATCH_REQUIRE_PROMTOOL is set")
		}
		t.Log("promtool not installed; skipping `promtool check metrics` (bash .ci/run installs it)")
		return
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "promtool check metrics:\n%s", out)
}

func TestReloadAppliesTargetsAndRefusesABadFile(t *testing.T) {
	srv := httptest.NewServer(&flapper{})
	defer srv.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "upwatch.yaml")
	write := func(targets ...string) {
		var b strings.Builder
		b.WriteString("allow_private_targets: true\ndata_dir: " + filepath.Join(dir, "data") + "\ntargets:\n")
		for _, name := range targets {
			fmt.Fprintf(&b, "  - {name: %s, kind: http, interval: 1s, timeout: 500ms, http: {url: %q}}\n", name, srv.URL)
		}
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	}
	write("one")
	cfg, err := config.Load(path, func(string) string { return "" })
	require.NoError(t, err)
	reload := make(chan struct{})
	r := start(t, cfg, Options{ConfigPath: path, Reload: reload})
	has := r.checks(t)
	require.Eventually(t, func() bool { return has("one") }, 10*time.Second, 50*time.Millisecond)

	write("two")
	reload <- struct{}{}
	require.Eventually(t, func() bool { return has("two") && !has("one") }, 10*time.Second, 50*time.Millisecond)

	require.NoError(t, os.WriteFile(path, []byte("targets:\n  - {name: bad, kind: http, interval: 10ms}\n"), 0o600))
	reload <- struct{}{}
	reload <- struct{}{} // the loop has taken the first one: the bad file was read and refused
	require.True(t, has("two"), "a refused reload keeps the running targets")
	r.shutdown(t)
}

func TestStartupErrorsAreOneLine(t *testing.T) {
	// A port in use.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cfg := testConfig(t, "listen: "+busy.Addr().String()+"\n")
	err = Run(context.Background(), Options{Config: cfg})
	require.Error(t, err)
	require.Regexp(t, regexp.MustCompile(`^listen 127\.0\.0\.1:\d+: .*address already in use$`), err.Error())

	// A data dir that cannot be created: its parent is a file.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	cfg = testConfig(t, "")
	cfg.DataDir = filepath.Join(file, "data")
	err = Run(context.Background(), Options{Config: cfg})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "\n")
	require.Contains(t, err.Error(), cfg.DataDir)
}
