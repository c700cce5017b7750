// Package registrytest is the contract suite every registry store passes. A
// backend's test calls Run with a function that opens a fresh, empty store
// and, so that the restart and concurrent-dispatcher tests run, WithReopen:
//
//	func TestContract(t *testing.T) {
//		registrytest.Run(t, openEmpty, registrytest.WithReopen(openAgain))
//	}
//
// The suite passes every time explicitly and never sleeps. Stores may return
// times in any location: the suite compares instants.
package registrytest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/registry"
)

// T0 is the base time of the suite's data, in UTC.
var T0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

// Store is what this suite runs against: the alert engine's and the
// dispatcher's seams plus the listings, as every registry backend provides
// them. It is declared here, by the suite, from the small interfaces.
type Store interface {
	alerting.StateStore
	alerting.Outbox
	// Commit is CommitBatch of one commit.
	Commit(ctx context.Context, st alerting.State, incidents []alerting.Incident, queue []alerting.Notification) error
	// Incidents lists the incidents matching q, newest first.
	Incidents(ctx context.Context, q registry.IncidentQuery) ([]alerting.Incident, error)
	// Notifications lists the outbox entries matching q, newest first.
	Notifications(ctx context.Context, q registry.NotificationQuery) ([]alerting.Notification, error)
	Ping(ctx context.Context) error
	Close() error
}

// Option adjusts Run.
type Option func(*suite)

// WithReopen gives the suite a way to open a second, independent handle on
// the database behind s, as another process (or a restarted one) would. The
// suite closes what reopen returns. Without it the restart and
// concurrent-claimer tests are skipped.
func WithReopen(reopen func(t *testing.T, s Store) Store) Option {
	return func(su *suite) { su.reopen = reopen }
}

type suite struct {
	open   func(t *testing.T) Store
	reopen func(t *testing.T, s Store) Store
}

// Run runs the contract suite. open must return a new, empty store; Run
// closes it when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) Store, opts ...Option) {
	su := &suite{open: open}
	for _, o := range opts {
		o(su)
	}
	tests := []struct {
		name   string
		fn     func(t *testing.T, su *suite, s Store)
		reopen bool
	}{
		{"StateRoundTrip", testStateRoundTrip, false},
		{"CommitRejectsBadInput", testCommitValidation, false},
		{"CommitIsIdempotent", testCommitIdempotent, false},
		{"CommitBatchAllOrNothing", testCommitBatch, false},
		{"CommitBatchesOfEverySize", testCommitBatchSizes, false},
		{"IncidentUpsertOpenThenClosed", testIncidentUpsert, false},
		{"IncidentQuery", testIncidentQuery, false},
		{"IncidentLocations", testIncidentLocations, false},
		{"LocationEvents", testLocationEvents, false},
		{"ClaimOrderLimitAndDueTime", testClaimOrder, false},
		{"ClaimLeaseExpiry", testLeaseExpiry, false},
		{"ClaimRejectsBadLease", testClaimValidation, false},
		{"SettleTransitions", testSettle, false},
		{"SettleUnknownAndFinal", testSettleErrors, false},
		{"DeferGivesTheAttemptBack", testDefer, false},
		{"Pending", testPending, false},
		{"StatusOfOneNotification", testStatus, false},
		{"NotificationQuery", testNotificationQuery, false},
		{"Ping", testPing, false},
		{"RestartKeepsEverything", testRestart, true},
		{"ConcurrentClaimersNeverDoubleClaim", testConcurrentClaimers, true},
		{"TenantsAndKeys", testTenantsAndKeys, false},
		{"AuditLog", testAuditLog, false},
		{"TargetsAreTenantScoped", testTargets, false},
		{"ObjectsAreTenantScoped", testObjects, false},
		{"ReportKeys", testReportKeys, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.reopen && su.reopen == nil {
				t.Skip("the backend gave no WithReopen")
			}
			s := su.open(t)
			t.Cleanup(func() { _ = s.Close() })
			tc.fn(t, su, s)
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// incident returns a closed (end non-zero) or open incident.
func incident(target string, start, end time.Time) alerting.Incident {
	return alerting.Incident{
		ID:       alerting.IncidentID(target, start),
		TargetID: target,
		Start:    start,
		End:      end,
		Cause:    "timeout: no answer in 10s",
	}
}

// note returns a pending notification created at created, due at once.
func note(key, incidentID string, created time.Time) alerting.Notification {
	return alerting.Notification{
		Key:     key,
		Channel: alerting.ChannelEmail,
		Message: notify.Message{
			Key:        key,
			Kind:       notify.KindDown,
			IncidentID: incidentID,
			TargetID:   "web",
			TargetName: "Web site",
			TargetURL:  "https://example.com/",
			Cause:      "timeout: no answer in 10s",
			StartedAt:  T0,
			Duration:   90 * time.Second,
			Link:       "https://upwatch.example/incidents/" + incidentID,
			Subject:    "DOWN: Web site",
			Text:       "Web site is down.",
			HTML:       "<p>Web site is down.</p>",
			To:         notify.Recipient{Name: "Ann", Email: "ann@example.com", Phone: "+15550100"},
		},
		CreatedAt: created,
	}
}

// commitNotes queues ns under a throwaway state.
func commitNotes(t *testing.T, s Store, ns ...alerting.Notification) {
	t.Helper()
	require.NoError(t, s.Commit(ctx(t), alerting.NewState("web"), nil, ns))
}

func utcIncident(i alerting.Incident) alerting.Incident {
	i.Start, i.End = utc(i.Start), utc(i.End)
	if i.Locations != nil {
		ls := make([]alerting.IncidentLocation, len(i.Locations))
		for j, l := range i.Locations {
			l.FirstFailure, l.LastFailure = utc(l.FirstFailure), utc(l.LastFailure)
			ls[j] = l
		}
		i.Locations = ls
	}
	return i
}

func utcIncidents(is []alerting.Incident) []alerting.Incident {
	out := make([]alerting.Incident, len(is))
	for j, i := range is {
		out[j] = utcIncident(i)
	}
	return out
}

func utcNote(n alerting.Notification) alerting.Notification {
	n.NextAttempt, n.CreatedAt, n.SentAt = utc(n.NextAttempt), utc(n.CreatedAt), utc(n.SentAt)
	n.Message.StartedAt = utc(n.Message.StartedAt)
	return n
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func keys(ns []alerting.Notification) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Key
	}
	return out
}

func ids(is []alerting.Incident) []string {
	out := make([]string, len(is))
	for i, inc := range is {
		out[i] = inc.ID
	}
	return out
}

// get returns the one stored notification with key.
func get(t *testing.T, s Store, key string) alerting.Notification {
	t.Helper()
	all, err := s.Notifications(ctx(t), registry.NotificationQuery{Limit: registry.MaxLimit})
	require.NoError(t, err)
	for _, n := range all {
		if n.Key == key {
			return utcNote(n)
		}
	}
	t.Fatalf("notification %q not stored", key)
	return alerting.Notification{}
}

func testStateRoundTrip(t *testing.T, _ *suite, s Store) {
	got, err := s.LoadStates(ctx(t))
	require.NoError(t, err)
	require.Empty(t, got)

	open := incident("web", T0, time.Time{})
	open.Suppressed, open.SuppressedReason, open.InMaintenance = true, "parent gateway down", true
	down := alerting.State{
		TargetID:             "web",
		Status:               alerting.StatusDown,
		Since:                T0,
		ConsecutiveFailures:  4,
		ConsecutiveSuccesses: 0,
		RunStart:             T0,
		RunCause:             "timeout: no answer in 10s",
		LastCheck:            T0.Add(3 * time.Minute),
		Incident:             &open,
		Degraded:             true,
		SlowChecks:           2,
		DegradedSince:        T0.Add(-time.Hour),
		TLSWarnedExpiry:      T0.Add(20 * 24 * time.Hour),
		LastNotifiedAt:       T0.Add(2 * time.Minute),
		Escalated:            true,
	}
	up := alerting.State{TargetID: "api", Status: alerting.StatusUp, Since: T0.Add(-24 * time.Hour),
		ConsecutiveSuccesses: 7, LastCheck: T0}
	require.NoError(t, s.Commit(ctx(t), down, []alerting.Incident{open}, nil))
	require.NoError(t, s.Commit(ctx(t), up, nil, nil))

	got, err = s.LoadStates(ctx(t))
	require.NoError(t, err)
	require.Len(t, got, 2)
	requireState(t, down, got["web"])
	requireState(t, up, got["api"])

	// Recovery: the incident pointer goes away and the state is replaced.
	recovered := down
	recovered.Status, recovered.Since, recovered.Incident = alerting.StatusUp, T0.Add(10*time.Minute), nil
	recovered.ConsecutiveFailures, recovered.ConsecutiveSuccesses = 0, 2
	require.NoError(t, s.Commit(ctx(t), recovered, nil, nil))
	got, err = s.LoadStates(ctx(t))
	require.NoError(t, err)
	require.Len(t, got, 2)
	requireState(t, recovered, got["web"])
	require.Nil(t, got["web"].Incident)
}

// requireState compares states as instants.
func requireState(t *testing.T, want, got alerting.State) {
	t.Helper()
	norm := func(s alerting.State) alerting.State {
		s.Since, s.RunStart, s.LastCheck = utc(s.Since), utc(s.RunStart), utc(s.LastCheck)
		s.DegradedSince, s.TLSWarnedExpiry, s.LastNotifiedAt = utc(s.DegradedSince), utc(s.TLSWarnedExpiry), utc(s.LastNotifiedAt)
		if s.Incident != nil {
			inc := utcIncident(*s.Incident)
			s.Incident = &inc
		}
		return s
	}
	require.Equal(t, norm(want), norm(got))
}

func testCommitValidation(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	require.Error(t, s.Commit(c, alerting.State{}, nil, nil), "no target ID")
	require.Error(t, s.Commit(c, alerting.NewState("web"), []alerting.Incident{{TargetID: "web"}}, nil), "incident without ID")
	require.Error(t, s.Commit(c, alerting.NewState("web"), nil, []alerting.Notification{{Channel: "email"}}), "notification without key")
	bad := note("k", "i", T0)
	bad.Status = "bogus"
	require.Error(t, s.Commit(c, alerting.NewState("web"), nil, []alerting.Notification{bad}), "unknown status")

	// A rejected commit stores nothing: not even the valid parts.
	good := note("good", "i", T0)
	require.Error(t, s.Commit(c, alerting.NewState("web"), nil, []alerting.Notification{good, {Key: "x"}}))
	states, err := s.LoadStates(c)
	require.NoError(t, err)
	require.Empty(t, states)
	n, _, err := s.Pending(c)
	require.NoError(t, err)
	require.Zero(t, n)
}

// testCommitBatch stores many targets' commits in one call: more states
// than one statement takes, a target twice (the later wins), incidents and
// notifications (a key already queued, or queued earlier in the batch, is
// skipped); a batch with one malformed commit stores nothing.
func testCommitBatch(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	require.NoError(t, s.CommitBatch(c, nil))
	commitNotes(t, s, note("old", "i", T0))

	const n = 2500
	var batch []alerting.Commit
	for i := range n {
		id := fmt.Sprintf("t%04d", i)
		batch = append(batch, alerting.Commit{State: alerting.State{TargetID: id, Status: alerting.StatusUp, ConsecutiveSuccesses: i}})
	}
	inc := incident("web", T0, time.Time{})
	down := alerting.State{TargetID: "web", Status: alerting.StatusDown, Since: T0, ConsecutiveFailures: 3, Incident: &inc}
	first, dup, old := note("web/down", inc.ID, T0), note("web/down", inc.ID, T0), note("old", "i", T0)
	dup.Message.Subject, old.Message.Subject = "second copy", "second copy"
	batch = append(batch,
		alerting.Commit{State: alerting.NewState("web")},
		alerting.Commit{State: down, Incidents: []alerting.Incident{inc}, Queue: []alerting.Notification{first, old}},
		alerting.Commit{State: alerting.State{TargetID: "t0007", Status: alerting.StatusDown}, Queue: []alerting.Notification{dup}},
	)
	require.NoError(t, s.CommitBatch(c, batch))

	states, err := s.LoadStates(c)
	require.NoError(t, err)
	require.Len(t, states, n+1)
	require.Equal(t, 42, states["t0042"].ConsecutiveSuccesses)
	require.Equal(t, alerting.StatusDown, states["t0007"].Status, "the later commit of a target wins")
	requireState(t, down, states["web"])
	incs, err := s.Incidents(c, registry.IncidentQuery{TargetID: "web"})
	require.NoError(t, err)
	require.Equal(t, []alerting.Incident{utcIncident(inc)}, utcIncidents(incs))
	require.Equal(t, "DOWN: Web site", get(t, s, "web/down").Message.Subject, "the first of two with one key is queued")
	require.Equal(t, "DOWN: Web site", get(t, s, "old").Message.Subject, "a key already queued is skipped")

	// All or nothing: one malformed commit, named, rejects the batch.
	bad := []alerting.Commit{
		{State: alerting.State{TargetID: "new1", Status: alerting.StatusDown}, Queue: []alerting.Notification{note("new1/down", "j", T0)}},
		{State: alerting.State{}},
	}
	require.ErrorContains(t, s.CommitBatch(c, bad), "commit 1")
	states, err = s.LoadStates(c)
	require.NoError(t, err)
	require.NotContains(t, states, "new1")
	all, err := s.Notifications(c, registry.NotificationQuery{Limit: registry.MaxLimit})
	require.NoError(t, err)
	require.Len(t, all, 2)
}

// testCommitBatchSizes commits batches of sizes that cut differently into
// the store's statements, one after another, then every state again: each
// target ends with its newest state, and no other target's.
func testCommitBatchSizes(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	want := map[string]alerting.State{}
	for round := range 2 {
		next := 0
		for _, size := range []int{1, 9, 10, 11, 99, 100, 101, 235} {
			batch := make([]alerting.Commit, size)
			for i := range batch {
				id := fmt.Sprintf("s%04d", next)
				next++
				st := alerting.State{TargetID: id, Status: alerting.StatusUp, Since: T0.Add(time.Duration(next) * time.Second),
					ConsecutiveSuccesses: 2 + round, LastCheck: T0.Add(time.Duration(round) * time.Minute), Location: "local"}
				batch[i], want[id] = alerting.Commit{State: st}, st
			}
			require.NoError(t, s.CommitBatch(c, batch), "round %d, batch of %d", round, size)
		}
	}
	got, err := s.LoadStates(c)
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for id, st := range want {
		requireState(t, st, got[id])
	}
}

func testCommitIdempotent(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	inc := incident("web", T0, time.Time{})
	st := alerting.State{TargetID: "web", Status: alerting.StatusDown, Since: T0, Incident: &inc}
	queue := []alerting.Notification{
		note(inc.ID+"/down/ann/email", inc.ID, T0.Add(time.Second)),
		note(inc.ID+"/down/ann/sms", inc.ID, T0.Add(time.Second)),
	}
	queue[1].Channel = alerting.ChannelSMS
	require.NoError(t, s.Commit(c, st, []alerting.Incident{inc}, queue))

	// The same transition again, e.g. replayed after a restart, with a
	// message rendered differently: nothing new is queued and the first
	// rendering stays.
	again := append([]alerting.Notification(nil), queue...)
	again[0].Message.Subject = "changed"
	require.NoError(t, s.Commit(c, st, []alerting.Incident{inc}, again))

	all, err := s.Notifications(c, registry.NotificationQuery{})
	require.NoError(t, err)
	require.Len(t, all, 2)
	for _, n := range all {
		n = utcNote(n)
		want := queue[0]
		if n.Key == queue[1].Key {
			want = queue[1]
		}
		want.Status = alerting.NotificationPending
		require.Equal(t, want, n)
	}

	// Even once sent, the key is not queued again.
	claimed, err := s.Claim(c, T0.Add(time.Minute), time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	require.NoError(t, s.Settle(c, queue[0].Key, alerting.NotificationSent, time.Time{}, "", T0.Add(time.Minute)))
	require.NoError(t, s.Commit(c, st, nil, queue))
	got := get(t, s, queue[0].Key)
	require.Equal(t, alerting.NotificationSent, got.Status)
	require.Equal(t, 1, got.Attempts)
	n, _, err := s.Pending(c)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	incs, err := s.Incidents(c, registry.IncidentQuery{})
	require.NoError(t, err)
	require.Len(t, incs, 1)

	// A notification queued without a creation time gets one.
	require.NoError(t, s.Commit(c, st, nil, []alerting.Notification{note("undated", inc.ID, time.Time{})}))
	require.False(t, get(t, s, "undated").CreatedAt.IsZero())
}

func testIncidentUpsert(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	open := incident("web", T0, time.Time{})
	open.Suppressed, open.SuppressedReason = true, "parent gateway down"
	require.NoError(t, s.Commit(c, alerting.NewState("web"), []alerting.Incident{open}, nil))

	got, err := s.Incidents(c, registry.IncidentQuery{OpenOnly: true})
	require.NoError(t, err)
	require.Equal(t, []alerting.Incident{open}, utcIncidents(got))
	require.True(t, got[0].Open())

	closed := open
	closed.End = T0.Add(12*time.Minute + 30*time.Second)
	closed.InMaintenance = true
	require.NoError(t, s.Commit(c, alerting.NewState("web"), []alerting.Incident{closed}, nil))

	got, err = s.Incidents(c, registry.IncidentQuery{OpenOnly: true})
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = s.Incidents(c, registry.IncidentQuery{TargetID: "web"})
	require.NoError(t, err)
	require.Equal(t, []alerting.Incident{closed}, utcIncidents(got))
	require.False(t, got[0].Open())
}

// An incident seen from several locations keeps where and when, through
// its upsert from open to closed.
func testIncidentLocations(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	open := incident("web", T0, time.Time{})
	open.Locations = []alerting.IncidentLocation{
		{Location: "eu-west", FirstFailure: T0, LastFailure: T0.Add(2 * time.Minute)},
		{Location: "us-east", FirstFailure: T0.Add(time.Minute), LastFailure: T0.Add(2 * time.Minute)},
	}
	require.NoError(t, s.Commit(c, alerting.NewState("web"), []alerting.Incident{open}, nil))
	got, err := s.Incidents(c, registry.IncidentQuery{TargetID: "web"})
	require.NoError(t, err)
	require.Equal(t, []alerting.Incident{open}, utcIncidents(got))

	closed := open
	closed.End = T0.Add(5 * time.Minute)
	closed.Locations = []alerting.IncidentLocation{open.Locations[0], open.Locations[1]}
	closed.Locations[1].LastFailure = T0.Add(4 * time.Minute)
	require.NoError(t, s.Commit(c, alerting.NewState("web"), []alerting.Incident{closed}, nil))
	got, err = s.Incidents(c, registry.IncidentQuery{TargetID: "web"})
	require.NoError(t, err)
	require.Equal(t, []alerting.Incident{closed}, utcIncidents(got))

	// One location: none stored, none read.
	single := incident("api", T0, time.Time{})
	require.NoError(t, s.Commit(c, alerting.NewState("api"), []alerting.Incident{single}, nil))
	got, err = s.Incidents(c, registry.IncidentQuery{TargetID: "api"})
	require.NoError(t, err)
	require.Nil(t, got[0].Locations)
}

// LocationEventLog is where the alert engine's location events are kept.
type LocationEventLog interface {
	RecordLocationEvent(ctx context.Context, ev alerting.LocationEvent) error
	LocationEvents(ctx context.Context, limit int) ([]alerting.LocationEvent, error)
}

func testLocationEvents(t *testing.T, _ *suite, s Store) {
	var log LocationEventLog
	if !has(s, &log) {
		t.Skip("the backend keeps no location events")
	}
	c := ctx(t)
	evs := []alerting.LocationEvent{
		{Kind: alerting.LocationUnavailable, Location: "eu-west", At: T0, Detail: "no result for 3m"},
		{Kind: alerting.LocationSuspect, Location: "us-east", At: T0.Add(time.Minute), Detail: "6 of 6 targets"},
		{Kind: alerting.LocationAvailable, Location: "eu-west", At: T0.Add(2 * time.Minute), Detail: "results arrive again"},
	}
	for _, ev := range evs {
		require.NoError(t, log.RecordLocationEvent(c, ev))
	}
	require.Error(t, log.RecordLocationEvent(c, alerting.LocationEvent{Location: "x"}), "an event has a kind")
	got, err := log.LocationEvents(c, 0)
	require.NoError(t, err)
	for i := range got {
		got[i].At = utc(got[i].At)
	}
	require.Equal(t, []alerting.LocationEvent{evs[2], evs[1], evs[0]}, got, "newest first")
	got, err = log.LocationEvents(c, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
}

func testIncidentQuery(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	h := time.Hour
	a1 := incident("a", T0, T0.Add(h))            // [0h, 1h)
	a2 := incident("a", T0.Add(2*h), T0.Add(3*h)) // [2h, 3h)
	a3 := incident("a", T0.Add(5*h), time.Time{}) // [5h, open)
	b1 := incident("b", T0.Add(h/2), T0.Add(4*h)) // [0.5h, 4h)
	require.NoError(t, s.Commit(c, alerting.NewState("a"), []alerting.Incident{a1, a2, a3}, nil))
	require.NoError(t, s.Commit(c, alerting.NewState("b"), []alerting.Incident{b1}, nil))

	query := func(q registry.IncidentQuery) []string {
		t.Helper()
		got, err := s.Incidents(c, q)
		require.NoError(t, err)
		return ids(got)
	}
	// Newest start first.
	require.Equal(t, ids([]alerting.Incident{a3, a2, b1, a1}), query(registry.IncidentQuery{}))
	require.Equal(t, ids([]alerting.Incident{a3, a2, a1}), query(registry.IncidentQuery{TargetID: "a"}))
	require.Empty(t, query(registry.IncidentQuery{TargetID: "nobody"}))
	require.Equal(t, ids([]alerting.Incident{a3}), query(registry.IncidentQuery{OpenOnly: true}))
	require.Equal(t, ids([]alerting.Incident{a3, a2}), query(registry.IncidentQuery{Limit: 2}))

	// Overlap with [From, To), half-open on both incidents and window.
	require.Equal(t, ids([]alerting.Incident{a2, b1}), query(registry.IncidentQuery{From: T0.Add(h), To: T0.Add(2*h + 1)}),
		"a1 ends at From; a2 starts inside")
	require.Equal(t, ids([]alerting.Incident{b1, a1}), query(registry.IncidentQuery{From: T0, To: T0.Add(2 * h)}),
		"a2 starts at To")
	require.Equal(t, ids([]alerting.Incident{a3}), query(registry.IncidentQuery{From: T0.Add(100 * h), To: T0.Add(101 * h)}),
		"an open incident overlaps everything after its start")
	require.Empty(t, query(registry.IncidentQuery{From: T0.Add(-2 * h), To: T0}))
	require.Equal(t, ids([]alerting.Incident{a3, a2, b1}), query(registry.IncidentQuery{From: T0.Add(h)}), "To unbounded")
	require.Equal(t, ids([]alerting.Incident{b1, a1}), query(registry.IncidentQuery{To: T0.Add(2 * h)}), "From unbounded")
	require.Equal(t, ids([]alerting.Incident{a3}), query(registry.IncidentQuery{TargetID: "a", OpenOnly: true, From: T0, To: T0.Add(6 * h)}))
	require.Empty(t, query(registry.IncidentQuery{OpenOnly: true, To: T0.Add(5 * h)}))

	_, err := s.Incidents(c, registry.IncidentQuery{From: T0, To: T0})
	require.Error(t, err, "empty window")
}

func testClaimOrder(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	now := T0.Add(time.Hour)
	var ns []alerting.Notification
	for i := range 6 {
		ns = append(ns, note(fmt.Sprintf("k%d", i), "inc", T0.Add(time.Duration(i)*time.Second)))
	}
	ns[3].NextAttempt = now.Add(time.Minute) // not due yet
	// Queue them out of order, over two commits.
	commitNotes(t, s, ns[4], ns[1], ns[5])
	commitNotes(t, s, ns[3], ns[0], ns[2])

	got, err := s.Claim(c, now, 10*time.Minute, 2)
	require.NoError(t, err)
	require.Equal(t, []string{"k0", "k1"}, keys(got), "oldest first, up to limit")
	for _, n := range got {
		require.Equal(t, 1, n.Attempts)
		require.Equal(t, alerting.NotificationPending, n.Status)
		require.Equal(t, ns[0].Message.Subject, n.Message.Subject)
	}
	got, err = s.Claim(c, now, 10*time.Minute, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"k2", "k4", "k5"}, keys(got), "leased ones are skipped, k3 is not due")
	got, err = s.Claim(c, now, 10*time.Minute, 10)
	require.NoError(t, err)
	require.Empty(t, got)

	got, err = s.Claim(c, now.Add(time.Minute), 10*time.Minute, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"k3"}, keys(got), "due exactly at next_attempt")
	require.Equal(t, 1, got[0].Attempts)

	got, err = s.Claim(c, now, 10*time.Minute, 0)
	require.NoError(t, err)
	require.Empty(t, got, "limit 0 claims nothing")
}

func testLeaseExpiry(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	commitNotes(t, s, note("k", "inc", T0))
	lease := 30 * time.Second

	got, err := s.Claim(c, T0, lease, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"k"}, keys(got))

	got, err = s.Claim(c, T0.Add(lease-time.Nanosecond), lease, 10)
	require.NoError(t, err)
	require.Empty(t, got, "still leased")

	// The claimer died without settling: once the lease ends, another gets it.
	got, err = s.Claim(c, T0.Add(lease), lease, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"k"}, keys(got))
	require.Equal(t, 2, got[0].Attempts)

	got, err = s.Claim(c, T0.Add(lease+time.Second), lease, 10)
	require.NoError(t, err)
	require.Empty(t, got, "the new lease runs from the second claim")
	n, _, err := s.Pending(c)
	require.NoError(t, err)
	require.Equal(t, 1, n, "a leased notification is still pending")
}

func testClaimValidation(t *testing.T, _ *suite, s Store) {
	commitNotes(t, s, note("k", "inc", T0))
	_, err := s.Claim(ctx(t), T0, 0, 10)
	require.Error(t, err)
	_, err = s.Claim(ctx(t), T0, -time.Second, 10)
	require.Error(t, err)
	got, err := s.Claim(ctx(t), T0, time.Minute, 10)
	require.NoError(t, err)
	require.Equal(t, 1, len(got), "a rejected claim leased nothing")
}

func testSettle(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	commitNotes(t, s, note("sent", "inc", T0), note("failed", "inc", T0.Add(1)), note("retry", "inc", T0.Add(2)))
	now := T0.Add(time.Minute)
	lease := time.Hour
	got, err := s.Claim(c, now, lease, 10)
	require.NoError(t, err)
	require.Len(t, got, 3)

	sentAt := now.Add(time.Second)
	require.NoError(t, s.Settle(c, "sent", alerting.NotificationSent, time.Time{}, "", sentAt))
	require.NoError(t, s.Settle(c, "failed", alerting.NotificationFailed, time.Time{}, "400 Bad Request: invalid email", now.Add(time.Second)))
	long := strings.Repeat("é", registry.MaxLastError) // 2 bytes each
	next := now.Add(30 * time.Second)
	require.NoError(t, s.Settle(c, "retry", alerting.NotificationPending, next, long, now.Add(time.Second)))

	n := get(t, s, "sent")
	require.Equal(t, alerting.NotificationSent, n.Status)
	require.Equal(t, sentAt, n.SentAt)
	require.Equal(t, 1, n.Attempts)

	n = get(t, s, "failed")
	require.Equal(t, alerting.NotificationFailed, n.Status)
	require.Equal(t, "400 Bad Request: invalid email", n.LastError)
	require.True(t, n.SentAt.IsZero())

	n = get(t, s, "retry")
	require.Equal(t, alerting.NotificationPending, n.Status)
	require.Equal(t, next, n.NextAttempt)
	require.LessOrEqual(t, len(n.LastError), registry.MaxLastError)
	require.Greater(t, len(n.LastError), registry.MaxLastError-4)
	require.True(t, strings.HasPrefix(long, n.LastError), "cut, not mangled")

	// Settling ended the lease: the retry is claimable from next on, long
	// before the hour-long lease would have run out; sent and failed never.
	got, err = s.Claim(c, next.Add(-time.Nanosecond), lease, 10)
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = s.Claim(c, next, lease, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"retry"}, keys(got))
	require.Equal(t, 2, got[0].Attempts)
	require.Equal(t, n.LastError, got[0].LastError)

	require.NoError(t, s.Settle(c, "retry", alerting.NotificationSent, time.Time{}, "", next.Add(time.Second)))
	require.Equal(t, "", get(t, s, "retry").LastError, "a success clears the last error")
	got, err = s.Claim(c, next.Add(24*time.Hour), lease, 10)
	require.NoError(t, err)
	require.Empty(t, got)
}

// A deferred notification (its channel paused) is due again at next with
// the attempt Claim counted given back; a final one is left alone.
func testDefer(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	commitNotes(t, s, note("paused", "inc", T0), note("done", "inc", T0.Add(1)))
	now := T0.Add(time.Minute)
	got, err := s.Claim(c, now, time.Hour, 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.NoError(t, s.Settle(c, "done", alerting.NotificationSent, time.Time{}, "", now))

	next := now.Add(30 * time.Second)
	require.NoError(t, s.Defer(c, "paused", next))
	require.NoError(t, s.Defer(c, "done", next), "deferring a settled notification changes nothing")
	require.Equal(t, alerting.NotificationSent, get(t, s, "done").Status)
	n := get(t, s, "paused")
	require.Equal(t, 0, n.Attempts, "nothing was tried")
	require.Equal(t, next, n.NextAttempt)

	got, err = s.Claim(c, next.Add(-time.Nanosecond), time.Hour, 10)
	require.NoError(t, err)
	require.Empty(t, got, "not due before next")
	got, err = s.Claim(c, next, time.Hour, 10)
	require.NoError(t, err, "the lease ended with the deferral")
	require.Equal(t, []string{"paused"}, keys(got))
	require.Equal(t, 1, got[0].Attempts)
}

func testSettleErrors(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	err := s.Settle(c, "nope", alerting.NotificationSent, time.Time{}, "", T0)
	require.ErrorIs(t, err, registry.ErrUnknownKey)
	require.Contains(t, err.Error(), "nope")

	commitNotes(t, s, note("k", "inc", T0))
	require.Error(t, s.Settle(c, "k", "bogus", time.Time{}, "", T0))
	require.NoError(t, s.Settle(c, "k", alerting.NotificationSent, time.Time{}, "", T0.Add(time.Second)))
	// Once final, a repeat is harmless and a change is refused.
	require.NoError(t, s.Settle(c, "k", alerting.NotificationSent, time.Time{}, "", T0.Add(time.Minute)))
	require.ErrorIs(t, s.Settle(c, "k", alerting.NotificationPending, T0, "", T0.Add(time.Minute)), registry.ErrSettled)
	require.ErrorIs(t, s.Settle(c, "k", alerting.NotificationFailed, time.Time{}, "x", T0.Add(time.Minute)), registry.ErrSettled)
	n := get(t, s, "k")
	require.Equal(t, alerting.NotificationSent, n.Status)
	require.Equal(t, T0.Add(time.Second), n.SentAt)
}

func testPending(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	n, oldest, err := s.Pending(c)
	require.NoError(t, err)
	require.Zero(t, n)
	require.True(t, oldest.IsZero())

	commitNotes(t, s, note("b", "inc", T0.Add(2*time.Second)), note("a", "inc", T0.Add(time.Second)), note("c", "inc", T0.Add(3*time.Second)))
	n, oldest, err = s.Pending(c)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.True(t, oldest.Equal(T0.Add(time.Second)), "oldest %s", oldest)

	require.NoError(t, s.Settle(c, "a", alerting.NotificationSent, time.Time{}, "", T0.Add(time.Minute)))
	require.NoError(t, s.Settle(c, "c", alerting.NotificationFailed, time.Time{}, "gone", T0.Add(time.Minute)))
	n, oldest, err = s.Pending(c)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.True(t, oldest.Equal(T0.Add(2*time.Second)), "oldest %s", oldest)
}

func testStatus(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	status, next, err := s.Status(c, "nope")
	require.NoError(t, err)
	require.Empty(t, status, "no such notification")
	require.True(t, next.IsZero())

	commitNotes(t, s, note("a", "inc", T0), note("b", "inc", T0))
	retry := T0.Add(time.Hour)
	require.NoError(t, s.Settle(c, "a", alerting.NotificationPending, retry, "503", T0.Add(time.Second)))
	require.NoError(t, s.Settle(c, "b", alerting.NotificationSent, time.Time{}, "", T0.Add(time.Second)))
	status, next, err = s.Status(c, "a")
	require.NoError(t, err)
	require.Equal(t, alerting.NotificationPending, status)
	require.True(t, next.Equal(retry), "next %s", next)
	status, _, err = s.Status(c, "b")
	require.NoError(t, err)
	require.Equal(t, alerting.NotificationSent, status)
}

func testNotificationQuery(t *testing.T, _ *suite, s Store) {
	c := ctx(t)
	commitNotes(t, s,
		note("i1/down/ann/email", "i1", T0),
		note("i1/up/ann/email", "i1", T0.Add(time.Hour)),
		note("i2/down/ann/email", "i2", T0.Add(2*time.Hour)),
	)
	require.NoError(t, s.Settle(c, "i1/down/ann/email", alerting.NotificationSent, time.Time{}, "", T0.Add(time.Second)))

	query := func(q registry.NotificationQuery) []string {
		t.Helper()
		got, err := s.Notifications(c, q)
		require.NoError(t, err)
		return keys(got)
	}
	require.Equal(t, []string{"i2/down/ann/email", "i1/up/ann/email", "i1/down/ann/email"}, query(registry.NotificationQuery{}), "newest first")
	require.Equal(t, []string{"i1/up/ann/email", "i1/down/ann/email"}, query(registry.NotificationQuery{IncidentID: "i1"}))
	require.Equal(t, []string{"i1/up/ann/email"}, query(registry.NotificationQuery{IncidentID: "i1", Status: alerting.NotificationPending}))
	require.Equal(t, []string{"i1/down/ann/email"}, query(registry.NotificationQuery{Status: alerting.NotificationSent}))
	require.Empty(t, query(registry.NotificationQuery{Status: alerting.NotificationFailed}))
	require.Equal(t, []string{"i2/down/ann/email"}, query(registry.NotificationQuery{Limit: 1}))
	_, err := s.Notifications(c, registry.NotificationQuery{Status: "bogus"})
	require.Error(t, err)
}

func testPing(t *testing.T, _ *suite, s Store) {
	require.NoError(t, s.Ping(ctx(t)))
}

func testRestart(t *testing.T, su *suite, s Store) {
	c := ctx(t)
	inc := incident("web", T0, time.Time{})
	st := alerting.State{TargetID: "web", Status: alerting.StatusDown, Since: T0, LastCheck: T0.Add(time.Minute), Incident: &inc}
	closed := incident("web", T0.Add(-time.Hour), T0.Add(-time.Hour+time.Minute))
	queue := []alerting.Notification{
		note("leased", inc.ID, T0), note("sent", inc.ID, T0.Add(1)), note("waiting", inc.ID, T0.Add(2)),
	}
	require.NoError(t, s.Commit(c, st, []alerting.Incident{closed, inc}, queue))
	now := T0.Add(time.Minute)
	got, err := s.Claim(c, now, 5*time.Minute, 2)
	require.NoError(t, err)
	require.Equal(t, []string{"leased", "sent"}, keys(got))
	require.NoError(t, s.Settle(c, "sent", alerting.NotificationSent, time.Time{}, "", now))
	before, err := s.Notifications(c, registry.NotificationQuery{})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")

	r := su.reopen(t, s)
	t.Cleanup(func() { _ = r.Close() })
	states, err := r.LoadStates(c)
	require.NoError(t, err)
	requireState(t, st, states["web"])
	incs, err := r.Incidents(c, registry.IncidentQuery{})
	require.NoError(t, err)
	require.Equal(t, []alerting.Incident{inc, closed}, utcIncidents(incs))
	after, err := r.Notifications(c, registry.NotificationQuery{})
	require.NoError(t, err)
	require.Len(t, after, len(before))
	for i := range before {
		require.Equal(t, utcNote(before[i]), utcNote(after[i]))
	}

	// The lease taken before the restart still holds; the rest carry on.
	got, err = r.Claim(c, now, time.Hour, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"waiting"}, keys(got))
	got, err = r.Claim(c, now.Add(5*time.Minute), 5*time.Minute, 10)
	require.NoError(t, err)
	require.Equal(t, []string{"leased"}, keys(got))
	require.Equal(t, 2, got[0].Attempts)
	// Replaying the same transition after the restart queues nothing.
	require.NoError(t, r.Commit(c, st, []alerting.Incident{inc}, queue))
	n, _, err := r.Pending(c)
	require.NoError(t, err)
	require.Equal(t, 2, n)
}

// testConcurrentClaimers runs many claimers over two handles on the same
// database (two dispatchers, as two processes would be) and checks that
// every notification is claimed exactly once. The lease outlives the test's
// clock, so a second claim of a key could only be a double claim.
func testConcurrentClaimers(t *testing.T, su *suite, a Store) {
	c := ctx(t)
	b := su.reopen(t, a)
	t.Cleanup(func() { _ = b.Close() })

	const total = 400
	queue := make([]alerting.Notification, total)
	for i := range queue {
		queue[i] = note(fmt.Sprintf("k%04d", i), "inc", T0.Add(time.Duration(i)*time.Millisecond))
	}
	// Queue from both handles at once, with overlapping batches: the
	// duplicates are skipped.
	var wg sync.WaitGroup
	for i, s := range []Store{a, b} {
		wg.Go(func() {
			for lo := i * 50; lo < total; lo += 100 {
				hi := min(lo+100, total)
				assert.NoError(t, s.Commit(c, alerting.NewState(fmt.Sprintf("t%d", lo)), nil, queue[lo:hi]))
			}
		})
	}
	wg.Wait()
	for i := 0; i < total; i += 100 {
		commitNotes(t, a, queue[i:min(i+100, total)]...)
	}
	n, _, err := a.Pending(c)
	require.NoError(t, err)
	require.Equal(t, total, n)

	now := T0.Add(time.Hour)
	var mu sync.Mutex
	claims := make(map[string]int)
	for w := range 16 {
		s := []Store{a, b}[w%2]
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 1))
			for {
				got, err := s.Claim(c, now, 24*time.Hour, 1+rnd.IntN(7))
				if !assert.NoError(t, err) || len(got) == 0 {
					return
				}
				mu.Lock()
				for _, n := range got {
					claims[n.Key]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, claims, total, "every notification claimed")
	for k, times := range claims {
		require.Equal(t, 1, times, "key %s claimed %d times", k, times)
	}
	for _, s := range []Store{a, b} {
		got, err := s.Claim(c, now, time.Minute, total)
		require.NoError(t, err)
		require.Empty(t, got)
	}
}
