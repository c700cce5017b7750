package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/sqlite"
)

// agentTargets is a set of HTTP targets that count the checks they answer.
type agentTargets struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string][]time.Time // path → arrival times
}

func newAgentTargets(t *testing.T) *agentTargets {
	a := &agentTargets{hits: map[string][]time.Time{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.hits[r.URL.Path] = append(a.hits[r.URL.Path], time.Now())
		a.mu.Unlock()
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// between counts each path's checks that arrived in [from, to).
func (a *agentTargets) between(from, to time.Time) map[string]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]int{}
	for p, ts := range a.hits {
		for _, at := range ts {
			if !at.Before(from) && at.Before(to) {
				out[p]++
			}
		}
	}
	return out
}

func (a *agentTargets) total(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.hits[path])
}

const agentTargetCount = 24

// agentServeConfig writes serve's config: targets checked from eu-west
// only, by agents (the server checks none itself), every second.
func agentServeConfig(t *testing.T, dir, listen string, a *agentTargets, paused bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\ndata_dir: %s\nallow_private_targets: true\nserver: {check_locally: false}\nagents: {ttl: 2s}\ntargets:\n",
		listen, filepath.Join(dir, "data"))
	for i := range agentTargetCount {
		fmt.Fprintf(&b, "  - {name: t%03d, kind: http, interval: 1s, timeout: 1s, locations: [eu-west], paused: %t, http: {url: %q}}\n",
			i, paused, fmt.Sprintf("%s/t/%03d", a.srv.URL, i))
	}
	path := filepath.Join(dir, "upwatch.yaml")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return path
}

// runAgent starts `upwatch agent` serving its metrics on a free port.
type agentProc struct {
	cmd     *exec.Cmd
	metrics string
}

func startAgent(t *testing.T, bin, server, key, dataDir string, logf io.Writer) *agentProc {
	t.Helper()
	return startAgentIn(t, bin, server, key, "eu-west", dataDir, logf)
}

// startAgentIn starts `upwatch agent` for location.
func startAgentIn(t *testing.T, bin, server, key, location, dataDir string, logf io.Writer) *agentProc {
	t.Helper()
	listen := freePort(t)
	cmd := exec.Command(bin, "agent", "-server", "http://"+server, "-location", location, "-data-dir", dataDir,
		"-listen", listen, "-allow-private-targets", "-log-level", "debug")
	cmd.Env = append(os.Environ(), EnvAgentKey+"="+key)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	p := &agentProc{cmd: cmd, metrics: "http://" + listen + "/metrics"}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return p
}

// metric reads one series of the agent's /metrics; -1 if unreachable.
func (p *agentProc) metric(series string) float64 {
	resp, err := http.Get(p.metrics)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return metricValue(string(b), series)
}

// agentKey makes an agent key for eu-west through the API.
func agentKey(t *testing.T, listen, admin string) string {
	c := apiClient{t: t, base: "http://" + listen, key: admin}
	k := c.json(http.MethodPost, "/api/v1/keys", map[string]any{"name": "eu agents", "scopes": []string{"agent"}, "location": "eu-west"}, http.StatusCreated)
	require.Equal(t, "eu-west", k["location"])
	return k["key"].(string)
}

func agentLog(t *testing.T, dir, name string) *os.File {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			t.Logf("%s log:\n%s", name, b)
		}
	})
	return f
}

// TestAgentsShareAndHandOver: two agents in one location split its
// targets, every target is checked once per interval across them, when
// one is killed (-9) the other has all of them within 2 TTLs, and the
// killed one, restarted, rejoins.
func TestAgentsShareAndHandOver(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	targets := newAgentTargets(t)
	listen := freePort(t)
	admin := "uw_" + strings.Repeat("A", 43)
	srv := &binary{path: bin, config: agentServeConfig(t, dir, listen, targets, false), log: agentLog(t, dir, "serve"),
		env: []string{"UPWATCH_BOOTSTRAP_KEY=" + admin}}
	srv.start(t, listen)
	t.Cleanup(func() {
		if srv.cmd.ProcessState == nil {
			srv.stop(t)
		}
	})
	key := agentKey(t, listen, admin)

	a := startAgent(t, bin, listen, key, filepath.Join(dir, "a"), agentLog(t, dir, "agent-a"))
	b := startAgent(t, bin, listen, key, filepath.Join(dir, "b"), agentLog(t, dir, "agent-b"))
	const series = "upwatch_agent_targets"
	require.Eventually(t, func() bool {
		na, nb := a.metric(series), b.metric(series)
		return na > 0 && nb > 0 && na+nb == agentTargetCount
	}, 60*time.Second, 100*time.Millisecond, "the two agents never split the targets")
	t.Logf("split: a %v, b %v", a.metric(series), b.metric(series))

	// Settled: over 5 s every target is checked about 5 times, not 10.
	time.Sleep(1500 * time.Millisecond) // the new assignments' first slots
	from := time.Now()
	time.Sleep(5 * time.Second)
	for i := range agentTargetCount {
		n := targets.between(from, from.Add(5*time.Second))[fmt.Sprintf("/t/%03d", i)]
		require.GreaterOrEqual(t, n, 4, "target %d checked %d times in 5 intervals", i, n)
		require.LessOrEqual(t, n, 6, "target %d checked %d times in 5 intervals: by both agents?", i, n)
	}

	// kill -9 a: b takes its targets within 2 TTLs (4 s).
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	_ = a.cmd.Wait()
	killed := time.Now()
	require.Eventually(t, func() bool { return b.metric(series) == agentTargetCount }, 30*time.Second, 50*time.Millisecond)
	took := time.Since(killed)
	t.Logf("hand-over took %s", took)
	require.LessOrEqual(t, took, 4*time.Second, "hand-over slower than 2 TTLs")
	// And every target is checked again.
	moved := time.Now()
	require.Eventually(t, func() bool {
		got := targets.between(moved, time.Now())
		for i := range agentTargetCount {
			if got[fmt.Sprintf("/t/%03d", i)] == 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 100*time.Millisecond, "a target was not checked after the hand-over")

	// a restarts (same data dir, so the same id) and rejoins.
	a = startAgent(t, bin, listen, key, filepath.Join(dir, "a"), agentLog(t, dir, "agent-a-again"))
	require.Eventually(t, func() bool {
		na, nb := a.metric(series), b.metric(series)
		return na > 0 && nb > 0 && na+nb == agentTargetCount
	}, 60*time.Second, 100*time.Millisecond, "the restarted agent never rejoined")
}

// TestAgentCutOffLosesNothing: the server stops for a while; the agent
// checks on and spools, and once the server is back every check reaches
// the store once.
func TestAgentCutOffLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	targets := newAgentTargets(t)
	listen := freePort(t)
	admin := "uw_" + strings.Repeat("B", 43)
	cfg := agentServeConfig(t, dir, listen, targets, false)
	srv := &binary{path: bin, config: cfg, log: agentLog(t, dir, "serve"), env: []string{"UPWATCH_BOOTSTRAP_KEY=" + admin}}
	srv.start(t, listen)
	key := agentKey(t, listen, admin)
	ag := startAgent(t, bin, listen, key, filepath.Join(dir, "agent"), agentLog(t, dir, "agent"))
	require.Eventually(t, func() bool { return ag.metric("upwatch_agent_targets") == agentTargetCount },
		60*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool { return ag.metric("upwatch_agent_results_pushed_total") > agentTargetCount },
		30*time.Second, 100*time.Millisecond)

	// Cut off: the server is away for 60 s (the figure) while
	// checks go on every second.
	srv.stop(t)
	stoppedAt := targets.total("/t/000")
	time.Sleep(60 * time.Second)
	require.GreaterOrEqual(t, targets.total("/t/000")-stoppedAt, 40, "the agent stopped checking while cut off")
	require.Greater(t, ag.metric("upwatch_agent_unsent_results"), float64(agentTargetCount), "nothing spooled while cut off")
	srv.start(t, listen)

	// Then pause every target (config reload), so checks end, and wait
	// for the spool to drain.
	agentServeConfig(t, dir, listen, targets, true)
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return ag.metric("upwatch_agent_targets") == 0 }, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool { return ag.metric("upwatch_agent_unsent_results") == 0 }, 60*time.Second, 100*time.Millisecond)
	t.Logf("duplicates the server recognised: %v", ag.metric("upwatch_agent_results_duplicate_total"))
	require.Zero(t, ag.metric("upwatch_agent_results_rejected_total"))
	srv.stop(t)

	// Every check a target answered is in the store once.
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(dir, "data", "upwatch.db"), PruneInterval: -1})
	require.NoError(t, err)
	defer st.Close()
	for i := range agentTargetCount {
		id := fmt.Sprintf("t%03d", i)
		samples := readAll(t, st, id)
		starts := map[time.Time]bool{}
		for _, s := range samples {
			require.Equal(t, "eu-west", s.Location)
			require.False(t, starts[s.Start], "target %s: sample at %s stored twice", id, s.Start)
			starts[s.Start] = true
		}
		if n := targets.total("/t/" + id[1:]); n != len(samples) {
			targets.mu.Lock()
			hits := targets.hits["/t/"+id[1:]]
			targets.mu.Unlock()
			for _, h := range hits {
				t.Logf("hit %s", h.Format("15:04:05.000"))
			}
			for _, s := range samples {
				t.Logf("sample %s scheduled %s", s.Start.Format("15:04:05.000"), s.Scheduled.Format("15:04:05.000"))
			}
			require.Equal(t, n, len(samples), "target %s: checks answered vs samples stored", id)
		}
	}
}

func readAll(t *testing.T, r tsdb.Reader, id string) []prober.Result {
	var out []prober.Result
	q := tsdb.SampleQuery{TargetID: id, From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Limit: 10000}
	for {
		page, err := r.Samples(context.Background(), q)
		require.NoError(t, err)
		out = append(out, page.Samples...)
		if page.NextCursor == "" {
			return out
		}
		q.Cursor = page.NextCursor
	}
}

// TestAgentFlags: a missing or bad flag is a usage error naming it.
func TestAgentFlags(t *testing.T) {
	code, _, stderr := runCLI(nil, "agent")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-server, -key, -location required")
	code, _, stderr = runCLI(map[string]string{EnvAgentKey: "uw_x"}, "agent", "-server", "ftp://x", "-location", "eu")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-server: want an http or https URL")
	code, _, stderr = runCLI(nil, "agent", "-server", "http://x", "-key", "uw_x", "-location", "e u")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-location: must be")
	code, _, stderr = runCLI(nil, "agent", "-server", "http://x", "-key", "uw_x", "-location", "eu", "-start-window", "1s")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-start-window: must be between 0 and 100ms (got 1s)")
	code, _, stderr = runCLI(nil, "agent", "-key", "a", "-key-file", "b")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "-key or -key-file, not both")
	code, _, stderr = runCLI(nil, "agent", "-server", "https://x", "-key", "uw_x", "-location", "eu", "-tls-cert", "c.pem")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "upwatch agent: give -tls-cert and -tls-key together")
	code, _, stderr = runCLI(nil, "agent", "-server", "https://x", "-key", "uw_x", "-location", "eu", "-tls-ca", "/nonexistent/ca.pem")
	require.Equal(t, exitUsage, code)
	require.Contains(t, stderr, "upwatch agent: -tls-ca: open /nonexistent/ca.pem")
}
