package schedule

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The entry heap under random pushes, removals and changed next runs
// always yields the earliest entry first and keeps each entry's index.
func TestEntryHeapOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Unix(1_700_000_000, 0)
	var h entryHeap
	live := map[*entry]bool{}
	at := func() time.Time { return base.Add(time.Duration(rng.IntN(1000)) * time.Millisecond) }
	for range 5000 {
		switch op := rng.IntN(10); {
		case op < 5 || len(h) == 0:
			e := &entry{next: at()}
			h.push(e)
			live[e] = true
		case op < 7:
			e := h[rng.IntN(len(h))].e
			h.remove(e.index)
			require.Equal(t, -1, e.index)
			delete(live, e)
		case op < 9:
			e := h[rng.IntN(len(h))].e
			e.next = at()
			h.fix(e.index)
		default:
			for _, s := range h {
				s.e.next = at()
			}
			h.init()
		}
		require.Len(t, h, len(live))
		for i, s := range h {
			if s.e.index != i || s.at != s.e.next.UnixNano() || (i > 0 && h[(i-1)/2].at > s.at) {
				t.Fatalf("slot %d: index %d, key %d for next %d, parent key %d", i, s.e.index, s.at, s.e.next.UnixNano(), h[max(i-1, 0)/2].at)
			}
		}
	}
	// Draining gives every live entry, earliest first.
	var got []int64
	for len(h) > 0 {
		got = append(got, h[0].at)
		h.remove(0)
	}
	require.Len(t, got, len(live))
	require.True(t, slices.IsSorted(got))
}
