package alerting_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/lease"
)

// A server taking over alert evaluation loads what the previous one
// committed: the open incident carries on, its UP is told once, and the
// DOWN is not told again.
func TestEngineLoadTakesOverCommittedState(t *testing.T) {
	s := openStore(t, "")
	routes := map[string]alerting.Route{"web": route("web")}
	first := newEngine(t, s, routes)
	standby := newEngine(t, s, routes) // built before the first one commits anything
	next := feed(t, first, "web", t0, "..xxx")
	require.Equal(t, map[string]int{"down/email": 2, "down/sms": 1}, kinds(queued(t, s)))

	require.NoError(t, standby.Load(context.Background()))
	st, ok := standby.State("web")
	require.True(t, ok)
	require.Equal(t, alerting.StatusDown, st.Status)
	next = feed(t, standby, "web", next, "xxx")
	require.Equal(t, map[string]int{"down/email": 2, "down/sms": 1}, kinds(queued(t, s)), "no second DOWN")
	feed(t, standby, "web", next, "..")
	require.Equal(t, map[string]int{"down/email": 2, "down/sms": 1, "up/email": 2, "up/sms": 1}, kinds(queued(t, s)))
}

// fencedStore refuses every commit as a deposed server's store does.
type fencedStore struct {
	alerting.StateStore
	calls int
}

func (f *fencedStore) CommitBatch(context.Context, []alerting.Commit) error {
	f.calls++
	return lease.ErrFenced
}

// A batch the store refused because this server lost the lease is not
// retried commit by commit: every one would be refused too. The states do
// not advance.
func TestEngineFencedBatchNotSplit(t *testing.T) {
	fs := &fencedStore{StateStore: openStore(t, "")}
	routes := map[string]alerting.Route{"a": route("a"), "b": route("b"), "c": route("c")}
	e := newEngine(t, fs, routes)
	for id := range routes {
		feed(t, e, id, t0, ".") // nothing to commit yet
	}
	e.Start()
	for id := range routes {
		feed(t, e, id, t0.Add(10*60e9), "x") // a failure run starts: each commits
	}
	require.NoError(t, e.Stop(context.Background()))
	require.LessOrEqual(t, fs.calls, 3, "batches: not split into single commits")
	for id := range routes {
		st, _ := e.State(id)
		require.Zero(t, st.ConsecutiveFailures, "the refused commit did not advance %s", id)
	}
}
