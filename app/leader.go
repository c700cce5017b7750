package app

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/prober"
)

// alertingLease names the lease whose holder, of the servers sharing a
// PostgreSQL registry, evaluates alerts, sends notifications and runs the
// local checks.
const alertingLease = "alerting"

// sharedRefresh is how often a server on a shared registry reads the
// targets again (an API write made on another server reaches it), and a
// server that does not lead reads the alert state the leader committed
// (for its API answers and upwatch_target_up).
const sharedRefresh = 10 * time.Second

// Evaluator is where a result enters alert evaluation, whoever produced it:
// a local check, or (through the agents' ingest) an agent's. Results given
// to a server that does not hold the alerting lease are not evaluated
// there; they are counted in upwatch_results_not_evaluated_total. An
// ingest that may run on any server must route them to the leader (or
// store them where the leader reads them): that is the seam.
type Evaluator interface {
	Observe(ctx context.Context, r prober.Result) error
}

// leadership is the gate between results and the engine, and the term of
// a lease holder: the engine and the dispatcher run only while leading.
type leadership struct {
	engine *alerting.Engine

	// mu orders taking over (Load, then leading) against a follower's
	// refresh of the state, which must not replace the map mid-term.
	mu      sync.Mutex
	leading atomic.Bool

	notEvaluated prometheus.Counter
}

func newLeadership(engine *alerting.Engine, reg prometheus.Registerer) *leadership {
	l := &leadership{engine: engine, notEvaluated: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "upwatch_results_not_evaluated_total",
		Help: "Check results this server did not evaluate because it does not hold the alerting lease.",
	})}
	reg.MustRegister(l.notEvaluated)
	return l
}

// Observe feeds r to the engine while this server leads.
func (l *leadership) Observe(ctx context.Context, r prober.Result) error {
	if !l.leading.Load() {
		l.notEvaluated.Inc()
		return nil
	}
	return l.engine.Observe(ctx, r)
}

// refresh reloads the leader's committed state into a follower's engine.
func (l *leadership) refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.leading.Load() {
		return nil
	}
	return l.engine.Load(ctx)
}

// lead is one term of the lease: it loads the state the last leader
// committed, runs the engine (group commit and ticks) and the dispatcher,
// and starts the local checks (apply re-reads the targets, which are only
// scheduled while leading); when ctx ends (the lease is lost, or upwatch
// stops) it stops the checks at once, then the dispatcher and the engine,
// committing what is queued (refused if the lease is already another's).
func (s *Service) lead(ctx context.Context, token int64) {
	log := s.log.With("lease_token", token)
	l := s.leader
	l.mu.Lock()
	if err := s.engine.Load(ctx); err != nil {
		l.mu.Unlock()
		log.Error("taking over alerting: loading the alert state failed; giving the lease up", "err", err)
		return
	}
	s.engine.Start()
	l.leading.Store(true)
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { s.engine.Run(ctx, time.Second) })
	wg.Go(func() { s.dispatcher.Run(ctx) })
	wg.Go(func() { s.pings.Run(ctx, time.Second) })
	s.live.apply(ctx)
	log.Info("leading: evaluating alerts, sending notifications, running the local checks")

	<-ctx.Done()
	l.leading.Store(false)
	s.live.apply(context.WithoutCancel(ctx))
	s.dispatcher.Wake()
	wg.Wait()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ShutdownTimeout)
	defer cancel()
	if err := s.engine.Stop(stopCtx); err != nil {
		log.Error("alert state left uncommitted on giving up the lease", "err", err)
	}
	log.Info("no longer leading: alert evaluation, notifications and local checks stopped")
}

// startLeadership runs for the lease on a shared registry, and keeps a
// follower's targets and state fresh. Stopping it ends the term (after the
// checks, which stop first) and releases the lease so another server takes
// over at once.
func (s *Service) startLeadership(ctx context.Context) {
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { s.elector.Run(runCtx, s.lead) })
	wg.Go(func() {
		t := time.NewTicker(sharedRefresh)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
			}
			s.live.apply(runCtx)
			if err := s.leader.refresh(runCtx); err != nil && runCtx.Err() == nil {
				s.log.Warn("reading the leader's alert state", "err", err)
			}
		}
	})
	s.cleanup.push(func(ctx context.Context) error {
		stop()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.log.Error("alerting still stopping at the shutdown timeout; not waiting for it", "timeout", s.o.ShutdownTimeout)
		}
		return nil
	})
}

// alwaysLeader exports upwatch_leader 1 for a server that owns its
// registry alone: it always evaluates alerts.
func alwaysLeader(reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "upwatch_leader", Help: "1 while this server holds the alerting lease (evaluates alerts and sends notifications), else 0.",
	}, func() float64 { return 1 }))
}
