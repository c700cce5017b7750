package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/registry/registrytest"
)

// fleetTargets answers the checks of the fleet test: /t/NNN always, and
// /split fails for the location named in failFor (every location while
// allDown), telling locations apart by the header every HTTP check sends.
type fleetTargets struct {
	srv     *httptest.Server
	failFor atomic.Value // string
	allDown atomic.Bool
	mu      sync.Mutex
	hits    map[string][]time.Time // "path location" → arrival times
}

func newFleetTargets(t *testing.T) *fleetTargets {
	f := &fleetTargets{hits: map[string][]time.Time{}}
	f.failFor.Store("")
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loc := r.Header.Get(prober.LocationHeader)
		f.mu.Lock()
		f.hits[r.URL.Path+" "+loc] = append(f.hits[r.URL.Path+" "+loc], time.Now())
		f.mu.Unlock()
		if r.URL.Path == "/split" && (f.allDown.Load() || f.failFor.Load().(string) == loc) {
			http.Error(w, "not from "+loc, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fleetTargets) between(key string, from, to time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, at := range f.hits[key] {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// notes is a webhook receiver counting accepted notifications per kind and
// target, and deliveries per idempotency key.
type notes struct {
	mu    sync.Mutex
	byKey map[string]int
	by    map[string]int // "kind target" → notifications
}

func (n *notes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var p struct {
		Kind   string `json:"kind"`
		Target struct {
			ID string `json:"id"`
		} `json:"target"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &p)
	n.mu.Lock()
	defer n.mu.Unlock()
	key := r.Header.Get("X-Upwatch-Key")
	if n.byKey[key] == 0 {
		n.by[p.Kind+" "+p.Target.ID]++
	}
	n.byKey[key]++
}

// String lists the notifications so far, for failure messages.
func (n *notes) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprint(n.by)
}

func (n *notes) count(kind, target string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.by[kind+" "+target]
}

func (n *notes) total(kind string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	sum := 0
	for k, v := range n.by {
		if strings.HasPrefix(k, kind+" ") {
			sum += v
		}
	}
	return sum
}

// failover is the load balancer in front of the servers: each request goes
// to the first backend that answers, the body buffered so a push can be
// sent on to the next one (pushes are idempotent).
func failover(t *testing.T, backends ...string) string {
	tr := &http.Transport{DisableKeepAlives: true}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for _, b := range backends {
			req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+b+r.URL.RequestURI(), bytes.NewReader(body))
			req.Header = r.Header.Clone()
			resp, err := tr.RoundTrip(req)
			if err != nil {
				continue
			}
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
		http.Error(w, "no backend answers", http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

const fleetTargetCount = 8

// TestFleetEndToEnd runs two `upwatch serve` on one PostgreSQL registry
// behind a load balancer and four agents, two in eu-west and two in
// us-east: every target is checked once per interval from each location,
// and every result is evaluated by the lease holder alone (the follower
// forwards the pushes it gets); a target failing from us-east only opens
// no incident under down_when majority and one under any; a location whose
// agents are stopped drops out with an event and no false DOWN; kill -9 of
// the leader hands alerting and ingestion to the other, and an outage
// after it is told once.
func TestFleetEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	pgURL := registrytest.PostgresSchemaURL(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	targets := newFleetTargets(t)
	hook := &notes{byKey: map[string]int{}, by: map[string]int{}}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()
	mk, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	admin, _, _, err := api.NewKey()
	require.NoError(t, err)

	var tcfg strings.Builder
	for i := range fleetTargetCount {
		fmt.Fprintf(&tcfg, "  - {name: t%03d, kind: http, interval: 1s, timeout: 800ms, alert_policy: majority, http: {url: %q}}\n", i, fmt.Sprintf("%s/t/%03d", targets.srv.URL, i))
	}
	for _, pol := range []string{"majority", "any"} {
		fmt.Fprintf(&tcfg, "  - {name: split-%s, kind: http, interval: 1s, timeout: 800ms, alert_policy: %s, http: {url: %q}}\n", pol, pol, targets.srv.URL+"/split")
	}
	newServer := func(name string) *replica {
		return sharedReplica(t, dir, bin, name, pgURL, mk, admin, fmt.Sprintf(`
server: {check_locally: false}
agents: {ttl: 2s}
alerting:
  webhook: {secret: "e2e-webhook-secret"}
  locations: {stale_after: 3s}
contact_groups:
  - {name: ops, webhooks: [%q]}
alert_policies:
  - {name: majority, failure_threshold: 2, success_threshold: 2, channels: [webhook], contact_groups: [ops], down_when: majority}
  - {name: any, failure_threshold: 2, success_threshold: 2, channels: [webhook], contact_groups: [ops], down_when: any}
targets:
%s`, hookSrv.URL+"/hook", tcfg.String()))
	}
	a, b := startPair(t, newServer("serve-a"), newServer("serve-b"))
	// Two load balancer front ends, one preferring each server: both
	// take pushes, both go on when one dies.
	lbA, lbB := failover(t, a.listen, b.listen), failover(t, b.listen, a.listen)

	keys := map[string]string{}
	for _, loc := range []string{"eu-west", "us-east"} {
		k := apiClient{t: t, base: "http://" + lbB, key: admin}.json(http.MethodPost, "/api/v1/keys",
			map[string]any{"name": loc + " agents", "scopes": []string{"agent"}, "location": loc}, http.StatusCreated)
		keys[loc] = k["key"].(string)
	}
	type agentOf struct {
		*agentProc
		loc string
	}
	var agents []agentOf
	for i, spec := range []struct{ loc, lb string }{{"eu-west", lbA}, {"eu-west", lbB}, {"us-east", lbA}, {"us-east", lbB}} {
		name := fmt.Sprintf("agent-%d-%s", i, spec.loc)
		agents = append(agents, agentOf{startAgentIn(t, bin, spec.lb, keys[spec.loc], spec.loc, filepath.Join(dir, name), agentLog(t, dir, name)), spec.loc})
	}
	const series = "upwatch_agent_targets"
	all := fleetTargetCount + 2
	require.Eventually(t, func() bool {
		for i := 0; i < 4; i += 2 {
			n0, n1 := agents[i].metric(series), agents[i+1].metric(series)
			if n0 <= 0 || n1 <= 0 || n0+n1 != float64(all) {
				return false
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond, "the agents of each location never split its targets")

	// (a) Settled: over 5 s every target is checked about 5 times from
	// each location, not 10; every result is evaluated by the leader.
	time.Sleep(1500 * time.Millisecond)
	from := time.Now()
	time.Sleep(5 * time.Second)
	for i := range fleetTargetCount {
		for _, loc := range []string{"eu-west", "us-east"} {
			n := targets.between(fmt.Sprintf("/t/%03d %s", i, loc), from, from.Add(5*time.Second))
			require.GreaterOrEqual(t, n, 4, "target %d checked %d times from %s in 5 intervals", i, n, loc)
			require.LessOrEqual(t, n, 6, "target %d checked %d times from %s in 5 intervals: by both agents?", i, n, loc)
		}
	}
	evaluated := func(r *replica, loc string) float64 {
		return r.metric(t, `upwatch_checks_total{kind="http",location="`+loc+`",result="success"}`)
	}
	for _, loc := range []string{"eu-west", "us-east"} {
		require.Greater(t, evaluated(a, loc), 0.0, "the leader takes %s's results", loc)
		require.LessOrEqual(t, evaluated(b, loc), 0.0, "the follower forwards %s's results", loc)
	}
	require.LessOrEqual(t, b.metric(t, "upwatch_results_not_evaluated_total"), 0.0)

	// (b) /split fails from us-east only: DOWN under any, not under majority.
	targets.failFor.Store("us-east")
	require.Eventually(t, func() bool { return hook.count("down", "split-any") == 1 }, 30*time.Second, 50*time.Millisecond)
	time.Sleep(3 * time.Second) // 3 more intervals: a majority DOWN would show by now
	require.Zero(t, hook.count("down", "split-majority"), "one location of two is no majority")
	targets.failFor.Store("")
	require.Eventually(t, func() bool { return hook.count("up", "split-any") == 1 }, 30*time.Second, 50*time.Millisecond)

	// (c) SIGSTOP both us-east agents: us-east drops out with an event,
	// and nothing goes DOWN; SIGCONT brings it back.
	downs := hook.total("down")
	for _, ag := range agents[2:] {
		require.NoError(t, ag.cmd.Process.Signal(syscall.SIGSTOP))
	}
	stopped := true
	defer func() {
		if stopped {
			for _, ag := range agents[2:] {
				_ = ag.cmd.Process.Signal(syscall.SIGCONT)
			}
		}
	}()
	events := func(kind string) bool {
		c := apiClient{t: t, base: "http://" + lbA, key: admin}
		st, body, _ := c.do(http.MethodGet, "/api/v1/location-events", nil)
		if st != http.StatusOK {
			return false
		}
		var page struct {
			Items []struct{ Kind, Location string } `json:"items"`
		}
		require.NoError(t, json.Unmarshal(body, &page))
		for _, ev := range page.Items {
			if ev.Kind == kind && ev.Location == "us-east" {
				return true
			}
		}
		return false
	}
	if !assert.Eventually(t, func() bool { return events("location_unavailable") }, 30*time.Second, 250*time.Millisecond) {
		t.Fatalf("us-east never unavailable: checks from it in the last 5s %d, upwatch_location_available %v",
			targets.between("/t/000 us-east", time.Now().Add(-5*time.Second), time.Now()), a.metric(t, `upwatch_location_available{location="us-east"}`))
	}
	time.Sleep(3 * time.Second)
	require.Equal(t, downs, hook.total("down"), "a silent location caused a DOWN")
	for _, ag := range agents[2:] {
		require.NoError(t, ag.cmd.Process.Signal(syscall.SIGCONT))
	}
	stopped = false
	require.Eventually(t, func() bool { return events("location_available") }, 30*time.Second, 250*time.Millisecond)

	// (d) kill -9 the leader: b takes over; the API and the agents'
	// pushes go on through the load balancer; an outage is told once.
	pushedBefore := agents[0].metric("upwatch_agent_results_pushed_total") + agents[1].metric("upwatch_agent_results_pushed_total")
	killed := time.Now()
	a.kill9(t)
	handOver := waitLeader(t, b, killed, admin)
	t.Logf("hand-over after kill -9 of the leader: %s (lease ttl 6s, renew 2s)", handOver.Round(time.Millisecond))
	require.Less(t, handOver, 10*time.Second)
	apiClient{t: t, base: "http://" + lbA, key: admin}.json(http.MethodGet, "/api/v1/targets", nil, http.StatusOK)
	require.Eventually(t, func() bool {
		return evaluated(b, "eu-west") > 0 && evaluated(b, "us-east") > 0 &&
			agents[0].metric("upwatch_agent_results_pushed_total")+agents[1].metric("upwatch_agent_results_pushed_total") > pushedBefore
	}, 30*time.Second, 100*time.Millisecond, "ingestion did not go on on the new leader")
	targets.allDown.Store(true)
	require.Eventually(t, func() bool { return hook.count("down", "split-majority") == 1 }, 30*time.Second, 50*time.Millisecond, "notifications: %v", hook)
	require.Eventually(t, func() bool { return hook.count("down", "split-any") == 2 }, 30*time.Second, 50*time.Millisecond, "notifications: %v", hook)
	targets.allDown.Store(false)
	require.Eventually(t, func() bool {
		return hook.count("up", "split-majority") == 1 && hook.count("up", "split-any") == 2
	}, 30*time.Second, 50*time.Millisecond, "notifications: %v", hook)
	time.Sleep(3 * time.Second) // time for a duplicate to show up
	for _, ag := range agents {
		require.Zero(t, ag.metric("upwatch_agent_results_rejected_total"))
	}
	b.stop(t)

	hook.mu.Lock()
	for k, n := range hook.byKey {
		require.Equal(t, 1, n, "notification %s delivered %d times", k, n)
	}
	require.Equal(t, map[string]int{"down split-any": 2, "up split-any": 2, "down split-majority": 1, "up split-majority": 1}, hook.by)
	hook.mu.Unlock()
	reg, err := registry.OpenPostgres(t.Context(), registry.PostgresOptions{URL: pgURL})
	require.NoError(t, err)
	defer reg.Close()
	for target, want := range map[string]int{"split-any": 2, "split-majority": 1, "t000": 0} {
		incs, err := reg.Incidents(t.Context(), registry.IncidentQuery{TargetID: target})
		require.NoError(t, err)
		require.Len(t, incs, want, "incidents of %s", target)
	}
}
