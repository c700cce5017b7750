package alerting_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/pagerduty"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/internal/logbuf"
)

// Through the engine, the outbox and the dispatcher: a PagerDuty
// destination gets a trigger for the DOWN and then a resolve for the UP
// with one dedup_key, even when the DOWN's first attempt fails (a 503,
// retried from the outbox) and the UP is due first; the routing key is in
// no outbox key, error or log line.
func TestPagerDutyIncidentThroughTheOutbox(t *testing.T) {
	const routingKey = "R0UT1NGKEYSECRETabcdef0123456789"
	var (
		mu     sync.Mutex
		events []map[string]any
		calls  atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, `{"status":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var e map[string]any
		_ = json.Unmarshal(b, &e)
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)

	endpoint, err := json.Marshal(pagerduty.Destination{RoutingKey: routingKey})
	require.NoError(t, err)
	r := route("web")
	r.Channels = []string{alerting.ChannelEmail, pagerduty.Channel}
	r.Recipients = []notify.Recipient{{Name: "ops", Channel: pagerduty.Channel, Endpoint: string(endpoint)}}
	s := openStore(t, "")
	e := newEngine(t, s, map[string]alerting.Route{"web": r})
	next := feed(t, e, "web", t0, "xxx")
	feed(t, e, "web", next, "..")
	ns := queued(t, s)
	require.Len(t, ns, 2, "one DOWN and one UP, on pagerduty only (the recipient has no email)")
	for _, n := range ns {
		require.Equal(t, pagerduty.Channel, n.Channel)
		require.NotContains(t, n.Key, routingKey)
	}

	logs := &logbuf.Buffer{}
	var now atomic.Int64
	now.Store(t0.Add(time.Hour).UnixNano())
	d := alerting.NewDispatcher(alerting.DispatcherOptions{
		Outbox:    s,
		Notifiers: map[string]notify.Notifier{pagerduty.Channel: pagerduty.New(nil, srv.URL)},
		Now:       func() time.Time { return time.Unix(0, now.Load()) }, Registerer: prometheus.NewRegistry(),
		Workers: 1, Poll: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	// The 503 is settled for a retry; then the clock moves past its backoff.
	require.Eventually(t, func() bool {
		for _, n := range queued(t, s) {
			if n.Status == alerting.NotificationPending && strings.Contains(n.LastError, "503") {
				return true
			}
		}
		return false
	}, 60*time.Second, 20*time.Millisecond)
	now.Add(int64(15 * time.Minute))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) == 2
	}, 60*time.Second, 20*time.Millisecond)
	cancel()
	<-done

	mu.Lock()
	defer mu.Unlock()
	// The UP waited for its DOWN's retry: resolving first would have left
	// the alert open for good.
	require.Equal(t, "trigger", events[0]["event_action"], "events: %v", events)
	require.Equal(t, "resolve", events[1]["event_action"], "events: %v", events)
	require.NotEmpty(t, events[0]["dedup_key"])
	require.Equal(t, events[0]["dedup_key"], events[1]["dedup_key"], "the UP resolves the alert the DOWN opened")
	require.EqualValues(t, 3, calls.Load(), "the 503 was retried once")
	require.Contains(t, logs.String(), "503")
	require.NotContains(t, logs.String(), routingKey)
	for _, n := range queued(t, s) {
		require.Equal(t, alerting.NotificationSent, n.Status)
		require.False(t, strings.Contains(n.LastError, routingKey))
	}
}

type notifyFunc func(ctx context.Context, m notify.Message) (bool, error)

func (f notifyFunc) Notify(ctx context.Context, m notify.Message) (bool, error) { return f(ctx, m) }

// An UP held back for its DOWN is not held for ever: once the DOWN has
// failed for good, the UP goes out.
func TestUpGoesOutAfterItsDownFailedForGood(t *testing.T) {
	r := route("web")
	r.Channels = []string{alerting.ChannelEmail}
	r.Recipients = []notify.Recipient{bob}
	s := openStore(t, "")
	e := newEngine(t, s, map[string]alerting.Route{"web": r})
	feed(t, e, "web", feed(t, e, "web", t0, "xxx"), "..")
	var (
		mu   sync.Mutex
		sent []string
	)
	d := alerting.NewDispatcher(alerting.DispatcherOptions{
		Outbox: s, Workers: 4, Poll: 10 * time.Millisecond, RetryMin: 10 * time.Millisecond,
		Notifiers: map[string]notify.Notifier{alerting.ChannelEmail: notifyFunc(func(_ context.Context, m notify.Message) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			sent = append(sent, m.Kind)
			if m.Kind == notify.KindDown {
				return false, errors.New("550 mailbox unavailable")
			}
			return false, nil
		})},
		Now: clocktest.Running(t0.Add(time.Hour)), Registerer: prometheus.NewRegistry(),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sent) == 2
	}, 60*time.Second, 10*time.Millisecond)
	cancel()
	<-done
	require.Equal(t, []string{notify.KindDown, notify.KindUp}, sent)
}
