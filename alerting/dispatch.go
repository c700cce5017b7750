package alerting

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/secret"
)

// DispatcherOptions configure a Dispatcher.
type DispatcherOptions struct {
	Outbox Outbox
	// Notifiers by channel (ChannelEmail, ChannelSMS, ChannelWebhook).
	Notifiers map[string]notify.Notifier
	// Workers bounds concurrent sends (default 8).
	Workers int
	// Lease is how long a claimed notification is ours (default
	// SendTimeout + 30s); it must exceed SendTimeout.
	Lease time.Duration
	// SendTimeout bounds one attempt (default 30s).
	SendTimeout time.Duration
	// Poll is how often the outbox is looked at without a Wake (default 1s).
	Poll time.Duration
	// RetryMin and RetryMax bound the exponential backoff (1s, 10m).
	RetryMin, RetryMax time.Duration
	// MaxAge gives up on a notification this old (default 24h): an alert a
	// day late helps nobody and hides the ones that matter.
	MaxAge     time.Duration
	Now        func() time.Time
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Dispatcher sends what the outbox holds: retries with backoff and jitter,
// respects Retry-After per channel, and settles every attempt in the outbox
// so a restart carries on where it stopped. Retry and dedup live here once,
// not in each notifier.
type Dispatcher struct {
	o    DispatcherOptions
	wake chan struct{}

	mu      sync.Mutex
	paused  map[string]time.Time // channel → rate-limited until
	lastErr map[string]string    // channel → last error logged

	sent    *prometheus.CounterVec
	pending prometheus.Gauge
	oldest  prometheus.Gauge
}

// NewDispatcher returns a Dispatcher; call Run.
func NewDispatcher(o DispatcherOptions) *Dispatcher {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.SendTimeout, 30*time.Second)
	def(&o.Lease, o.SendTimeout+30*time.Second)
	def(&o.Poll, time.Second)
	def(&o.RetryMin, time.Second)
	def(&o.RetryMax, 10*time.Minute)
	def(&o.MaxAge, 24*time.Hour)
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		o: o, wake: make(chan struct{}, 1),
		paused: map[string]time.Time{}, lastErr: map[string]string{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upwatch_notifications_total", Help: "Notification attempts by channel and result (sent, retry, failed).",
		}, []string{"channel", "result"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "upwatch_outbox_pending", Help: "Notifications waiting to be sent.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "upwatch_outbox_oldest_age_seconds", Help: "Age of the oldest pending notification (0 if none).",
		}),
	}
	for ch := range o.Notifiers {
		for _, res := range []string{"sent", "retry", "failed"} {
			d.sent.WithLabelValues(ch, res)
		}
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(d.sent, d.pending, d.oldest)
	}
	return d
}

// Wake asks the dispatcher to look at the outbox now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends. An attempt under way when ctx ends is finished
// (bounded by SendTimeout) and settled, so its outcome is not lost.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
		for d.round(ctx) {
			if ctx.Err() != nil {
				return
			}
		}
		t.Reset(d.o.Poll)
	}
}

// round claims one batch and sends it; it reports whether the batch was
// full (so more may be waiting).
func (d *Dispatcher) round(ctx context.Context) bool {
	now := d.o.Now()
	d.gauge(ctx, now)
	limit := d.o.Workers * 4
	batch, err := d.o.Outbox.Claim(ctx, now, d.o.Lease, limit)
	if err != nil {
		if ctx.Err() == nil {
			d.o.Logger.Error("claiming notifications", "err", err)
		}
		return false
	}
	sem := make(chan struct{}, d.o.Workers)
	var wg sync.WaitGroup
	for _, n := range batch {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d.send(context.WithoutCancel(ctx), n)
		})
	}
	wg.Wait()
	return len(batch) == limit
}

func (d *Dispatcher) gauge(ctx context.Context, now time.Time) {
	count, oldest, err := d.o.Outbox.Pending(ctx)
	if err != nil {
		return
	}
	d.pending.Set(float64(count))
	if oldest.IsZero() {
		d.oldest.Set(0)
	} else {
		d.oldest.Set(max(now.Sub(oldest).Seconds(), 0))
	}
}

// send makes one attempt and settles it.
func (d *Dispatcher) send(ctx context.Context, n Notification) {
	now := d.o.Now()
	settle := func(status NotificationStatus, next time.Time, msg string) {
		if err := d.o.Outbox.Settle(ctx, n.Key, status, next, msg, d.o.Now()); err != nil {
			// The lease runs out and the notification is claimed again.
			d.o.Logger.Error("settling notification", "key", logKey(n), "err", err)
		}
	}
	notifier, ok := d.o.Notifiers[n.Channel]
	if !ok {
		d.sent.WithLabelValues(n.Channel, "failed").Inc()
		settle(NotificationFailed, time.Time{}, "channel "+n.Channel+" is not configured")
		return
	}
	if until, paused := d.pausedUntil(n.Channel, now); paused {
		// Rate-limited: wait without trying the provider or counting an attempt.
		if err := d.o.Outbox.Defer(ctx, n.Key, until); err != nil {
			d.o.Logger.Error("deferring notification", "key", logKey(n), "err", err)
		}
		return
	}
	if until, wait := d.waitForDown(ctx, n, now); wait {
		if err := d.o.Outbox.Defer(ctx, n.Key, until); err != nil {
			d.o.Logger.Error("deferring notification", "key", logKey(n), "err", err)
		}
		return
	}
	sendCtx, cancel := context.WithTimeout(ctx, d.o.SendTimeout)
	retry, err := notifier.Notify(sendCtx, n.Message)
	cancel()
	// Each outcome is counted once it is recorded, so a count says what the
	// outbox holds.
	if err == nil {
		d.clearErr(n.Channel)
		settle(NotificationSent, time.Time{}, "")
		d.sent.WithLabelValues(n.Channel, "sent").Inc()
		return
	}
	d.logErr(n, err)
	if !retry || now.Sub(n.CreatedAt) >= d.o.MaxAge {
		d.sent.WithLabelValues(n.Channel, "failed").Inc()
		settle(NotificationFailed, time.Time{}, err.Error())
		return
	}
	next := now.Add(d.backoff(n.Attempts))
	if after, ok := notify.RetryAfter(err); ok {
		at := now.Add(after)
		d.pause(n.Channel, at)
		next = maxTime(next, at)
	}
	settle(NotificationPending, next, err.Error())
	d.sent.WithLabelValues(n.Channel, "retry").Inc()
}

// waitForDown says whether n, an UP, must wait for the DOWN of its
// incident to the same recipient on the same channel, still pending (being
// retried, or in flight in this very round), and until when: an UP that
// overtook its DOWN would resolve a PagerDuty or Opsgenie alert before it
// was opened, leaving it open for good, and tell people "back up" before
// "down". It waits until the DOWN is next due, at least RetryMin.
func (d *Dispatcher) waitForDown(ctx context.Context, n Notification, now time.Time) (time.Time, bool) {
	down, ok := downKey(n)
	if !ok {
		return time.Time{}, false
	}
	status, next, err := d.o.Outbox.Status(ctx, down)
	if err != nil || status != NotificationPending {
		return time.Time{}, false // sent, failed for good, or never queued
	}
	return maxTime(next, now.Add(d.o.RetryMin)), true
}

// backoff is exponential in attempts with full jitter over its upper half.
func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.o.RetryMin
	for i := 1; i < attempts && b < d.o.RetryMax; i++ {
		b *= 2
	}
	b = min(b, d.o.RetryMax)
	return b/2 + rand.N(b/2+1)
}

func (d *Dispatcher) pause(channel string, until time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused[channel] = maxTime(d.paused[channel], until)
}

func (d *Dispatcher) pausedUntil(channel string, now time.Time) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	until := d.paused[channel]
	return until, now.Before(until)
}

// logErr logs a failure only when the channel's error changes, so an
// outage of a provider is one log line, not one per message.
func (d *Dispatcher) logErr(n Notification, err error) {
	msg := err.Error()
	var ra *notify.RetryAfterError
	if errors.As(err, &ra) {
		msg = ra.Err.Error()
	}
	d.mu.Lock()
	changed := d.lastErr[n.Channel] != msg
	d.lastErr[n.Channel] = msg
	d.mu.Unlock()
	if changed {
		d.o.Logger.Warn("notification failed", "channel", n.Channel, "key", logKey(n), "attempt", n.Attempts, "err", err)
	}
}

// logKey is n's key fit for a log. A webhook's key ends with its URL,
// whose path or query is the credential: that part is shown as
// secret.RedactURL does (scheme, host and a short hash).
func logKey(n Notification) string {
	if n.Channel != ChannelWebhook {
		return n.Key
	}
	addr := n.Message.To.WebhookURL
	if addr == "" || !strings.HasSuffix(n.Key, "|"+addr) {
		i := strings.Index(n.Key, "|"+ChannelWebhook+"|")
		if i < 0 {
			return "<webhook key>"
		}
		addr = n.Key[i+len(ChannelWebhook)+2:]
	}
	return strings.TrimSuffix(n.Key, addr) + secret.RedactURL(addr, secret.URLWhole)
}

func (d *Dispatcher) clearErr(channel string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.lastErr, channel)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
