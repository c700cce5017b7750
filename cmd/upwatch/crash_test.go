package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/influx"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// crashTargets are local targets that remember when they answered each
// request, per path.
type crashTargets struct {
	srv *httptest.Server
	mu  sync.Mutex
	at  map[string][]time.Time
}

func newCrashTargets(t *testing.T) *crashTargets {
	t.Helper()
	c := &crashTargets{at: map[string][]time.Time{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "fine")
		if f, ok := w.(http.Flusher); ok {
			f.Flush() // answered: the prober has the whole response
		}
		c.mu.Lock()
		c.at[r.URL.Path] = append(c.at[r.URL.Path], time.Now())
		c.mu.Unlock()
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *crashTargets) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, ts := range c.at {
		n += len(ts)
	}
	return n
}

// answeredBefore counts, per path, the requests answered before t.
func (c *crashTargets) answeredBefore(t time.Time) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for p, ts := range c.at {
		for _, a := range ts {
			if a.Before(t) {
				out[p]++
			}
		}
	}
	return out
}

// crashConfig writes a config with n targets checked every second.
func crashConfig(t *testing.T, dir, listen, prefix string, c *crashTargets, storage string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\ndata_dir: %s\nallow_private_targets: true\nworkers: 64\n%s\ntargets:\n",
		listen, filepath.Join(dir, "data"), storage)
	for i := range crashTargetCount {
		fmt.Fprintf(&b, "  - {name: %s%03d, kind: http, interval: 1s, timeout: 1s, http: {url: %q}}\n",
			prefix, i, fmt.Sprintf("%s/t/%03d", c.srv.URL, i))
	}
	path := filepath.Join(dir, "upwatch.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return path
}

const crashTargetCount = 150

// crashMargin is how long before the kill a target must have answered for
// its check to count as completed: the prober still reads the response and
// hands the result over.
const crashMargin = 50 * time.Millisecond

// runCrash starts upwatch, kills it with SIGKILL while checks run, starts
// it again and stops it cleanly. It returns the kill time and, per target
// ID, how many checks the target answered at least crashMargin before.
func runCrash(t *testing.T, bin, cfg, listen, prefix string, c *crashTargets, logf *os.File) (time.Time, map[string]int) {
	t.Helper()
	b := &binary{path: bin, config: cfg, log: logf}
	b.start(t, listen)
	// Let at least a few rounds of checks complete, then kill mid-round.
	want := c.total() + 5*crashTargetCount + rand.IntN(crashTargetCount)
	require.Eventually(t, func() bool { return c.total() >= want }, 60*time.Second, 5*time.Millisecond)
	killed := time.Now()
	b.kill9(t)
	answered := map[string]int{}
	for p, n := range c.answeredBefore(killed.Add(-crashMargin)) {
		answered[prefix+strings.TrimPrefix(p, "/t/")] = n
	}
	b.start(t, listen) // replays what the crash left
	b.stop(t)
	return killed, answered
}

// lost compares what the targets answered with the successful samples the
// store holds from before the kill, and returns how many answered checks
// are missing and how many were answered.
func lost(t *testing.T, r tsdb.Reader, killed time.Time, answered map[string]int) (missing, total int) {
	t.Helper()
	ctx := context.Background()
	for id, n := range answered {
		total += n
		stored := 0
		q := tsdb.SampleQuery{TargetID: id, From: killed.Add(-time.Hour), To: killed, Limit: 10000}
		for {
			page, err := r.Samples(ctx, q)
			require.NoError(t, err)
			for _, s := range page.Samples {
				if s.Success {
					stored++
				}
			}
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		if stored < n {
			missing += n - stored
		}
	}
	return missing, total
}

func crashLog(t *testing.T, dir string) *os.File {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "upwatch.log"))
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := os.ReadFile(logf.Name())
			t.Logf("upwatch log:\n%s", logs)
		}
		logf.Close()
	})
	return logf
}

// TestKill9LosesNoCheckSQLite kills the binary (SIGKILL) while 150 targets
// are checked every second, restarts it, and finds every check a target
// answered before the kill in the embedded store.
func TestKill9LosesNoCheckSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	c := newCrashTargets(t)
	listen := freePort(t)
	cfg := crashConfig(t, dir, listen, "t", c, "")
	killed, answered := runCrash(t, bin, cfg, listen, "t", c, crashLog(t, dir))

	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, "data", "upwatch.db"), PruneInterval: -1})
	require.NoError(t, err)
	defer st.Close()
	missing, total := lost(t, st, killed, answered)
	t.Logf("sqlite: %d of %d checks answered at least %s before kill -9 are missing", missing, total, crashMargin)
	require.Zero(t, missing, "checks lost across kill -9")
}

// influxForCrash returns the InfluxDB URL and a fresh bucket, or skips.
func influxForCrash(t *testing.T) (base, bucket string) {
	t.Helper()
	base = strings.TrimRight(os.Getenv("UPWATCH_TEST_INFLUX_URL"), "/")
	if base == "" {
		if os.Getenv("UPWATCH_REQUIRE_INFLUX") != "" {
			t.Fatal("UPWATCH_REQUIRE_INFLUX is set but UPWATCH_TEST_INFLUX_URL is not: start InfluxDB with .ci/services/influxdb.sh start")
		}
		t.Skip("UPWATCH_TEST_INFLUX_URL is not set: no InfluxDB to test against (start one with .ci/services/influxdb.sh start and export what it prints)")
	}
	db := fmt.Sprintf("upwatch_crash_%d_%08x", os.Getpid(), rand.Uint32())
	influxQL := func(q string) {
		resp, err := http.PostForm(base+"/query", url.Values{"q": {q}})
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, q)
	}
	influxQL("CREATE DATABASE " + db)
	t.Cleanup(func() { influxQL("DROP DATABASE " + db) })
	return base, db + "/autogen"
}

// TestKill9LosesNoCheckInfluxDB is the crash test against InfluxDB: once
// while it is up, and once while it is unreachable (samples go to the
// spool) and back up for the restart.
func TestKill9LosesNoCheckInfluxDB(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	base, bucket := influxForCrash(t)
	bin := buildBinary(t, t.TempDir())
	for _, tc := range []struct {
		name string
		down bool
	}{{"up", false}, {"unreachable", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := newCrashTargets(t)
			listen := freePort(t)
			prefix := fmt.Sprintf("c%08x-", rand.Uint32())
			// While down, InfluxDB's URL is a closed port; after the
			// crash and a restart a proxy opens there.
			influxURL := base
			proxyAddr := freePort(t)
			if tc.down {
				influxURL = "http://" + proxyAddr
			}
			storage := fmt.Sprintf("storage:\n  type: influxdb\n  influxdb: {url: %q, bucket: %q}", influxURL, bucket)
			cfg := crashConfig(t, dir, listen, prefix, c, storage)
			killed, answered := runCrash(t, bin, cfg, listen, prefix, c, crashLog(t, dir))
			if tc.down {
				entries, err := os.ReadDir(filepath.Join(dir, "data", "spool"))
				require.NoError(t, err)
				require.NotEmpty(t, entries, "samples were spooled while InfluxDB was unreachable")
				proxy(t, proxyAddr, base)
				b := &binary{path: bin, config: cfg, log: crashLog(t, t.TempDir())}
				b.start(t, listen)
				st := openInflux(t, base, bucket)
				// The spool is replayed once InfluxDB answers: wait until it
				// holds every answered check, or has stopped growing.
				prev, still := -1, 0
				for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && still < 25; {
					m, _ := lost(t, st, killed, answered)
					if m == 0 {
						break
					}
					if m == prev {
						still++
					} else {
						prev, still = m, 0
					}
					time.Sleep(200 * time.Millisecond)
				}
				b.stop(t)
			}
			missing, total := lost(t, openInflux(t, base, bucket), killed, answered)
			t.Logf("influxdb %s: %d of %d checks answered at least %s before kill -9 are missing", tc.name, missing, total, crashMargin)
			require.Zero(t, missing, "checks lost across kill -9")
		})
	}
}

func openInflux(t *testing.T, base, bucket string) *influx.Store {
	t.Helper()
	st, err := influx.Open(influx.Options{URL: base, Bucket: bucket})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// proxy forwards TCP connections on addr to the server at base until the
// test ends.
func proxy(t *testing.T, addr, base string) {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				up, err := net.Dial("tcp", u.Host)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
				go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}
