package registry

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/lease"
)

// Fenced is the registry as the holder of a lease sees it: its alert state
// commits and outbox claims are made only while the lease still carries
// the holder's token, checked inside their own transaction with the lease
// row locked (FOR SHARE on PostgreSQL), so a server that has been deposed
// cannot commit late over its successor, and the successor, which loads
// the state after acquiring, sees every commit its predecessor made.
// Settle and Defer record attempts the holder made: they are refused only
// for a notification claimed since under a newer token, which is then the
// new holder's to send. A refusal is lease.ErrFenced, counted in
// upwatch_fenced_writes_total, and changes nothing.
type Fenced struct {
	s       *Registry
	f       fence
	refused prometheus.Counter

	mu     sync.Mutex
	newest int64 // the newest token this holder claimed with
}

var (
	_ alerting.StateStore = (*Fenced)(nil)
	_ alerting.Outbox     = (*Fenced)(nil)
)

// Fenced returns s fenced by the lease name and the holder's token.
// reg, if not nil, receives upwatch_fenced_writes_total.
func (s *Registry) Fenced(name string, token lease.Token, reg prometheus.Registerer) *Fenced {
	f := &Fenced{s: s, f: fence{name: name, token: token},
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_fenced_writes_total",
			Help: "Alert state commits and outbox writes refused because this server no longer held the alerting lease.",
		}),
	}
	if reg != nil {
		reg.MustRegister(f.refused)
	}
	return f
}

func (f *Fenced) count(err error) error {
	if errors.Is(err, lease.ErrFenced) {
		f.refused.Inc()
	}
	return err
}

// ClaimResults is Registry.ClaimResults, fenced: only the lease holder,
// which evaluates them, takes agent results, so a deposed holder that
// does not know it yet claims none it would then fail to evaluate.
func (f *Fenced) ClaimResults(ctx context.Context, keys []ResultKey) ([]bool, error) {
	fresh, err := f.s.claimResults(ctx, &f.f, keys)
	return fresh, f.count(err)
}

// PruneResults is Registry.PruneResults (forgetting is not fenced).
func (f *Fenced) PruneResults(ctx context.Context, before time.Time) (int64, error) {
	return f.s.PruneResults(ctx, before)
}

// LoadStates reads every target's state (reads are not fenced).
func (f *Fenced) LoadStates(ctx context.Context) (map[string]alerting.State, error) {
	return f.s.LoadStates(ctx)
}

// CommitBatch is Registry.CommitBatch, fenced.
func (f *Fenced) CommitBatch(ctx context.Context, commits []alerting.Commit) error {
	return f.count(f.s.commitBatch(ctx, &f.f, commits))
}

// Claim is Registry.Claim, fenced; the notifications are claimed under the
// holder's token.
func (f *Fenced) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]alerting.Notification, error) {
	out, token, err := f.s.claim(ctx, &f.f, now, lease, limit)
	if err != nil {
		return nil, f.count(err)
	}
	f.mu.Lock()
	f.newest = max(f.newest, token)
	f.mu.Unlock()
	return out, nil
}

func (f *Fenced) guard() *claimGuard {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &claimGuard{newest: f.newest}
}

// Settle is Registry.Settle, refused for a notification claimed since
// under a newer token.
func (f *Fenced) Settle(ctx context.Context, key string, status alerting.NotificationStatus, next time.Time, lastError string, at time.Time) error {
	return f.count(f.s.settle(ctx, f.guard(), key, status, next, lastError, at))
}

// Defer is Registry.Defer, doing nothing to a notification claimed since
// under a newer token.
func (f *Fenced) Defer(ctx context.Context, key string, next time.Time) error {
	return f.s.deferClaim(ctx, f.guard(), key, next)
}

// Pending is Registry.Pending.
func (f *Fenced) Pending(ctx context.Context) (int, time.Time, error) { return f.s.Pending(ctx) }

// Status reads; reading needs no lease.
func (f *Fenced) Status(ctx context.Context, key string) (alerting.NotificationStatus, time.Time, error) {
	return f.s.Status(ctx, key)
}
