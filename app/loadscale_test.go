//go:build linux

package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/cputime"
	"github.com/upwatch/upwatch/internal/procs"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/schedule"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// TestLoadScale is the scale harness of issue 11 (`make load-scale`): the
// whole service in-process (Run, embedded stores) with
// UPWATCH_LOAD_TARGETS HTTP targets (default 100,000) at
// UPWATCH_LOAD_INTERVAL (default 60s) for UPWATCH_LOAD_INTERVALS intervals
// (default 3), checking a loopback server that runs in a child process so
// the CPU figures are the service's alone. It reports, per interval from
// the start: checks stored against expected, targets missed and checked
// twice (each check attributed to its planned slot, recomputed from the
// phase hash), lag p50/p99 recomputed from the samples' starts, CPU (% of
// one core, getrusage) and alert state commits; then RSS, store growth in
// bytes per sample, and the time and size of one /metrics scrape. It
// asserts only that the run completed and stored samples: it is a
// measurement, not a pass/fail benchmark. UPWATCH_LOAD_CPUPROFILE names a
// file for a CPU profile of the run, UPWATCH_LOAD_MEMPROFILE one for the
// heap at its end; UPWATCH_LOAD_LAGTRACE one for every check 20 ms or more
// late, to tell stalls from a backlog. UPWATCH_START_WINDOW sets
// start_window, as it does for upwatch serve. Skipped unless
// UPWATCH_LOAD_SCALE is set.
func TestLoadScale(t *testing.T) {
	n, iv, url := loadSetup(t, "load-scale")
	intervals := envInt("UPWATCH_LOAD_INTERVALS", 3)
	t.Logf("GOMAXPROCS %d, as upwatch serve runs", procs.Tune(os.Getenv))

	cfg := &config.Config{AllowPrivateTargets: true, DataDir: t.TempDir()}
	for i := range n {
		cfg.Targets = append(cfg.Targets, config.Target{Target: prober.Target{
			Name: fmt.Sprintf("scale-%06d", i), Kind: "http", Interval: iv, Timeout: 5 * time.Second,
			HTTP: &prober.HTTPSpec{URL: url, ExpectStatus: []string{"200"}},
		}})
	}
	if v := os.Getenv("UPWATCH_START_WINDOW"); v != "" { // compare builds' start windows
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "UPWATCH_START_WINDOW")
		cfg.StartWindow = &d
	}
	cfg.Normalize()
	require.Empty(t, cfg.Validate())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	defer cpuProfile(t)()
	cpu0, launched := cputime.Used(), time.Now()
	go func() {
		done <- Run(ctx, Options{Config: cfg, Listener: ln, Registry: reg, Ready: func(a net.Addr) { ready <- a }})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("Run ended before it was ready: %v", err)
	}
	t0 := time.Now()
	t.Logf("%d targets @%s: ready after %s (CPU %.1f s)", n, iv, t0.Sub(launched).Round(time.Millisecond), (cputime.Used() - cpu0).Seconds())
	dbBefore := storeBytes(t, cfg.DataDir)

	// One row per interval: CPU and commits, read at each boundary. A
	// Gather of every series is itself costly with many targets, so the
	// CPU and wall time it takes are left out.
	type window struct {
		cpu, wall, gather time.Duration
		commits           float64
	}
	wins := make([]window, intervals)
	prevCommits := gatherCounterSum(t, reg, "upwatch_alert_commits_total")
	prevCPU, prevWall := cputime.Used(), time.Now()
	for i := range intervals {
		time.Sleep(time.Until(t0.Add(time.Duration(i+1) * iv)))
		c, w := cputime.Used(), time.Now()
		k := gatherCounterSum(t, reg, "upwatch_alert_commits_total")
		prevCPU, prevWall, wins[i] = cputime.Used(), time.Now(), window{cpu: c - prevCPU, wall: w.Sub(prevWall), commits: k - prevCommits}
		wins[i].gather, prevCommits = prevWall.Sub(w), k
	}
	end := t0.Add(time.Duration(intervals) * iv)
	rss := residentBytes(t)
	if path := os.Getenv("UPWATCH_LOAD_MEMPROFILE"); path != "" {
		f, err := os.Create(path)
		require.NoError(t, err)
		require.NoError(t, pprof.WriteHeapProfile(f))
		require.NoError(t, f.Close())
	}
	lagHist := gatherHistogram(t, reg, "upwatch_scheduler_lag_seconds")
	missed := gatherCounterSum(t, reg, "upwatch_scheduler_missed_checks_total")
	late := gatherCounterSum(t, reg, "upwatch_scheduler_late_checks_total")
	scrapeTook, scrapeBytes, scrapeLines := scrapeMetrics(t, "http://"+addr.String()+"/metrics")
	cancel()
	require.NoError(t, <-done)
	dbAfter := storeBytes(t, cfg.DataDir)

	// Every sample whose planned slot lies in a full interval, by target.
	samples, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(cfg.DataDir, DBFile), PruneInterval: -1})
	require.NoError(t, err)
	defer samples.Close()
	perWin := make([]struct {
		stored, missed, twice int
		lags                  []time.Duration
	}, intervals)
	// UPWATCH_LOAD_LAGTRACE names a file for every check started 20 ms or
	// more after its slot ("seconds since the first interval" "lag ms"),
	// to tell a lag tail's stalls apart from a steady backlog.
	var lagTrace io.Writer
	const lagTraceMin = 20 * time.Millisecond
	if path := os.Getenv("UPWATCH_LOAD_LAGTRACE"); path != "" {
		f, err := os.Create(path)
		require.NoError(t, err)
		defer f.Close()
		lagTrace = f
	}
	total := 0
	for _, tg := range cfg.Targets {
		var counts = make([]int, intervals)
		q := tsdb.SampleQuery{TargetID: tg.ID, From: t0.Add(-iv), To: end.Add(iv), Limit: 10000}
		for {
			page, err := samples.Samples(context.Background(), q)
			require.NoError(t, err)
			for _, s := range page.Samples {
				if !s.Start.Before(t0) {
					total++ // stored after dbBefore was measured
				}
				lag := time.Duration(((s.Start.UnixNano()-int64(schedule.Offset(tg.ID, iv)))%int64(iv) + int64(iv)) % int64(iv))
				w := int(s.Start.Add(-lag).Sub(t0) / iv)
				if s.Start.Add(-lag).Before(t0) || w >= intervals {
					continue
				}
				counts[w]++
				perWin[w].stored++
				perWin[w].lags = append(perWin[w].lags, lag)
				if lagTrace != nil && lag >= lagTraceMin {
					fmt.Fprintf(lagTrace, "%.3f %.1f\n", s.Start.Add(-lag).Sub(t0).Seconds(), float64(lag)/float64(time.Millisecond))
				}
			}
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
		for w, c := range counts {
			switch {
			case c == 0:
				perWin[w].missed++
			case c > 1:
				perWin[w].twice++
			}
		}
	}
	require.NotZero(t, total, "samples were stored")

	// The Gather at the end of an interval (see above) stalls the next
	// one's checks for as long as it runs: its time is shown with them.
	t.Logf("interval  stored/s (expected)  missed  twice  lag p50 / p99          CPU %%   commits/s  gather after")
	for i, w := range perWin {
		slices.Sort(w.lags)
		t.Logf("%8d  %8.1f (%8.1f)  %6d  %5d  %9s / %-10s  %5.1f  %9.1f  %s", i+1,
			float64(w.stored)/iv.Seconds(), float64(n)/iv.Seconds(), w.missed, w.twice,
			pct(w.lags, 0.50).Round(10*time.Microsecond), pct(w.lags, 0.99).Round(10*time.Microsecond),
			100*wins[i].cpu.Seconds()/wins[i].wall.Seconds(), wins[i].commits/iv.Seconds(), wins[i].gather.Round(time.Millisecond))
	}
	growth := dbAfter - dbBefore
	t.Logf("scheduler: lag p50 %.2f ms, p99 %.2f ms (top bucket %s); missed checks %.0f, late checks %.0f",
		1000*quantile(lagHist, 0.5), 1000*quantile(lagHist, 0.99), maxBucket(lagHist), missed, late)
	t.Logf("RSS %.0f MB (peak %.0f MB); store grew %.1f MB for %d samples: %.0f B/sample, %.2f GB/h at %d targets",
		float64(rss)/(1<<20), float64(peakRSS(t))/(1<<20), float64(growth)/(1<<20), total,
		float64(growth)/float64(total), float64(growth)/float64(total)*float64(n)/iv.Seconds()*3600/1e9, n)
	t.Logf("/metrics: %s, %.1f MB, %d lines", scrapeTook.Round(time.Millisecond), float64(scrapeBytes)/(1<<20), scrapeLines)
}

// loadSetup skips t unless UPWATCH_LOAD_SCALE is set (make target names
// the make target that sets it), reads the number of targets and the
// interval, and starts the loopback server, returning its URL.
func loadSetup(t *testing.T, target string) (n int, iv time.Duration, url string) {
	if os.Getenv("UPWATCH_LOAD_SCALE") == "" {
		t.Skipf("scale harness: run with `make %s` (UPWATCH_LOAD_SCALE=1)", target)
	}
	n = envInt("UPWATCH_LOAD_TARGETS", 100000)
	iv = 60 * time.Second
	if d, err := time.ParseDuration(os.Getenv("UPWATCH_LOAD_INTERVAL")); err == nil && d > 0 {
		iv = d
	}
	raiseFileLimit(t)
	return n, iv, startLoopbackTarget(t)
}

// TestLoadScaleTarget is the loopback server TestLoadScale checks, run in
// a child process: it prints its URL and serves until stdin closes.
func TestLoadScaleTarget(t *testing.T) {
	if os.Getenv("UPWATCH_LOAD_SCALE_TARGET") == "" {
		t.Skip("the child process of TestLoadScale")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "ok\n")
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	fmt.Printf("URL http://%s/\n", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Close()
}

// startLoopbackTarget starts TestLoadScaleTarget in a child process and
// returns its URL; the child ends with the test.
func startLoopbackTarget(t *testing.T) string {
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadScaleTarget$")
	cmd.Env = append(os.Environ(), "UPWATCH_LOAD_SCALE_TARGET=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if url, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return url
		}
	}
	t.Fatalf("the loopback target did not start: %v", sc.Err())
	return ""
}

// raiseFileLimit lifts the soft limit on open files to the hard one: every
// check in flight holds a socket, and so does the loopback server.
func raiseFileLimit(t *testing.T) {
	var l syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l))
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			t.Logf("open files limit stays at %d: %v", l.Cur, err)
		}
	}
}

func peakRSS(t *testing.T) int64 {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return ru.Maxrss << 10 // kB on Linux
}

// storeBytes is the size of the sample store's files (database and its
// SQLite write-ahead file).
func storeBytes(t *testing.T, dir string) int64 {
	var n int64
	for _, name := range []string{DBFile, DBFile + "-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func scrapeMetrics(t *testing.T, url string) (time.Duration, int64, int) {
	start := time.Now()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var size int64
	lines := 0
	br := bufio.NewReaderSize(resp.Body, 1<<16)
	for {
		line, err := br.ReadSlice('\n')
		size += int64(len(line))
		if len(line) > 0 && line[len(line)-1] == '\n' {
			lines++
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			require.NoError(t, err)
		}
	}
	return time.Since(start), size, lines
}

// pct is the q-quantile of sorted durations (0 when empty).
// cpuProfile starts a CPU profile into the file UPWATCH_LOAD_CPUPROFILE
// names, if it names one, and returns what stops it.
func cpuProfile(t *testing.T) (stop func()) {
	path := os.Getenv("UPWATCH_LOAD_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, pprof.StartCPUProfile(f))
	return func() { pprof.StopCPUProfile(); _ = f.Close() }
}

func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
