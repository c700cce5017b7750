package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/lease"
	"github.com/upwatch/upwatch/metrics"
	"github.com/upwatch/upwatch/prober"
)

// Route is everything the engine needs to know about one target: its policy
// and who hears of it on which channel. Routes are configuration; the
// engine's state never lives in them.
type Route struct {
	Name, URL string
	Labels    map[string]string
	Policy    Policy
	// Channels the recipients are told on; empty means nobody is told
	// (incidents are still recorded).
	Channels   []string
	Recipients []notify.Recipient
	// Escalation recipients get the escalation message.
	Escalation []notify.Recipient
	// DependsOn lists parent target IDs: while one is DOWN or failing, this
	// target's notifications are suppressed.
	DependsOn []string
	// Interval is how often the target is checked (prober.DefaultInterval
	// if zero). A child waits for this target, as a parent, at most
	// Interval × FailureThreshold before paging on its own.
	Interval time.Duration
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	Store    StateStore
	Renderer *notify.Renderer
	// Link is the base URL put in messages; empty uses the target's URL.
	Link string
	// Wake is called after notifications were queued (pokes the dispatcher).
	Wake func()
	// CheckNow asks for an immediate check of a target (a parent whose
	// answer a child's DOWN waits for); nil waits for the parent's schedule.
	CheckNow func(targetID string)
	// Acks, if set, is asked whether an incident was acknowledged before
	// its reminders and escalation are queued; nil sends them all.
	Acks       AckReader
	Now        func() time.Time
	Registerer prometheus.Registerer
	Logger     *slog.Logger

	// Group commit (after Start): CommitBatch is the most target states
	// one registry transaction stores (default 5000), CommitDelay the
	// longest a commit waits for its batch to fill (default 100ms), and
	// CommitQueue how many commits may wait before Observe blocks (default
	// 10000). QuietDelay (default 2s, never less than CommitDelay) is how
	// long a batch of quiet commits may wait instead: states that record
	// no incident and queue no message, such as every new target's first
	// UP, which a restart must find but nobody waits for. Fewer, larger
	// transactions store them for a fraction of the cost. A batch closes
	// at the latest CommitDelay after its first commit that is not quiet,
	// and at once when a target's next result waits for its commit.
	CommitBatch int
	CommitDelay time.Duration
	CommitQueue int
	QuietDelay  time.Duration

	// Locations configure the watch over probe locations (unavailable,
	// suspect); OnLocationEvent, if set, hears of each change besides the
	// log line and the metrics.
	Locations       LocationOptions
	OnLocationEvent func(LocationEvent)
}

// Engine feeds results through each target's state machine, decides who is
// told (maintenance, dependencies, contact groups), and commits the new
// state, incidents and notifications together before anything is sent.
type Engine struct {
	o EngineOptions

	mu      sync.RWMutex // guards routes, windows, the targets map and each target's route
	routes  map[string]*Route
	windows []Window
	targets map[string]*targetState
	// longest is the longest interval of the routed targets: a location
	// silent for DefaultStaleIntervals of it is unavailable.
	longest time.Duration

	locs *locationWatch

	// wmu guards watch: the targets that are DOWN or held, the only ones
	// Tick has anything to do for. Taken inside a targetState's mu.
	wmu   sync.Mutex
	watch map[*targetState]struct{}

	// qmu guards queue: the committer's input while group commit runs
	// (Start to Stop), nil otherwise. Senders hold it for reading.
	qmu     sync.RWMutex
	queue   chan *pending
	stopped chan struct{} // closed when the committer has exited
	cancel  context.CancelFunc
	// hurry asks the committer to close its batch now: a result waits
	// for a commit in it.
	hurry chan struct{}

	// up and incidents are per target, served by WriteTo (not gathered
	// by the registry: too slow at 100,000 targets).
	up        *metrics.PerTarget
	incidents *metrics.PerTarget
	commitErr prometheus.Counter
	commits   prometheus.Counter
	states    prometheus.Counter
}

// targetState serialises one target's results and holds its newest State.
// While inflight is set, state is what that commit stores and no other
// change of the target is made: if the commit fails, state goes back to
// what it was, and the next result derives the same transitions again.
type targetState struct {
	// route is the target's route, nil while it is not routed; guarded by
	// Engine.mu. Observe finds it with the target in one map lookup.
	route *Route

	mu       sync.Mutex
	id       string
	state    State
	inflight *pending
	watched  bool // in Engine.watch
}

// setState sets ts's state and keeps Engine.watch in step with it. Called
// with ts.mu held.
func (e *Engine) setState(ts *targetState, s State) {
	ts.state = s
	if want := s.Status == StatusDown || s.Hold != nil; want != ts.watched {
		ts.watched = want
		e.wmu.Lock()
		if want {
			e.watch[ts] = struct{}{}
		} else {
			delete(e.watch, ts)
		}
		e.wmu.Unlock()
	}
}

// lock takes ts.mu once no commit of the target is in flight; hurry is
// called before waiting for one.
func (ts *targetState) lock(ctx context.Context, hurry func()) error {
	ts.mu.Lock()
	for ts.inflight != nil {
		done := ts.inflight.done
		ts.mu.Unlock()
		hurry()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		ts.mu.Lock()
	}
	return nil
}

// NewEngine loads every target's state from the store.
func NewEngine(ctx context.Context, o EngineOptions) (*Engine, error) {
	if o.Store == nil {
		return nil, ErrNoStore
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Wake == nil {
		o.Wake = func() {}
	}
	if o.CheckNow == nil {
		o.CheckNow = func(string) {}
	}
	if o.CommitBatch <= 0 {
		o.CommitBatch = 5000
	}
	if o.CommitDelay <= 0 {
		o.CommitDelay = 100 * time.Millisecond
	}
	if o.QuietDelay <= 0 {
		o.QuietDelay = 2 * time.Second
	}
	o.QuietDelay = max(o.QuietDelay, o.CommitDelay)
	if o.CommitQueue <= 0 {
		o.CommitQueue = 10000
	}
	if o.Renderer == nil {
		r, err := notify.NewRenderer("")
		if err != nil {
			return nil, err
		}
		o.Renderer = r
	}
	states, err := o.Store.LoadStates(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading alert state: %w", err)
	}
	e := &Engine{
		o:         o,
		locs:      newLocationWatch(o.Locations),
		longest:   prober.DefaultInterval,
		routes:    map[string]*Route{},
		targets:   make(map[string]*targetState, len(states)),
		watch:     map[*targetState]struct{}{},
		hurry:     make(chan struct{}, 1),
		up:        metrics.NewPerTargetGauge("upwatch_target_up", "Target state after thresholds: 1 up, 0 down, -1 unknown."),
		incidents: metrics.NewPerTargetCounter("upwatch_incidents_total", "Incidents opened, by target."),
		commitErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_alert_commit_errors_total", Help: "Alert state commits that failed (the transition is retried with the next result).",
		}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_alert_commits_total", Help: "Registry transactions that committed alert state.",
		}),
		states: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_alert_states_committed_total", Help: "Target states committed (several to a transaction under group commit).",
		}),
	}
	for id, s := range states {
		ts := &targetState{id: id}
		e.setState(ts, s)
		e.targets[id] = ts
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(e.commitErr, e.commits, e.states, e.locs.available, e.locs.suspectG)
	}
	return e, nil
}

// Load replaces every target's state with the store's: a server that takes
// over alert evaluation from another starts where that one's last commit
// left off. Call it while nothing is observed and no commit is in flight
// (before Start, or after Stop).
func (e *Engine) Load(ctx context.Context) error {
	states, err := e.o.Store.LoadStates(ctx)
	if err != nil {
		return fmt.Errorf("loading alert state: %w", err)
	}
	targets := make(map[string]*targetState, len(states))
	e.wmu.Lock()
	clear(e.watch) // the states below replace every one watched
	e.wmu.Unlock()
	for id, s := range states {
		ts := &targetState{id: id}
		e.setState(ts, s) // a DOWN one is watched, so its reminders go on
		targets[id] = ts
	}
	e.mu.Lock()
	for id, ts := range targets {
		ts.route = e.routes[id]
	}
	e.targets = targets
	routed := slices.Collect(maps.Keys(e.routes))
	e.mu.Unlock()
	for _, id := range routed {
		st := NewState(id)
		if ts, ok := targets[id]; ok {
			st = ts.state
		}
		e.setUp(id, st.Status)
	}
	return nil
}

// Update replaces the routes and maintenance windows. A target no longer
// routed (deleted, paused, or gone from the config file) loses its series,
// and its open incident is closed: nothing checks it any more. A newly
// routed target's incident counter starts at 0, so its first incident is an
// increase.
//
// Lock order: a target's lock may be held while taking e.mu, never the
// reverse, and never two targets' locks at once.
func (e *Engine) Update(routes map[string]Route, windows []Window) {
	gone := e.update(routes, windows)
	e.locs.forget(gone)
	for _, id := range gone {
		e.retire(id)
	}
}

func (e *Engine) update(routes map[string]Route, windows []Window) (gone []string) {
	e.mu.Lock()
	for id := range e.routes {
		if _, ok := routes[id]; !ok {
			e.up.Delete(id)
			e.incidents.Delete(id)
			gone = append(gone, id)
			if ts, ok := e.targets[id]; ok {
				ts.route = nil
			}
		}
	}
	e.routes = make(map[string]*Route, len(routes))
	e.windows = windows
	e.longest = prober.DefaultInterval
	known := make(map[string]*targetState, len(routes))
	for id, rt := range routes {
		e.routes[id] = &rt
		e.longest = max(e.longest, rt.Interval)
		e.incidents.Add(id, 0)
		if ts, ok := e.targets[id]; ok {
			ts.route = &rt
			known[id] = ts
		}
	}
	e.mu.Unlock()
	for id, ts := range known {
		ts.mu.Lock()
		e.setUp(id, ts.state.Status)
		ts.mu.Unlock()
	}
	return gone
}

// WriteTo writes the per-target series upwatch_target_up and
// upwatch_incidents_total as Prometheus text (see metrics.Handler).
func (e *Engine) WriteTo(w io.Writer) (int64, error) {
	n, err := e.up.WriteTo(w)
	if err != nil {
		return n, err
	}
	m, err := e.incidents.WriteTo(w)
	return n + m, err
}

// setUp sets a target's upwatch_target_up unless it is no longer routed,
// so a late result cannot bring back the series of a removed target.
func (e *Engine) setUp(id string, s Status) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if _, ok := e.routes[id]; ok {
		e.up.Set(id, statusValue(s))
	}
}

// retire ends the open incident of a target that is no longer routed, at
// now, and forgets its run, so its outage does not grow for ever. Nobody is
// told: there is no recovery to announce.
func (e *Engine) retire(id string) {
	e.mu.RLock()
	ts, ok := e.targets[id]
	e.mu.RUnlock()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if ts.lock(ctx, e.expedite) != nil {
		return
	}
	if ts.state.Incident == nil {
		ts.mu.Unlock()
		return
	}
	inc := *ts.state.Incident
	inc.End = e.o.Now()
	if inc.End.Before(inc.Start) {
		inc.End = inc.Start
	}
	p := e.begin(ts, Commit{State: NewState(id), Incidents: []Incident{inc}})
	p.retired = true
	ts.mu.Unlock()
	switch err := e.submit(ctx, p); {
	case errors.Is(err, lease.ErrFenced):
		// A server that does not evaluate alerts: the leader closes it.
	case err != nil:
		e.o.Logger.Error("closing the incident of a removed target", "target", id, "incident", inc.ID, "err", err)
	}
}

// State returns a target's newest state (for the API and tests), whose
// commit may still be in flight.
func (e *Engine) State(targetID string) (State, bool) {
	e.mu.RLock()
	ts, ok := e.targets[targetID]
	e.mu.RUnlock()
	if !ok {
		return State{}, false
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.state, true
}

// routed returns a routed target and its route; nil if it is not routed.
// The target's first result makes its targetState.
func (e *Engine) routed(id string) (*targetState, *Route) {
	e.mu.RLock()
	ts := e.targets[id]
	var route *Route
	if ts != nil {
		route = ts.route
	}
	e.mu.RUnlock()
	if ts != nil {
		return ts, route
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	route = e.routes[id]
	if route == nil {
		return nil, nil
	}
	if ts = e.targets[id]; ts == nil {
		ts = &targetState{id: id, state: NewState(id), route: route}
		e.targets[id] = ts
	}
	return ts, ts.route
}

// Observe feeds one result. Without group commit (before Start, after
// Stop) the new state is committed (with any incident and notifications)
// before Observe returns, and a failed commit is returned. With group
// commit Observe queues the commit and returns (it blocks while the queue
// is full); the committer logs a failure. Either way a failed commit does
// not advance the state, so the next result derives the same transition
// again, and a target's next result waits for its commit in flight.
func (e *Engine) Observe(ctx context.Context, r prober.Result) error {
	ts, rp := e.routed(r.TargetID)
	if rp == nil {
		return nil
	}
	route := *rp
	// The parents are read first, each under its own lock: holding this
	// target's lock while waiting for a parent's could deadlock.
	parents := e.parents(route)
	if ev := e.locs.observe(r); ev != nil {
		e.locationEvent(*ev)
	}
	if err := ts.lock(ctx, e.expedite); err != nil {
		return err
	}
	next, trs := StepQuorum(ts.state, route.Policy, r, e.quorumView(route))
	p := e.prepare(ts, route, parents, next, trs, e.o.Now())
	ts.mu.Unlock()
	if p == nil {
		return nil
	}
	return e.submit(ctx, p)
}

// quorumView is what StepQuorum needs to know beyond the target: its
// staleness window and the suspect locations.
func (e *Engine) quorumView(route Route) QuorumView {
	stale := route.Policy.StaleAfter
	if stale <= 0 {
		iv := route.Interval
		if iv <= 0 {
			iv = prober.DefaultInterval
		}
		stale = DefaultStaleIntervals * iv
	}
	return QuorumView{Stale: stale, Suspect: e.locs.isSuspect}
}

// locationEvent tells operators of a change of a probe location.
func (e *Engine) locationEvent(ev LocationEvent) {
	e.o.Logger.Warn("probe location "+ev.Kind, "location", ev.Location, "kind", ev.Kind, "at", ev.At, "detail", ev.Detail)
	if e.o.OnLocationEvent != nil {
		e.o.OnLocationEvent(ev)
	}
}

// Tick decides which probe locations are unavailable or suspect at now,
// and emits reminders and escalations that are due at now. For those it
// visits only the targets that are DOWN or held (Engine.watch): the others,
// nearly all of them, have nothing due, and 250,000 of them once a second
// would cost a core's tenth for nothing.
func (e *Engine) Tick(ctx context.Context, now time.Time) {
	e.mu.RLock()
	longest, routed := e.longest, len(e.routes) > 0
	e.mu.RUnlock()
	if routed { // with nothing to check, silence is no news
		for _, ev := range e.locs.evaluate(now, DefaultStaleIntervals*longest) {
			e.locationEvent(ev)
		}
	}
	e.wmu.Lock()
	items := make([]*targetState, 0, len(e.watch))
	for ts := range e.watch {
		items = append(items, ts)
	}
	e.wmu.Unlock()
	e.mu.RLock()
	routes := e.routes
	e.mu.RUnlock()
	for _, ts := range items {
		id := ts.id
		rp, ok := routes[id]
		if !ok {
			continue
		}
		route := *rp
		ts.mu.Lock()
		down, held := ts.state.Status == StatusDown, ts.state.Hold != nil
		ts.mu.Unlock()
		if !down && !held {
			continue
		}
		var parents []parentView
		if held {
			parents = e.parents(route)
		}
		ack := e.ackDue(ctx, ts, route, now)
		ts.mu.Lock()
		if ts.inflight != nil {
			ts.mu.Unlock() // the next tick looks again
			continue
		}
		next, trs := ts.state, []Transition(nil)
		if ack != nil && next.Incident != nil && next.Incident.ID == ack.ID && !next.Incident.Acked() {
			inc := *next.Incident
			inc.AckedBy, inc.AckedAt = ack.AckedBy, ack.AckedAt
			next.Incident = &inc
		}
		if next.Status == StatusDown && next.Hold == nil {
			// Reminders and escalations wait while the DOWN is held.
			next, trs = Tick(next, route.Policy, now)
		}
		var p *pending
		if len(trs) > 0 || (next.Hold != nil && held) {
			p = e.prepare(ts, route, parents, next, trs, now)
		} else if ack != nil {
			ts.state = next // remembered: no need to ask again
		}
		ts.mu.Unlock()
		if p != nil {
			if err := e.submit(ctx, p); err != nil {
				e.o.Logger.Error("committing reminder", "target", id, "err", err)
			}
		}
	}
}

// ackDue asks o.Acks, when a reminder or escalation of the target's open
// incident is due at now, whether someone acknowledged the incident, and
// returns it with the acknowledgement then (nil otherwise). The question
// is asked outside ts.mu and only when something is due, so a down target
// costs one query per reminder, not one per tick.
func (e *Engine) ackDue(ctx context.Context, ts *targetState, route Route, now time.Time) *Incident {
	if e.o.Acks == nil {
		return nil
	}
	ts.mu.Lock()
	st := ts.state
	ts.mu.Unlock()
	if st.Incident == nil || st.Incident.Acked() || st.Hold != nil {
		return nil
	}
	if _, due := Tick(st, route.Policy, now); len(due) == 0 {
		return nil
	}
	by, at, err := e.o.Acks.IncidentAck(ctx, st.Incident.ID)
	if err != nil {
		// Better a reminder too many than a silent outage.
		e.o.Logger.Error("reading the incident's acknowledgement", "target", st.TargetID, "incident", st.Incident.ID, "err", err)
		return nil
	}
	if at.IsZero() {
		return nil
	}
	inc := *st.Incident
	inc.AckedBy, inc.AckedAt = by, at
	return &inc
}

// Run ticks every interval until ctx ends.
func (e *Engine) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.Tick(ctx, now)
		}
	}
}

// prepare decides the incidents and notifications the transitions call
// for, given a snapshot of the target's parents taken before ts.mu, and
// returns the commit of next, now in flight; or, when nothing a restart
// must not forget changed, sets the state to next and returns nil. Called
// with ts.mu held and no commit of the target in flight.
//
// Whether an incident is told is decided at DOWN and travels with the
// incident to its reminders and UP. A parent that is DOWN, or whose last
// check failed, suppresses it. If a parent has not been checked since the
// child's deciding check began (the parent's check may simply come later
// in the interval), the DOWN messages are held in the state, the parents
// are asked for a check at once, and the messages go out when every parent
// has answered healthy, when the parents' grace passes, or when the
// incident ends; a parent answering failing suppresses them.
func (e *Engine) prepare(ts *targetState, route Route, parents []parentView, next State, trs []Transition, now time.Time) *pending {
	prev := ts.state
	var incidents []Incident
	var queue []Notification
	if next.Hold != nil {
		var resolved bool
		incidents, queue, resolved = e.resolveHold(&next, route, parents, trs, now)
		if resolved {
			next.Hold = nil
		}
	}
	var ask []string
	downs := 0
	for _, tr := range trs {
		switch tr.Kind {
		case KindDown:
			inc := next.Incident
			reason, wait := parentVerdict(parents, next.LastCheck)
			if reason != "" {
				inc.Suppressed, inc.SuppressedReason = true, reason
			}
			inc.InMaintenance = e.inMaintenance(tr.At, next.TargetID, route.Labels)
			next.Incident = inc
			tr.Incident = *inc
			incidents = append(incidents, *inc)
			downs++
			if reason == "" && len(wait) > 0 && !inc.InMaintenance {
				next.Hold = &Hold{Since: next.LastCheck, Until: tr.At.Add(grace(parents)), Down: tr}
				ask = wait
				continue
			}
		case KindUp:
			incidents = append(incidents, tr.Incident)
		}
		queue = append(queue, e.notifications(route, next.TargetID, tr)...)
	}
	if len(trs) == 0 && len(incidents) == 0 && len(queue) == 0 && prev.Hold == next.Hold &&
		prev.Status == next.Status && !runMatters(prev, next) && !locationsMatter(prev, next) {
		e.setState(ts, next)
		return nil
	}
	for i := range queue {
		queue[i].Status, queue[i].CreatedAt, queue[i].NextAttempt = NotificationPending, now, now
	}
	p := e.begin(ts, Commit{State: next, Incidents: incidents, Queue: queue})
	p.trs, p.downs, p.ask, p.heldBefore = trs, downs, ask, prev.Hold
	return p
}

// runMatters reports whether next starts a run a restart must not forget.
// Besides transitions, holds and status changes, a state is committed at
// the start of a failure run (the incident starts at its first check) and
// at the start of a success run that ends one (else the failures counted
// before it would, after a restart, hasten a DOWN). Counts inside a run
// are not worth a write per check: a run resumes from its last committed
// count, which only delays a verdict. Nor is the first run of a new target
// when it is a success run: forgetting it also only delays the UP, so a
// new target's first result writes nothing, and an UP target's routine
// successes write nothing either.
func runMatters(prev, next State) bool {
	if prev.RunStart.Equal(next.RunStart) {
		return false
	}
	return next.ConsecutiveFailures > 0 || prev.ConsecutiveFailures > 0
}

// pending is one target's commit on its way to the store, and what follows
// once it is stored.
type pending struct {
	ts   *targetState
	prev State // restored if the commit fails
	c    Commit
	done chan struct{} // closed once committed or failed
	err  error

	trs        []Transition
	downs      int
	ask        []string // parents to check now
	heldBefore *Hold
	retired    bool // closes the incident of a removed target
}

// begin puts c in flight for ts: the state is c.State until the commit
// fails. Called with ts.mu held and nothing in flight.
func (e *Engine) begin(ts *targetState, c Commit) *pending {
	p := &pending{ts: ts, prev: ts.state, c: c, done: make(chan struct{})}
	e.setState(ts, c.State)
	ts.inflight = p
	return p
}

// submit hands p to the committer, or without group commit commits it at
// once and returns its error. If ctx ends while the queue is full, p fails
// with ctx's error.
func (e *Engine) submit(ctx context.Context, p *pending) error {
	e.qmu.RLock()
	if q := e.queue; q != nil {
		select {
		case q <- p:
			e.qmu.RUnlock()
			return nil
		case <-ctx.Done():
			e.qmu.RUnlock()
			p.err = ctx.Err()
			e.finish([]*pending{p})
			return p.err
		}
	}
	e.qmu.RUnlock()
	if err := e.commit(ctx, []*pending{p}); err != nil {
		return fmt.Errorf("committing alert state of %s: %w", p.c.State.TargetID, err)
	}
	return nil
}

// commit stores a batch in one transaction and finishes each pending. If
// the batch fails, its commits are tried one by one, so that one the store
// rejects fails alone; not when the store refused the writer itself
// (lease.ErrFenced). It returns the first error.
func (e *Engine) commit(ctx context.Context, batch []*pending) error {
	cs := make([]Commit, len(batch))
	for i, p := range batch {
		cs[i] = p.c
	}
	err := e.o.Store.CommitBatch(ctx, cs)
	if err == nil {
		e.commits.Inc()
		e.states.Add(float64(len(batch)))
	} else if len(batch) > 1 && ctx.Err() == nil && !errors.Is(err, lease.ErrFenced) {
		var first error
		for _, p := range batch {
			if err := e.commit(ctx, []*pending{p}); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, p := range batch {
		p.err = err
	}
	e.finish(batch)
	return err
}

// finish ends each pending's flight: a failed one puts its target's state
// back, a stored one has its effects (series, logs, parents asked for a
// check, the dispatcher woken).
func (e *Engine) finish(batch []*pending) {
	wake := false
	for _, p := range batch {
		ts := p.ts
		ts.mu.Lock()
		if p.err != nil {
			e.commitErr.Inc()
			e.setState(ts, p.prev)
		} else {
			e.committed(p)
			wake = wake || len(p.c.Queue) > 0
		}
		ts.inflight = nil
		ts.mu.Unlock()
		close(p.done)
	}
	if wake {
		e.o.Wake()
	}
}

// committed has the effects of a stored commit. Called with p.ts.mu held.
func (e *Engine) committed(p *pending) {
	next, queue := p.c.State, p.c.Queue
	if p.retired {
		e.o.Logger.Info("target removed; its open incident is closed", "target", next.TargetID, "incident", p.c.Incidents[0].ID)
		return
	}
	e.setUp(next.TargetID, next.Status)
	if p.downs > 0 {
		e.mu.RLock()
		if _, ok := e.routes[next.TargetID]; ok {
			e.incidents.Add(next.TargetID, float64(p.downs))
		}
		e.mu.RUnlock()
	}
	for _, id := range p.ask {
		e.o.CheckNow(id)
	}
	switch {
	case next.Hold != nil && p.heldBefore == nil:
		e.o.Logger.Info("down notifications held until the parents answer", "target", next.TargetID,
			"parents", p.ask, "until", next.Hold.Until)
	case next.Hold == nil && p.heldBefore != nil:
		e.o.Logger.Info("held down notifications decided", "target", next.TargetID,
			"incident", p.heldBefore.Down.Incident.ID, "notifications", len(queue),
			"suppressed", next.Incident != nil && next.Incident.Suppressed)
	}
	for _, tr := range p.trs {
		e.o.Logger.Info("transition", "target", next.TargetID, "kind", tr.Kind, "incident", tr.Incident.ID,
			"notifications", countFor(queue, tr), "suppressed", tr.Incident.Suppressed, "maintenance", tr.Incident.InMaintenance)
	}
}

// Start begins group commit: from now on results' and ticks' commits are
// queued for a committer that stores them in batches of up to CommitBatch,
// one transaction each, closing a batch once it is full or CommitDelay
// after its first commit. Stop ends it. Start after Start does nothing.
func (e *Engine) Start() {
	e.qmu.Lock()
	defer e.qmu.Unlock()
	if e.queue != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	q, done := make(chan *pending, e.o.CommitQueue), make(chan struct{})
	e.queue, e.stopped, e.cancel = q, done, cancel
	go func() {
		defer close(done)
		e.runCommitter(ctx, q)
	}()
}

// Stop commits what is queued and ends group commit; later commits are
// made at once again. If ctx ends first, what is left fails (its targets'
// states are not advanced) and Stop returns ctx's error. Stop is
// idempotent.
func (e *Engine) Stop(ctx context.Context) error {
	e.qmu.Lock() // waits for the senders blocked on a full queue
	q, done, cancel := e.queue, e.stopped, e.cancel
	e.queue = nil
	e.qmu.Unlock()
	if q == nil {
		return nil
	}
	close(q)
	defer cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		cancel()
		<-done // every commit left fails at once
		return ctx.Err()
	}
}

// expedite asks the committer to close its batch now.
func (e *Engine) expedite() {
	select {
	case e.hurry <- struct{}{}:
	default:
	}
}

// quiet reports whether nothing but a restart depends on p: it records
// no incident, queues no message, and holds or releases nothing.
func (p *pending) quiet() bool {
	return len(p.c.Incidents) == 0 && len(p.c.Queue) == 0 && len(p.trs) == 0 && len(p.ask) == 0 &&
		p.c.State.Hold == nil && p.heldBefore == nil && !p.retired
}

// runCommitter commits the queue in batches until it is closed and empty.
// A batch closes once it is full, QuietDelay after its first commit, or
// CommitDelay after its first commit that is not quiet, whichever comes
// first; or at once when asked to hurry.
func (e *Engine) runCommitter(ctx context.Context, q <-chan *pending) {
	batch := make([]*pending, 0, min(e.o.CommitBatch, 1024))
	timer := time.NewTimer(0)
	<-timer.C
	for {
		p, ok := <-q
		if !ok {
			return
		}
		batch = append(batch[:0], p)
		quiet := p.quiet()
		delay := e.o.CommitDelay
		if quiet {
			delay = e.o.QuietDelay
		}
		deadline := time.Now().Add(delay)
		timer.Reset(delay)
	fill:
		for len(batch) < e.o.CommitBatch {
			select {
			case p, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, p)
				if quiet && !p.quiet() {
					quiet = false
					if time.Until(deadline) > e.o.CommitDelay {
						timer.Reset(e.o.CommitDelay)
					}
				}
			case <-timer.C:
				break fill
			case <-e.hurry:
				break fill
			}
		}
		timer.Stop()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := e.commit(cctx, batch); err != nil {
			failed := 0
			for _, p := range batch {
				if p.err != nil {
					failed++
				}
			}
			e.o.Logger.Error("alert state not committed; retried with the next result",
				"targets", failed, "of", len(batch), "err", err)
		}
		cancel()
		clear(batch)
	}
}

func countFor(q []Notification, tr Transition) int {
	n := 0
	for _, x := range q {
		if x.Message.Kind == messageKind(tr.Kind) {
			n++
		}
	}
	return n
}

// parentView is a snapshot of one routed parent.
type parentView struct {
	id    string
	state State // zero if never seen
	grace time.Duration
}

// parents snapshots the routed parents of route, each under its own lock.
// The caller must hold no target's lock.
func (e *Engine) parents(route Route) []parentView {
	if len(route.DependsOn) == 0 {
		return nil
	}
	e.mu.RLock()
	out := make([]parentView, 0, len(route.DependsOn))
	for _, id := range route.DependsOn {
		if pr, ok := e.routes[id]; ok {
			iv := pr.Interval
			if iv <= 0 {
				iv = prober.DefaultInterval
			}
			out = append(out, parentView{id: id, grace: iv * time.Duration(pr.Policy.WithDefaults().FailureThreshold)})
		}
	}
	e.mu.RUnlock()
	for i := range out {
		out[i].state, _ = e.State(out[i].id)
	}
	return out
}

// parentVerdict says what the parents mean for a child's DOWN decided by a
// check that began at since: a reason to suppress it (a parent DOWN, or
// failing on its last check), or the parents not checked since then.
func parentVerdict(parents []parentView, since time.Time) (reason string, wait []string) {
	for _, p := range parents {
		switch {
		case p.state.Status == StatusDown:
			return "parent " + p.id + " down", nil
		case p.state.ConsecutiveFailures > 0:
			return "parent " + p.id + " failing", nil
		}
	}
	for _, p := range parents {
		if p.state.LastCheck.Before(since) {
			wait = append(wait, p.id)
		}
	}
	return "", wait
}

// grace is how long a child's DOWN may wait for its parents: the longest
// of their interval × failure threshold.
func grace(parents []parentView) time.Duration {
	var g time.Duration
	for _, p := range parents {
		g = max(g, p.grace)
	}
	return g
}

// resolveHold decides a held DOWN (s.Hold) at now: suppressed if a parent
// is failing, released once every parent answered, the grace passed, or
// the incident ended (trs holds its UP). It returns the incidents to store
// and the messages to queue, and marks the incident (and an UP of it in
// trs) suppressed when it is.
func (e *Engine) resolveHold(s *State, route Route, parents []parentView, trs []Transition, now time.Time) ([]Incident, []Notification, bool) {
	h := s.Hold
	ended := s.Incident == nil || s.Incident.ID != h.Down.Incident.ID
	reason, wait := parentVerdict(parents, h.Since)
	switch {
	case reason != "":
		// An UP in trs stores the ended incident itself.
		for i := range trs {
			if trs[i].Incident.ID == h.Down.Incident.ID {
				trs[i].Incident.Suppressed, trs[i].Incident.SuppressedReason = true, reason
			}
		}
		if ended {
			return nil, nil, true
		}
		inc := *s.Incident
		inc.Suppressed, inc.SuppressedReason = true, reason
		s.Incident = &inc
		return []Incident{inc}, nil, true
	case len(wait) == 0 || !now.Before(h.Until) || ended || slices.ContainsFunc(trs, func(t Transition) bool { return t.Kind == KindUp }):
		down := h.Down
		if !ended {
			down.Incident = *s.Incident
		}
		return nil, e.notifications(route, s.TargetID, down), true
	}
	return nil, nil, false
}

func (e *Engine) inMaintenance(at time.Time, targetID string, labels map[string]string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for i := range e.windows {
		if e.windows[i].Active(at, targetID, labels) {
			return true
		}
	}
	return false
}

// messageKind maps a transition to the message it sends; "" sends none.
func messageKind(k TransitionKind) string {
	switch k {
	case KindDown:
		return notify.KindDown
	case KindUp:
		return notify.KindUp
	case KindReminder:
		return notify.KindReminder
	case KindDegraded:
		return notify.KindDegraded
	case KindTLSExpiring:
		return notify.KindTLSExpiry
	case KindEscalation:
		return notify.KindEscalation
	}
	return ""
}

// notifications builds the outbox entries for one transition: one per
// recipient and channel, none while the incident is suppressed or began in
// maintenance, and none for a result-less transition inside a window.
func (e *Engine) notifications(route Route, targetID string, tr Transition) []Notification {
	kind := messageKind(tr.Kind)
	if kind == "" || len(route.Channels) == 0 {
		return nil
	}
	if tr.Incident.ID != "" && (tr.Incident.Suppressed || tr.Incident.InMaintenance) {
		return nil
	}
	if e.inMaintenance(tr.At, targetID, route.Labels) {
		return nil
	}
	recipients := route.Recipients
	if tr.Kind == KindEscalation {
		recipients = route.Escalation
	}
	// The slot makes keys of repeated kinds distinct and stable: reminders
	// by their due time, TLS warnings by the certificate's expiry, degraded
	// by when the slowness began.
	subject := tr.Incident.ID
	slot := ""
	switch tr.Kind {
	case KindReminder:
		slot = strconv.FormatInt(tr.At.Unix(), 10)
	case KindTLSExpiring:
		subject, slot = targetID, strconv.FormatInt(tr.TLSExpiry.Unix(), 10)
	case KindDegraded:
		subject, slot = targetID, strconv.FormatInt(tr.Since.Unix(), 10)
	}
	link := e.o.Link
	if link == "" {
		link = route.URL
	}
	var out []Notification
	for _, rcpt := range recipients {
		for _, ch := range route.Channels {
			addr := address(ch, rcpt)
			if addr == "" {
				continue
			}
			m := notify.Message{
				Key:        fmt.Sprintf("%s|%s|%s|%s|%s", subject, kind, slot, ch, keyAddress(ch, addr)),
				Kind:       kind,
				IncidentID: tr.Incident.ID,
				TargetID:   targetID, TargetName: route.Name, TargetURL: route.URL,
				Cause:     firstNonEmpty(tr.Incident.Cause, tr.Cause),
				Locations: incidentWhere(tr.Incident),
				StartedAt: tr.Incident.Start,
				Duration:  tr.Duration,
				Link:      link,
				To:        rcpt,
			}
			if tr.Kind == KindDegraded && !tr.Since.IsZero() {
				m.StartedAt = tr.Since // "slow since": when the slowness began
			}
			if m.StartedAt.IsZero() {
				m.StartedAt = tr.At
			}
			if tr.Kind == KindTLSExpiring {
				m.Cause = "certificate expires " + tr.TLSExpiry.UTC().Format(time.RFC3339)
			}
			if err := e.o.Renderer.Render(&m); err != nil {
				// Templates are checked at load time; a failure here is a
				// bug, but the message must still go out.
				e.o.Logger.Error("rendering message", "kind", kind, "err", err)
				m.Subject = fmt.Sprintf("[upwatch] %s %s", route.Name, kind)
				m.Text = m.Subject + ": " + m.Cause
			}
			out = append(out, Notification{Key: m.Key, Channel: ch, Message: m})
		}
	}
	return out
}

// downKey is the key of the DOWN an UP notification follows (the same
// incident, recipient and channel: keys are subject|kind|slot|channel|address
// as notifications builds them, and an incident's DOWN and UP have no slot).
func downKey(n Notification) (string, bool) {
	if n.Message.Kind != notify.KindUp || n.Message.IncidentID == "" {
		return "", false
	}
	prefix := n.Message.IncidentID + "|" + notify.KindUp + "||"
	rest, ok := strings.CutPrefix(n.Key, prefix)
	if !ok {
		return "", false
	}
	return n.Message.IncidentID + "|" + notify.KindDown + "||" + rest, true
}

// address is the recipient's address on a channel, "" if it has none.
// keyAddress is addr as a notification key holds it: a webhook's URL and a
// chat or paging destination (Recipient.Endpoint) hold credentials, so the
// key (which logs and listings show) holds their hash.
func keyAddress(channel, addr string) string {
	if channel == ChannelEmail || channel == ChannelSMS {
		return addr
	}
	sum := sha256.Sum256([]byte(addr))
	return "sha256:" + hex.EncodeToString(sum[:12])
}

func address(channel string, r notify.Recipient) string {
	switch channel {
	case ChannelEmail:
		return r.Email
	case ChannelSMS:
		return r.Phone
	case ChannelWebhook:
		return r.WebhookURL
	}
	if r.Channel == channel {
		return r.Endpoint
	}
	return ""
}

// incidentWhere names the locations that saw an incident's failure.
func incidentWhere(inc Incident) []string {
	if len(inc.Locations) == 0 {
		return nil
	}
	out := make([]string, len(inc.Locations))
	for i, l := range inc.Locations {
		out[i] = l.Location
	}
	return out
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func statusValue(s Status) float64 {
	switch s {
	case StatusUp:
		return 1
	case StatusDown:
		return 0
	}
	return -1
}

// ErrNoStore is returned by NewEngine without a store.
var ErrNoStore = errors.New("alerting: no state store")
