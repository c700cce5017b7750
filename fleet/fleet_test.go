package fleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/secret"
)

func keys(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("tk_%06d", i)
	}
	return out
}

// TestOwnerBalance: 10,000 keys over 4 members give each within 10% of
// its fair share.
func TestOwnerBalance(t *testing.T) {
	members := []string{"agent-a", "agent-b", "agent-c", "agent-d"}
	count := map[string]int{}
	for _, k := range keys(10000) {
		count[Owner(k, members)]++
	}
	for _, m := range members {
		require.InDelta(t, 2500, count[m], 250, "member %s", m)
	}
}

// TestOwnerMinimalMovement: when a member leaves only its keys move, and
// when one joins only keys it takes move.
func TestOwnerMinimalMovement(t *testing.T) {
	three := []string{"a", "b", "c"}
	two := []string{"a", "c"}
	four := []string{"a", "b", "c", "d"}
	var moved, joined int
	for _, k := range keys(5000) {
		before := Owner(k, three)
		if after := Owner(k, two); after != before {
			require.Equal(t, "b", before, "key %s moved from %s, which did not leave", k, before)
			moved++
		}
		if after := Owner(k, four); after != before {
			require.Equal(t, "d", after, "key %s moved to %s, not to the new member", k, after)
			joined++
		}
	}
	require.InDelta(t, 5000/3, moved, 200)
	require.InDelta(t, 5000/4, joined, 200)
	require.Equal(t, "", Owner("x", nil))
	require.Equal(t, Owner("x", []string{"b", "a"}), Owner("x", []string{"a", "b"}), "order of members does not matter")
}

func target(id string, locations ...string) prober.Target {
	t := prober.Target{ID: id, Name: id, Kind: "tcp", TCP: &prober.TCPSpec{Address: "127.0.0.1:1"}, Locations: locations}
	t.Normalize()
	return t
}

// TestFleetAssignment: a location's targets are split between its live
// agents, each exactly once; an agent that stops heartbeating loses its
// targets to the other after its TTL.
func TestFleetAssignment(t *testing.T) {
	ctx := t.Context()
	clk := clocktest.NewManual(clocktest.Noon())
	f := New(Options{Store: &MemStore{}, TTL: 10 * time.Second, Now: clk.Now})
	var ts []prober.Target
	for i := range 100 {
		ts = append(ts, target(fmt.Sprintf("t%d", i)))
	}
	ts = append(ts, target("only-us", "us-east"), target("eu-too", "eu-west", "us-east"))
	f.SetTargets(ts)

	_, _, err := f.Assignment(ctx, "a", "eu-west")
	require.ErrorIs(t, err, ErrNotLive)
	require.NoError(t, f.Heartbeat(ctx, Member{ID: "a", Location: "eu-west"}))
	require.NoError(t, f.Heartbeat(ctx, Member{ID: "b", Location: "eu-west"}))
	require.NoError(t, f.Heartbeat(ctx, Member{ID: "u", Location: "us-east"}))

	seen := map[string]string{}
	versions := map[string]string{}
	for _, id := range []string{"a", "b"} {
		a, mine, err := f.Assignment(ctx, id, "eu-west")
		require.NoError(t, err)
		require.NotEmpty(t, mine)
		versions[id] = a.Version
		for _, tg := range mine {
			require.NotContains(t, seen, tg.ID, "target given to two agents")
			seen[tg.ID] = id
		}
	}
	require.Len(t, seen, 101, "every eu-west target once; only-us is not eu-west's")
	require.NotContains(t, seen, "only-us")
	_, us, err := f.Assignment(ctx, "u", "us-east")
	require.NoError(t, err)
	require.Len(t, us, 102)

	// b stops; a heartbeats on and takes everything after b's TTL.
	clk.Advance(6 * time.Second)
	require.NoError(t, f.Heartbeat(ctx, Member{ID: "a", Location: "eu-west"}))
	a, _, changed, err := f.Wait(ctx, "a", "eu-west", versions["a"], time.Millisecond)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, versions["a"], a.Version)
	clk.Advance(5 * time.Second)
	a, mine, changed, err := f.Wait(ctx, "a", "eu-west", versions["a"], time.Second)
	require.NoError(t, err)
	require.True(t, changed)
	require.NotEqual(t, versions["a"], a.Version)
	require.Len(t, mine, 101)
}

// TestWireTarget: a target with credentials survives the trip to an agent.
func TestWireTarget(t *testing.T) {
	tg := prober.Target{ID: "k1", Name: "api", Kind: "http", Interval: 30 * time.Second, Locations: []string{"eu-west"},
		HTTP: &prober.HTTPSpec{URL: "https://example.com/", Headers: map[string]string{"X-A": "b"},
			Auth: &prober.Auth{Type: "basic", Username: "u"}}}
	tg.HTTP.Auth.Password = secret.New("hunter2")
	tg.Normalize()
	w, err := EncodeTarget(tg)
	require.NoError(t, err)
	require.NotContains(t, w.Spec, "hunter2")
	require.Equal(t, map[string]string{"password": "hunter2"}, w.Credentials)
	require.Equal(t, "hunter2", tg.HTTP.Auth.Password.Reveal(), "the original keeps its secret")
	back, err := DecodeTarget(w)
	require.NoError(t, err)
	require.Equal(t, tg.Fingerprint(), back.Fingerprint())
	require.Equal(t, "hunter2", back.HTTP.Auth.Password.Reveal())
	require.Equal(t, 30*time.Second, back.Interval)
}

// TestChanges: an agent that has the version last sent gets only what
// changed; one with any other version gets everything.
func TestChanges(t *testing.T) {
	f := New(Options{Store: &MemStore{}})
	a, b, c := target("a"), target("b"), target("c")
	up, rm, full := f.Changes("ag", "", "v1", []prober.Target{a, b})
	require.True(t, full)
	require.Len(t, up, 2)
	require.Empty(t, rm)

	b2 := b
	b2.Interval = 2 * time.Minute
	up, rm, full = f.Changes("ag", "v1", "v2", []prober.Target{b2, c})
	require.False(t, full)
	require.ElementsMatch(t, []string{"b", "c"}, []string{up[0].ID, up[1].ID}, "b changed, c is new")
	require.Equal(t, []string{"a"}, rm)

	up, _, full = f.Changes("ag", "v1", "v3", []prober.Target{c})
	require.True(t, full, "v1 is not what was sent last")
	require.Len(t, up, 1)
	_, _, full = f.Changes("other", "v3", "v3", []prober.Target{c})
	require.True(t, full, "another agent has no history here")
}
