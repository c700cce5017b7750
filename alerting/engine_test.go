package alerting_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/metrics/metricstest"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
)

// t0 is noon of the test run's day (clocktest): every date here derives
// from it, and every component gets a clock built on it.
var t0 = clocktest.Noon()

func openStore(t *testing.T, path string) *registry.SQLite {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "registry.db")
	}
	s, err := registry.OpenSQLite(context.Background(), registry.SQLiteOptions{Path: path})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	alice = notify.Recipient{Name: "Alice", Email: "alice@example.com", Phone: "+4915112345678"}
	bob   = notify.Recipient{Name: "Bob", Email: "bob@example.com"}
	carol = notify.Recipient{Name: "Carol", Email: "carol@example.com"}
)

func route(name string, deps ...string) alerting.Route {
	return alerting.Route{
		Name: name, URL: "https://" + name + ".example.com/",
		Policy:     alerting.Policy{FailureThreshold: 3, SuccessThreshold: 2, RepeatInterval: 10 * time.Minute, EscalateAfter: 30 * time.Minute},
		Channels:   []string{alerting.ChannelEmail, alerting.ChannelSMS},
		Recipients: []notify.Recipient{alice, bob},
		Escalation: []notify.Recipient{carol},
		DependsOn:  deps,
	}
}

func newEngine(t *testing.T, st alerting.StateStore, routes map[string]alerting.Route, windows ...alerting.Window) *alerting.Engine {
	t.Helper()
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{Store: st, Now: func() time.Time { return t0 }, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	e.Update(routes, windows)
	return e
}

// feed sends results for target id: 'x' a failure, '.' a success, one a
// minute from start.
func feed(t *testing.T, e *alerting.Engine, id string, start time.Time, pattern string) time.Time {
	t.Helper()
	at := start
	for _, c := range pattern {
		r := prober.Result{TargetID: id, Target: id, Kind: "http", Start: at, Duration: 100 * time.Millisecond, Success: c == '.'}
		if c == 'x' {
			r.ErrorClass, r.Error = prober.ClassStatus, "503 not in 200-399"
		}
		require.NoError(t, e.Observe(context.Background(), r))
		at = at.Add(time.Minute)
	}
	return at
}

func queued(t *testing.T, s *registry.SQLite) []alerting.Notification {
	t.Helper()
	ns, err := s.Notifications(context.Background(), registry.NotificationQuery{Limit: 1000})
	require.NoError(t, err)
	sort.Slice(ns, func(i, j int) bool { return ns[i].Key < ns[j].Key })
	return ns
}

func kinds(ns []alerting.Notification) map[string]int {
	out := map[string]int{}
	for _, n := range ns {
		out[n.Message.Kind+"/"+n.Channel]++
	}
	return out
}

func TestEngineDownAndUpQueueOneMessagePerRecipientAndChannel(t *testing.T) {
	s := openStore(t, "")
	e := newEngine(t, s, map[string]alerting.Route{"web": route("web")})

	next := feed(t, e, "web", t0, "..xx")
	require.Empty(t, queued(t, s), "two failures are below the threshold")
	next = feed(t, e, "web", next, "x")
	ns := queued(t, s)
	// alice: email + sms; bob: email only (no phone).
	require.Equal(t, map[string]int{"down/email": 2, "down/sms": 1}, kinds(ns))
	for _, n := range ns {
		require.Equal(t, alerting.NotificationPending, n.Status)
		require.Equal(t, t0.Add(2*time.Minute), n.Message.StartedAt, "the incident starts at the first failed check")
		require.Equal(t, "status: 503 not in 200-399", n.Message.Cause)
		require.NotEmpty(t, n.Message.Subject)
		require.NotEmpty(t, n.Message.Text)
	}
	st, _ := e.State("web")
	require.Equal(t, alerting.StatusDown, st.Status)

	// More failures and a lone success do not page again.
	next = feed(t, e, "web", next, "xx.x")
	require.Len(t, queued(t, s), 3)

	// Recovery: UP after two successes, the outage measured to the first.
	feed(t, e, "web", next, "..")
	ns = queued(t, s)
	require.Equal(t, map[string]int{"down/email": 2, "down/sms": 1, "up/email": 2, "up/sms": 1}, kinds(ns))
	for _, n := range ns {
		if n.Message.Kind == notify.KindUp {
			require.Equal(t, 7*time.Minute, n.Message.Duration) // 12:02 → 12:09
			require.Contains(t, n.Message.Text, "7m")
		}
	}
	incs, err := s.Incidents(context.Background(), registry.IncidentQuery{TargetID: "web"})
	require.NoError(t, err)
	require.Len(t, incs, 1)
	require.Equal(t, t0.Add(2*time.Minute), incs[0].Start)
	require.Equal(t, t0.Add(9*time.Minute), incs[0].End)
}

func TestEngineRestartNeverRepagesAnIncident(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	s := openStore(t, path)
	routes := map[string]alerting.Route{"web": route("web")}
	e := newEngine(t, s, routes)
	next := feed(t, e, "web", t0, "xxx")
	require.Len(t, queued(t, s), 3)

	// A new engine over the same file: the incident is remembered.
	s2 := openStore(t, path)
	e2 := newEngine(t, s2, routes)
	st, ok := e2.State("web")
	require.True(t, ok)
	require.Equal(t, alerting.StatusDown, st.Status)
	// Replaying what the first engine saw, and more failures: nothing new.
	feed(t, e2, "web", t0, "xxx")
	next = feed(t, e2, "web", next, "xxx")
	require.Len(t, queued(t, s2), 3)
	feed(t, e2, "web", next, "..")
	require.Equal(t, map[string]int{"down/email": 2, "down/sms": 1, "up/email": 2, "up/sms": 1}, kinds(queued(t, s2)))
}

func TestEngineSuppressesChildrenOfADownParent(t *testing.T) {
	s := openStore(t, "")
	e := newEngine(t, s, map[string]alerting.Route{"gw": route("gw"), "app": route("app", "gw")})
	feed(t, e, "gw", t0, "xxx")
	feed(t, e, "app", t0.Add(10*time.Second), "xxx..")
	for _, n := range queued(t, s) {
		require.Equal(t, "gw", n.Message.TargetID, "app's notifications are suppressed")
	}
	incs, err := s.Incidents(context.Background(), registry.IncidentQuery{TargetID: "app"})
	require.NoError(t, err)
	require.Len(t, incs, 1, "the child's incident is still recorded")
	require.True(t, incs[0].Suppressed)
	require.Equal(t, "parent gw down", incs[0].SuppressedReason)
}

func TestEngineRecordsButDoesNotNotifyInMaintenance(t *testing.T) {
	s := openStore(t, "")
	w := alerting.Window{Name: "deploy", Targets: []string{"web"}, Start: t0, End: t0.Add(time.Hour)}
	require.Empty(t, w.Validate("maintenance[0]"))
	e := newEngine(t, s, map[string]alerting.Route{"web": route("web")}, w)
	feed(t, e, "web", t0, "xxxx..")
	require.Empty(t, queued(t, s))
	incs, err := s.Incidents(context.Background(), registry.IncidentQuery{TargetID: "web"})
	require.NoError(t, err)
	require.Len(t, incs, 1)
	require.True(t, incs[0].InMaintenance)
	require.False(t, incs[0].Open())
}

func TestEngineRemindersAndEscalation(t *testing.T) {
	s := openStore(t, "")
	e := newEngine(t, s, map[string]alerting.Route{"web": route("web")})
	feed(t, e, "web", t0, "xxx") // DOWN at 12:02:00.1, incident from 12:00
	ctx := context.Background()
	e.Tick(ctx, t0.Add(5*time.Minute))
	require.Len(t, queued(t, s), 3, "no reminder before repeat_interval")
	e.Tick(ctx, t0.Add(13*time.Minute))
	e.Tick(ctx, t0.Add(13*time.Minute)) // the same tick twice queues nothing new
	require.Equal(t, map[string]int{"down/email": 2, "down/sms": 1, "reminder/email": 2, "reminder/sms": 1}, kinds(queued(t, s)))
	e.Tick(ctx, t0.Add(31*time.Minute))
	k := kinds(queued(t, s))
	require.Equal(t, 1, k["escalation/email"], "carol hears once the incident is 30 minutes old")
}

type notifierFunc func(ctx context.Context, m notify.Message) (bool, error)

func (f notifierFunc) Notify(ctx context.Context, m notify.Message) (bool, error) { return f(ctx, m) }

func TestDispatcherSettlesEveryOutcome(t *testing.T) {
	s := openStore(t, "")
	e := newEngine(t, s, map[string]alerting.Route{"web": route("web")})
	feed(t, e, "web", t0, "xxx")
	now := t0.Add(time.Hour)
	reg := prometheus.NewRegistry()
	var smsCalls atomic.Int32
	d := alerting.NewDispatcher(alerting.DispatcherOptions{
		Outbox: s,
		Notifiers: map[string]notify.Notifier{
			alerting.ChannelEmail: notifierFunc(func(_ context.Context, m notify.Message) (bool, error) {
				if m.To.Email == bob.Email {
					return false, errors.New("400 invalid recipient")
				}
				return false, nil
			}),
			alerting.ChannelSMS: notifierFunc(func(context.Context, notify.Message) (bool, error) {
				smsCalls.Add(1)
				return true, &notify.RetryAfterError{After: time.Minute, Err: errors.New("429 slow down")}
			}),
		},
		Now: func() time.Time { return now }, Registerer: reg,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	require.Eventually(t, func() bool {
		n, _, err := s.Pending(context.Background())
		return err == nil && n == 1 && smsCalls.Load() == 1
	}, 10*time.Second, 10*time.Millisecond)
	cancel()
	<-done

	byEmail := map[string]alerting.Notification{}
	for _, n := range queued(t, s) {
		byEmail[n.Channel+":"+n.Message.To.Email] = n
	}
	require.Equal(t, alerting.NotificationSent, byEmail["email:alice@example.com"].Status)
	require.Equal(t, alerting.NotificationFailed, byEmail["email:bob@example.com"].Status)
	require.Contains(t, byEmail["email:bob@example.com"].LastError, "invalid recipient")
	sms := byEmail["sms:alice@example.com"]
	require.Equal(t, alerting.NotificationPending, sms.Status)
	require.False(t, sms.NextAttempt.Before(now.Add(time.Minute)), "Retry-After is respected")
	require.Equal(t, 1.0, testutil.ToFloat64(counter(t, reg, "email", "sent")))
	require.Equal(t, 1.0, testutil.ToFloat64(counter(t, reg, "email", "failed")))
	require.Equal(t, 1.0, testutil.ToFloat64(counter(t, reg, "sms", "retry")))
}

// While a channel is paused by a 429, its other messages wait for the pause
// without an attempt counted: the backoff after the pause starts afresh.
func TestPausedChannelDefersWithoutCountingAttempts(t *testing.T) {
	s := openStore(t, "")
	r := route("web")
	dave := notify.Recipient{Name: "Dave", Email: "dave@example.com", Phone: "+4915112345679"}
	r.Channels, r.Recipients, r.Escalation = []string{alerting.ChannelSMS}, []notify.Recipient{alice, dave}, nil
	e := newEngine(t, s, map[string]alerting.Route{"web": r})
	feed(t, e, "web", t0, "xxx")
	clk := clocktest.NewManual(t0.Add(time.Hour))
	var calls atomic.Int32
	d := alerting.NewDispatcher(alerting.DispatcherOptions{
		Outbox: s, Workers: 1, Now: clk.Now,
		Notifiers: map[string]notify.Notifier{alerting.ChannelSMS: notifierFunc(func(context.Context, notify.Message) (bool, error) {
			calls.Add(1)
			return true, &notify.RetryAfterError{After: time.Minute, Err: errors.New("429 slow down")}
		})},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	require.Eventually(t, func() bool {
		for _, n := range queued(t, s) {
			if n.NextAttempt.Before(clk.Now().Add(time.Minute)) {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	require.Equal(t, int32(1), calls.Load(), "one call reached the provider; the other waited for the pause")
	attempts := map[string]int{}
	for _, n := range queued(t, s) {
		attempts[n.Message.To.Name] = n.Attempts
	}
	require.ElementsMatch(t, []int{0, 1}, []int{attempts["Alice"], attempts["Dave"]})
}

func counter(t *testing.T, reg *prometheus.Registry, channel, result string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "upwatch_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["channel"] == channel && l["result"] == result {
				return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no upwatch_notifications_total{channel=%q,result=%q}", channel, result)
	return nil
}

// Two dispatchers over one outbox (two processes sharing a registry) never
// send the same notification twice.
func TestTwoDispatchersNeverSendTwice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	s := openStore(t, path)
	routes := map[string]alerting.Route{}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		routes[id] = route(id)
	}
	e := newEngine(t, s, routes)
	for id := range routes {
		feed(t, e, id, t0, "xxx")
	}
	total := len(queued(t, s))
	require.Equal(t, 30, total)

	var mu sync.Mutex
	sent := map[string]int{}
	n := notifierFunc(func(_ context.Context, m notify.Message) (bool, error) {
		mu.Lock()
		sent[m.Key]++
		mu.Unlock()
		return false, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		outbox := openStore(t, path)
		d := alerting.NewDispatcher(alerting.DispatcherOptions{
			Outbox: outbox, Workers: 2, Poll: 5 * time.Millisecond, Now: clocktest.Running(t0.Add(time.Hour)),
			Notifiers: map[string]notify.Notifier{alerting.ChannelEmail: n, alerting.ChannelSMS: n},
		})
		wg.Go(func() { d.Run(ctx) })
	}
	require.Eventually(t, func() bool {
		c, _, err := s.Pending(context.Background())
		return err == nil && c == 0
	}, 2*time.Minute, 10*time.Millisecond)
	cancel()
	wg.Wait()
	require.Len(t, sent, total)
	for k, c := range sent {
		require.Equal(t, 1, c, "sent %s %d times", k, c)
	}
}

// A thousand targets down at once: every notification is dispatched once,
// and after a 429 nothing is sent on that channel before its Retry-After.
func TestThousandTargetsDownAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	s := openStore(t, "")
	routes := map[string]alerting.Route{}
	for i := range 1000 {
		id := fmt.Sprintf("t%04d", i)
		routes[id] = route(id)
	}
	e := newEngine(t, s, routes)
	for id := range routes {
		feed(t, e, id, t0, "xxx")
	}
	total, _, err := s.Pending(context.Background())
	require.NoError(t, err)
	require.Equal(t, 3000, total)

	const retryAfter = 50 * time.Millisecond
	type provider struct {
		mu         sync.Mutex
		calls      int
		pauseUntil time.Time
		early      int // calls made while paused
		sent       map[string]int
	}
	newProvider := func() *provider { return &provider{sent: map[string]int{}} }
	notifier := func(p *provider) notifierFunc {
		return func(_ context.Context, m notify.Message) (bool, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			now := time.Now()
			if now.Before(p.pauseUntil) {
				p.early++
			}
			p.calls++
			if p.calls%500 == 1 { // the provider rate-limits now and then
				p.pauseUntil = now.Add(retryAfter)
				return true, &notify.RetryAfterError{After: retryAfter, Err: errors.New("429 too many requests")}
			}
			p.sent[m.Key]++
			return false, nil
		}
	}
	email, sms := newProvider(), newProvider()
	d := alerting.NewDispatcher(alerting.DispatcherOptions{
		Outbox: s, Workers: 16, Poll: 10 * time.Millisecond, RetryMin: 10 * time.Millisecond, Now: clocktest.Running(t0.Add(time.Hour)),
		Notifiers: map[string]notify.Notifier{alerting.ChannelEmail: notifier(email), alerting.ChannelSMS: notifier(sms)},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	start := time.Now()
	go func() { d.Run(ctx); close(done) }()
	require.Eventually(t, func() bool {
		n, _, err := s.Pending(context.Background())
		return err == nil && n == 0
	}, 5*time.Minute, 20*time.Millisecond)
	t.Logf("3000 notifications for 1000 targets dispatched in %s", time.Since(start).Round(time.Millisecond))
	cancel()
	<-done
	require.Len(t, email.sent, 2000)
	require.Len(t, sms.sent, 1000)
	for _, p := range []*provider{email, sms} {
		for k, n := range p.sent {
			require.Equal(t, 1, n, "%s sent %d times", k, n)
		}
	}
	// Sends already under way when a 429 arrives may land inside the pause;
	// no new batch may start in it. Allow for the in-flight workers.
	require.LessOrEqual(t, email.early, 16*(email.calls/500+1))
	require.LessOrEqual(t, sms.early, 16*(sms.calls/500+1))
}

// The DEGRADED message says since when the target is slow: the start of the
// first slow check of the run, not when the engine decided.
func TestEngineDegradedMessageSaysWhenSlownessBegan(t *testing.T) {
	s := openStore(t, "")
	r := route("web")
	r.Policy.DegradedLatency = time.Second
	e := newEngine(t, s, map[string]alerting.Route{"web": r})
	feed(t, e, "web", t0, "..") // UP
	at := t0.Add(2 * time.Minute)
	for range 3 {
		require.NoError(t, e.Observe(context.Background(), prober.Result{TargetID: "web", Kind: "http", Start: at, Duration: 2 * time.Second, Success: true}))
		at = at.Add(time.Minute)
	}
	ns := queued(t, s)
	require.Equal(t, map[string]int{"degraded/email": 2, "degraded/sms": 1}, kinds(ns))
	for _, n := range ns {
		require.Equal(t, t0.Add(2*time.Minute), n.Message.StartedAt)
		require.Contains(t, n.Message.Text, "since "+t0.Add(2*time.Minute).Format("2006-01-02 15:04:05 MST"))
	}
}

// upwatch_incidents_total starts at 0 for every routed target (so the first
// incident is an increase), and a target that goes away takes its series
// with it, even if a result of it arrives afterwards.
func TestEngineSeriesFollowTheRoutes(t *testing.T) {
	s := openStore(t, "")
	e, err := alerting.NewEngine(context.Background(), alerting.EngineOptions{Store: s, Now: func() time.Time { return t0 }, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	e.Update(map[string]alerting.Route{"web": route("web"), "db": route("db")}, nil)
	want := func(s string) {
		t.Helper()
		require.NoError(t, testutil.GatherAndCompare(metricstest.Gatherer(t, e), strings.NewReader(s), "upwatch_incidents_total", "upwatch_target_up"))
	}
	want(`
# HELP upwatch_incidents_total Incidents opened, by target.
# TYPE upwatch_incidents_total counter
upwatch_incidents_total{target="db"} 0
upwatch_incidents_total{target="web"} 0
`)
	next := feed(t, e, "web", t0, "xxx")
	want(`
# HELP upwatch_incidents_total Incidents opened, by target.
# TYPE upwatch_incidents_total counter
upwatch_incidents_total{target="db"} 0
upwatch_incidents_total{target="web"} 1
# HELP upwatch_target_up Target state after thresholds: 1 up, 0 down, -1 unknown.
# TYPE upwatch_target_up gauge
upwatch_target_up{target="web"} 0
`)
	e.Update(map[string]alerting.Route{"db": route("db")}, nil)
	feed(t, e, "web", next, "..xxx")
	want(`
# HELP upwatch_incidents_total Incidents opened, by target.
# TYPE upwatch_incidents_total counter
upwatch_incidents_total{target="db"} 0
`)
}

// TestEngineFollowsRoutesAcrossUpdatesAndLoad: a target's results are fed
// only while it is routed, with its newest route (its policy), whether its
// state was made by a result or loaded from the store.
func TestEngineFollowsRoutesAcrossUpdatesAndLoad(t *testing.T) {
	s := openStore(t, "")
	e := newEngine(t, s, map[string]alerting.Route{"web": route("web")})
	next := feed(t, e, "web", t0, "..")
	st, _ := e.State("web")
	require.Equal(t, alerting.StatusUp, st.Status)

	e.Update(map[string]alerting.Route{}, nil)
	feed(t, e, "web", next, "xxx")
	st, _ = e.State("web")
	require.Equal(t, alerting.StatusUp, st.Status, "not routed: results are ignored")
	require.Equal(t, next.Add(-time.Minute), st.LastCheck)

	strict := route("web")
	strict.Policy.FailureThreshold = 1
	e.Update(map[string]alerting.Route{"web": strict}, nil)
	next = feed(t, e, "web", next, "x")
	st, _ = e.State("web")
	require.Equal(t, alerting.StatusDown, st.Status, "routed again, with its new policy")

	require.NoError(t, e.Load(context.Background()))
	feed(t, e, "web", next, "..")
	st, _ = e.State("web")
	require.Equal(t, alerting.StatusUp, st.Status, "a loaded state keeps its route")

	// A target whose state was loaded before it was routed.
	e2 := newEngine(t, s, map[string]alerting.Route{})
	feed(t, e2, "web", next.Add(time.Hour), "x")
	st, _ = e2.State("web")
	require.Equal(t, alerting.StatusUp, st.Status)
	e2.Update(map[string]alerting.Route{"web": strict}, nil)
	feed(t, e2, "web", next.Add(2*time.Hour), "x")
	st, _ = e2.State("web")
	require.Equal(t, alerting.StatusDown, st.Status)
}
