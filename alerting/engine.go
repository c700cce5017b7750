package alerting

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/alerting/notify"
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
	// DependsOn lists parent target IDs: while one is DOWN, this target's
	// notifications are suppressed.
	DependsOn []string
}

// EngineOptions configure an Engine.
type EngineOptions struct {
	Store    StateStore
	Renderer *notify.Renderer
	// Link is the base URL put in messages; empty uses the target's URL.
	Link string
	// Wake is called after notifications were queued (pokes the dispatcher).
	Wake       func()
	Now        func() time.Time
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Engine feeds results through each target's state machine, decides who is
// told (maintenance, dependencies, contact groups), and commits the new
// state, incidents and notifications together before anything is sent.
type Engine struct {
	o EngineOptions

	mu      sync.RWMutex // guards routes, windows and the targets map
	routes  map[string]Route
	windows []Window
	targets map[string]*targetState

	up        *prometheus.GaugeVec
	incidents *prometheus.CounterVec
	commitErr prometheus.Counter
}

// targetState serialises one target's results and holds its last committed
// State.
type targetState struct {
	mu    sync.Mutex
	state State
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
		o:       o,
		routes:  map[string]Route{},
		targets: make(map[string]*targetState, len(states)),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "upwatch_target_up", Help: "Target state after thresholds: 1 up, 0 down, -1 unknown.",
		}, []string{"target"}),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "upwatch_incidents_total", Help: "Incidents opened, by target.",
		}, []string{"target"}),
		commitErr: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_alert_commit_errors_total", Help: "Alert state commits that failed (the transition is retried with the next result).",
		}),
	}
	for id, s := range states {
		e.targets[id] = &targetState{state: s}
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(e.up, e.incidents, e.commitErr)
	}
	return e, nil
}

// Update replaces the routes and maintenance windows. A target no longer
// routed (deleted, or gone from the config file) loses its series, and its
// open incident is closed: nothing checks it any more.
func (e *Engine) Update(routes map[string]Route, windows []Window) {
	gone := e.update(routes, windows)
	for _, id := range gone {
		e.retire(id)
	}
}

func (e *Engine) update(routes map[string]Route, windows []Window) (gone []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id := range e.routes {
		if _, ok := routes[id]; !ok {
			e.up.DeleteLabelValues(id)
			gone = append(gone, id)
		}
	}
	e.routes = maps.Clone(routes)
	e.windows = windows
	for id := range routes {
		if ts, ok := e.targets[id]; ok {
			ts.mu.Lock()
			e.up.WithLabelValues(id).Set(statusValue(ts.state.Status))
			ts.mu.Unlock()
		}
	}
	return gone
}

// State returns a target's current state (for the API and tests).
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
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.state.Incident == nil {
		return
	}
	inc := *ts.state.Incident
	inc.End = e.o.Now()
	if inc.End.Before(inc.Start) {
		inc.End = inc.Start
	}
	next := NewState(id)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.o.Store.Commit(ctx, next, []Incident{inc}, nil); err != nil {
		e.commitErr.Inc()
		e.o.Logger.Error("closing the incident of a removed target", "target", id, "incident", inc.ID, "err", err)
		return
	}
	ts.state = next
	e.o.Logger.Info("target removed; its open incident is closed", "target", id, "incident", inc.ID)
}

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

func (e *Engine) target(id string) *targetState {
	e.mu.RLock()
	ts, ok := e.targets[id]
	e.mu.RUnlock()
	if ok {
		return ts
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ts, ok = e.targets[id]; !ok {
		ts = &targetState{state: NewState(id)}
		e.targets[id] = ts
	}
	return ts
}

// Observe feeds one result. The new state is committed (with any incident
// and notifications) before Observe returns; if the commit fails the state
// is not advanced, so the next result derives the same transition again.
func (e *Engine) Observe(ctx context.Context, r prober.Result) error {
	e.mu.RLock()
	route, routed := e.routes[r.TargetID]
	e.mu.RUnlock()
	if !routed {
		return nil
	}
	ts := e.target(r.TargetID)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	next, trs := Step(ts.state, route.Policy, r)
	return e.apply(ctx, ts, route, next, trs)
}

// Tick emits reminders and escalations that are due at now.
func (e *Engine) Tick(ctx context.Context, now time.Time) {
	e.mu.RLock()
	routes := e.routes
	ids := make([]string, 0, len(e.targets))
	for id := range e.targets {
		if _, ok := routes[id]; ok {
			ids = append(ids, id)
		}
	}
	e.mu.RUnlock()
	for _, id := range ids {
		ts := e.target(id)
		ts.mu.Lock()
		if ts.state.Status == StatusDown {
			next, trs := Tick(ts.state, routes[id].Policy, now)
			if len(trs) > 0 {
				if err := e.apply(ctx, ts, routes[id], next, trs); err != nil {
					e.o.Logger.Error("committing reminder", "target", id, "err", err)
				}
			}
		}
		ts.mu.Unlock()
	}
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

// apply commits next with the incidents and notifications the transitions
// call for. Called with ts.mu held.
func (e *Engine) apply(ctx context.Context, ts *targetState, route Route, next State, trs []Transition) error {
	prev := ts.state
	var incidents []Incident
	var queue []Notification
	for _, tr := range trs {
		switch tr.Kind {
		case KindDown:
			// Decide once, at DOWN, whether this incident is told; the
			// decision travels with the incident to its reminders and UP.
			inc := next.Incident
			if parent, down := e.parentDown(route); down {
				inc.Suppressed, inc.SuppressedReason = true, "parent "+parent+" down"
			}
			inc.InMaintenance = e.inMaintenance(tr.At, next.TargetID, route.Labels)
			next.Incident = inc
			tr.Incident = *inc
			incidents = append(incidents, *inc)
			e.incidents.WithLabelValues(next.TargetID).Inc()
		case KindUp:
			incidents = append(incidents, tr.Incident)
		}
		queue = append(queue, e.notifications(route, next.TargetID, tr)...)
	}
	// Commit when anything a restart must not forget changed: a transition,
	// the start of a new run (incident attribution), or the status. Counts
	// inside a run are not worth a write per check; after a restart a run
	// resumes from its last committed count, which only delays a verdict.
	if len(trs) == 0 && prev.RunStart.Equal(next.RunStart) && prev.Status == next.Status {
		ts.state = next
		return nil
	}
	now := e.o.Now()
	for i := range queue {
		queue[i].Status, queue[i].CreatedAt, queue[i].NextAttempt = StatusPending, now, now
	}
	if err := e.o.Store.Commit(ctx, next, incidents, queue); err != nil {
		e.commitErr.Inc()
		return fmt.Errorf("committing alert state of %s: %w", next.TargetID, err)
	}
	ts.state = next
	e.up.WithLabelValues(next.TargetID).Set(statusValue(next.Status))
	if len(queue) > 0 {
		e.o.Wake()
	}
	for _, tr := range trs {
		e.o.Logger.Info("transition", "target", next.TargetID, "kind", tr.Kind, "incident", tr.Incident.ID,
			"notifications", countFor(queue, tr), "suppressed", tr.Incident.Suppressed, "maintenance", tr.Incident.InMaintenance)
	}
	return nil
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

func (e *Engine) parentDown(route Route) (string, bool) {
	for _, p := range route.DependsOn {
		if st, ok := e.State(p); ok && st.Status == StatusDown {
			return p, true
		}
	}
	return "", false
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
		subject, slot = targetID, strconv.FormatInt(tr.At.Unix(), 10)
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
				StartedAt: tr.Incident.Start,
				Duration:  tr.Duration,
				Link:      link,
				To:        rcpt,
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

// address is the recipient's address on a channel, "" if it has none.
// keyAddress is addr as a notification key holds it: a webhook's URL is a
// credential, so the key (which logs and listings show) holds its hash.
func keyAddress(channel, addr string) string {
	if channel != ChannelWebhook {
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
	return ""
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
