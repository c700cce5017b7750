// Package push runs push (heartbeat) targets: jobs that ping upwatch
// instead of being checked. A ping becomes a prober.Result that travels the
// same way as a check's (samples, metrics, alerting); a target whose ping
// does not arrive within its period plus grace gets a failed Result of
// class no_ping, and another each period while it stays silent.
//
// Tokens are secrets: the index holds only their SHA-256 digests, nothing
// logs them, and an unknown token costs the same digest and map lookup as a
// known one.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/upwatch/upwatch/internal/clock"
	"github.com/upwatch/upwatch/prober"
)

// Rate of pings one token may send: a burst, then one a second. Cron jobs
// ping a few times per run; more is a loop or an attack.
const (
	PingBurst = 20
	PingRate  = rate.Limit(1)
	// MaxBody bounds a ping's body; what is kept of it is the Result's
	// error text (at most 512 bytes).
	MaxBody = 10 << 10
)

// Errors of Ping.
var (
	ErrUnknownToken = errors.New("push: unknown token")
	ErrRateLimited  = errors.New("push: too many pings")
)

// Sink takes one result, like the scheduler's sink.
type Sink func(ctx context.Context, r prober.Result)

// Options are a Monitor's dependencies.
type Options struct {
	Sink     Sink // required
	Location string
	Now      func() time.Time // the composition root's clock
	Logger   *slog.Logger
}

// Monitor holds the push targets and their last pings.
type Monitor struct {
	sink     Sink
	location string
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex
	byToken map[[32]byte]*entry
	byID    map[string]*entry
}

// entry is one push target's state, guarded by Monitor.mu.
type entry struct {
	id, name      string
	digest        [32]byte
	period, grace time.Duration
	deadline      time.Time // a no_ping result is due at this time
	started       time.Time // the last /start not yet followed by an end
	limiter       *rate.Limiter
}

// New returns a Monitor with no targets.
func New(o Options) *Monitor {
	if o.Sink == nil {
		panic("push: Options.Sink is nil")
	}
	if o.Location == "" {
		o.Location = "local"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Monitor{sink: o.Sink, location: o.Location, now: clock.Or(o.Now), log: o.Logger,
		byToken: map[[32]byte]*entry{}, byID: map[string]*entry{}}
}

// Update replaces the push targets with those of kind push among targets
// (by ID: the target's key). A new target's first deadline is period plus
// grace from now; a kept one keeps its last ping, its deadline moving with
// a changed period or grace. Paused targets are dropped. Two targets with
// one token: the first keeps it, the other is logged and left out.
func (m *Monitor) Update(targets []prober.Target) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	byToken := make(map[[32]byte]*entry, len(m.byToken))
	byID := make(map[string]*entry, len(m.byID))
	for i := range targets {
		t := &targets[i]
		if t.Kind != "push" || t.Push == nil || t.Paused {
			continue
		}
		d := prober.PushTokenHash(t.Push.Token.Reveal())
		if _, dup := byToken[d]; dup {
			m.log.Warn("push target left out: another target has the same token", "target", t.ID)
			continue
		}
		e, ok := m.byID[t.ID]
		switch {
		case !ok:
			e = &entry{id: t.ID, deadline: now.Add(t.Push.Period + t.Push.Grace), limiter: rate.NewLimiter(PingRate, PingBurst)}
		case e.period != t.Push.Period || e.grace != t.Push.Grace:
			// The last ping (or the start) was at deadline - period - grace.
			e.deadline = e.deadline.Add(t.Push.Period + t.Push.Grace - e.period - e.grace)
		}
		e.name, e.digest, e.period, e.grace = t.Name, d, t.Push.Period, t.Push.Grace
		byToken[d], byID[t.ID] = e, e
	}
	m.byToken, m.byID = byToken, byID
}

// Targets is how many push targets the monitor holds.
func (m *Monitor) Targets() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID)
}

// Kind of a ping.
type Kind int

const (
	Success Kind = iota // the job ran fine
	Start               // the job started: a later end gives its duration
	Fail                // the job failed (/fail or a non-zero exit code)
)

// Ping is one ping of a job.
type Ping struct {
	Kind     Kind
	ExitCode int    // for Fail by exit code; 0 otherwise
	Body     string // what the job sent, at most MaxBody bytes: kept on failure
}

// Ping records a ping for token. A success or a failure becomes a Result
// (sent to the sink before Ping returns) and moves the deadline to period
// plus grace from now; a start only notes the time.
func (m *Monitor) Ping(ctx context.Context, token string, p Ping) error {
	d := prober.PushTokenHash(token) // for every token, known or not
	now := m.now()
	m.mu.Lock()
	e, ok := m.byToken[d]
	if !ok {
		m.mu.Unlock()
		return ErrUnknownToken
	}
	if !e.limiter.AllowN(now, 1) {
		m.mu.Unlock()
		return ErrRateLimited
	}
	if p.Kind == Start {
		e.started = now
		e.deadline = now.Add(e.period + e.grace)
		m.mu.Unlock()
		return nil
	}
	// Stamped when the ping arrived, never earlier: the alert engine
	// takes results in order of Start, and a run that began before a
	// no_ping result must still end it.
	r := prober.Result{TargetID: e.id, Target: e.name, Kind: "push", Location: m.location, Start: now, Success: true}
	if !e.started.IsZero() {
		r.Duration = now.Sub(e.started)
		e.started = time.Time{}
	}
	e.deadline = now.Add(e.period + e.grace)
	m.mu.Unlock()
	if p.Kind == Fail {
		msg := "the job reported failure"
		if p.ExitCode != 0 {
			msg = fmt.Sprintf("the job exited with code %d", p.ExitCode)
		}
		if p.Body != "" {
			msg += ": " + p.Body
		}
		r = r.Fail(prober.ClassJobFailed, msg)
	}
	m.sink(ctx, r)
	return nil
}

// Tick sends a no_ping failure for every target whose deadline has passed
// at now and moves its deadline one period on, so a silent job keeps
// failing once a period (and failure_threshold counts missed periods).
func (m *Monitor) Tick(ctx context.Context, now time.Time) {
	var due []prober.Result
	m.mu.Lock()
	for _, e := range m.byID {
		if now.Before(e.deadline) {
			continue
		}
		missedAt := e.deadline
		lastSeen := missedAt.Add(-e.period - e.grace)
		due = append(due, prober.Result{TargetID: e.id, Target: e.name, Kind: "push", Location: m.location, Start: missedAt}.
			Fail(prober.ClassNoPing, fmt.Sprintf("no ping within period %s + grace %s (since %s)", e.period, e.grace, lastSeen.UTC().Format(time.RFC3339))))
		e.deadline = missedAt.Add(e.period)
		if !e.deadline.After(now) {
			// Far behind (a stopped process, a clock jump): one result
			// for the whole silence, the next a period from now.
			e.deadline = now.Add(e.period)
		}
		e.started = time.Time{}
	}
	m.mu.Unlock()
	for _, r := range due {
		m.sink(ctx, r)
	}
}

// Run calls Tick with the monitor's clock every interval until ctx ends.
// The clock, not the ticker, says what time it is: a test moving a manual
// clock sees deadlines pass within one interval.
func (m *Monitor) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Tick(ctx, m.now())
		}
	}
}

// Others returns targets without the push ones, for the scheduler: push
// targets are not checked. Without push targets it is targets itself, not
// a copy (a copy of 250,000 targets is 50 MB held for nothing); callers
// treat both as read-only.
func Others(targets []prober.Target) []prober.Target {
	if !slices.ContainsFunc(targets, func(t prober.Target) bool { return t.Kind == "push" }) {
		return targets
	}
	out := targets[:0:0]
	for _, t := range targets {
		if t.Kind != "push" {
			out = append(out, t)
		}
	}
	return out
}
