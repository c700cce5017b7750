package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults: a holder that dies is replaced within TTL + Renew (8 s).
const (
	DefaultTTL   = 6 * time.Second
	DefaultRenew = 2 * time.Second
)

// Options configure an Elector. Store and Name are required.
type Options struct {
	Store Store
	Name  string
	// Holder names this process in the store (default: host, pid and a
	// random suffix, unique per Elector).
	Holder string
	// URL is where the other processes reach this one while it holds the
	// lease (recorded with it; optional).
	URL string
	// TTL is how long an acquisition or renewal lasts; Renew how often the
	// holder renews and a non-holder tries to acquire (defaults above).
	TTL, Renew time.Duration
	// Registerer receives upwatch_leader and upwatch_lease_token.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Elector runs a job only while its process holds the lease. It counts
// the lease as held until TTL after the start of the last successful
// acquisition or renewal, measured on the local monotonic clock: the store's
// expiry is later (it starts counting when the statement runs), so the
// holder stops before anyone else can start.
type Elector struct {
	o Options

	mu       sync.Mutex
	token    int64
	deadline time.Time // held until then (monotonic reading)

	leader, tokenGauge prometheus.Gauge
}

// New returns an Elector; call Run.
func New(o Options) (*Elector, error) {
	if o.Store == nil || o.Name == "" {
		return nil, fmt.Errorf("lease: a store and a name are required")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Renew <= 0 {
		o.Renew = DefaultRenew
	}
	if o.Renew >= o.TTL {
		return nil, fmt.Errorf("lease: renew period %s must be shorter than the TTL %s", o.Renew, o.TTL)
	}
	if o.Holder == "" {
		o.Holder = DefaultHolder()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Elector{o: o,
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "upwatch_leader", Help: "1 while this server holds the alerting lease (evaluates alerts and sends notifications), else 0.",
		}),
		tokenGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "upwatch_lease_token", Help: "Fencing token of this server's current or last alerting lease (0 if never held).",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(e.leader, e.tokenGauge)
	}
	return e, nil
}

// DefaultHolder names this process: host, pid and a random suffix.
func DefaultHolder() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Holder is the name this process holds the lease under.
func (e *Elector) Holder() string { return e.o.Holder }

// Token is the current fencing token and whether the lease is held now
// (a Token function).
func (e *Elector) Token() (int64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token == 0 || !time.Now().Before(e.deadline) {
		return 0, false
	}
	return e.token, true
}

func (e *Elector) set(token int64, deadline time.Time) {
	e.mu.Lock()
	e.token, e.deadline = token, deadline
	e.mu.Unlock()
}

// Run tries to acquire the lease every Renew until ctx ends. While it holds
// the lease it runs lead with a context that ends the moment the lease is
// lost (a renewal refused, or none succeeded before the lease's local
// deadline), and waits for lead to return before trying again. When ctx
// ends it waits for lead, then releases the lease so another holder takes
// over at once.
func (e *Elector) Run(ctx context.Context, lead func(ctx context.Context, token int64)) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if held, token, _ := e.acquire(ctx, 0); held {
			e.hold(ctx, token, lead)
			if ctx.Err() != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.Renew)
				if err := e.o.Store.Release(rctx, e.o.Name, e.o.Holder, token); err != nil {
					e.o.Logger.Warn("releasing the lease; the next holder waits for it to expire", "lease", e.o.Name, "err", err)
				}
				cancel()
				return
			}
		}
		t.Reset(e.o.Renew)
	}
}

// acquire asks the store once, bounded by the current deadline (or the
// renew period without one). want is the token being renewed (0 when
// acquiring afresh); a renewal answered with another token is not held. An
// error leaves the deadline as it was.
func (e *Elector) acquire(ctx context.Context, want int64) (held bool, token int64, err error) {
	start := time.Now()
	limit := start.Add(e.o.Renew)
	if want != 0 {
		e.mu.Lock()
		limit = e.deadline
		e.mu.Unlock()
	}
	actx, cancel := context.WithDeadline(ctx, limit)
	defer cancel()
	token, held, err = e.o.Store.Acquire(actx, e.o.Name, Holder{ID: e.o.Holder, URL: e.o.URL}, e.o.TTL)
	if err != nil {
		if ctx.Err() == nil {
			e.o.Logger.Warn("lease: acquire or renew failed", "lease", e.o.Name, "err", err)
		}
		return false, 0, err
	}
	if !held || (want != 0 && token != want) {
		return false, token, nil
	}
	e.set(token, start.Add(e.o.TTL))
	return true, token, nil
}

// hold runs lead while the lease is renewed in time.
func (e *Elector) hold(ctx context.Context, token int64, lead func(context.Context, int64)) {
	e.o.Logger.Info("lease acquired: this server evaluates alerts and sends notifications", "lease", e.o.Name, "token", token, "holder", e.o.Holder)
	e.leader.Set(1)
	e.tokenGauge.Set(float64(token))
	leadCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); lead(leadCtx, token) }()
	renew := time.NewTicker(e.o.Renew)
	defer renew.Stop()
	deposed := false // lost to expiry or another holder, not ended by ctx
	for lost := false; !lost; {
		e.mu.Lock()
		left := time.Until(e.deadline)
		e.mu.Unlock()
		expire := time.NewTimer(left)
		select {
		case <-ctx.Done():
			lost = true
		case <-done:
			lost = true // lead gave up on its own; the lease expires
		case <-expire.C:
			e.o.Logger.Error("lease lost: not renewed in time", "lease", e.o.Name, "token", token)
			lost, deposed = true, true
		case <-renew.C:
			// A failed call leaves the deadline alone: the next tick tries
			// again while it lasts.
			if held, _, err := e.acquire(ctx, token); err == nil && !held {
				e.o.Logger.Error("lease lost: another server holds it now", "lease", e.o.Name, "token", token)
				lost, deposed = true, true
			}
		}
		expire.Stop()
	}
	// A deposed holder's writes stop now; one that is shutting down keeps
	// its token while lead commits what it has.
	if deposed {
		e.set(0, time.Time{})
	}
	e.leader.Set(0)
	cancel()
	<-done
	e.set(0, time.Time{})
}
