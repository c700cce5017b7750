package statuspage

import (
	"context"
	"sync"
	"time"

	"github.com/upwatch/upwatch/sla/slainput"
	"github.com/upwatch/upwatch/tsdb"
)

// Uptime bars read a whole day of hourly rollups per target and day; a
// 90-day page of 50 targets is 108,000 rollup rows (about 200 ms of CPU on
// the embedded store). Days that are over change only when late samples
// arrive (an agent's spool), so their sums are kept and only recent days
// are read on each render: those of the last recentDays for settledTTL,
// older ones for oldTTL, each day's expiry staggered by its date so that
// after the first render the old days are read again a few at a time,
// not all in the same hour.
const (
	// settleAfter is how long after a day ends its sums are first kept.
	settleAfter = time.Hour
	// settledTTL is how long kept sums of recent days are used: late
	// samples show within it.
	settledTTL = time.Hour
	// recentDays are the days (counted back from now) kept for settledTTL.
	recentDays = 3
	// oldTTL is the longest older days' sums are kept (less their stagger).
	oldTTL = 24 * time.Hour
	// maxSettled bounds the kept sums (target, day); when full it starts over.
	maxSettled = 200_000
)

// keepFor is how long the sums of day, read at now, are kept.
func keepFor(day, now time.Time) time.Duration {
	if now.Sub(day) < recentDays*24*time.Hour {
		return settledTTL
	}
	// Staggered over oldTTL by the day's number, never below settledTTL.
	stagger := time.Duration(day.Unix()/86400%24) * time.Hour
	return max(oldTTL-stagger, settledTTL)
}

// settledTotals is a slainput.Samples that keeps the rollup totals of
// whole settled UTC days by target; other ranges go to the store.
type settledTotals struct {
	store slainput.Samples
	now   func() time.Time

	mu   sync.Mutex
	kept map[dayKey]keptTotal
}

type dayKey struct {
	id  string
	day int64 // Unix seconds of the day's start
}

type keptTotal struct {
	total   tsdb.RollupTotal
	expires time.Time
}

func newSettledTotals(s slainput.Samples, now func() time.Time) *settledTotals {
	return &settledTotals{store: s, now: now, kept: map[dayKey]keptTotal{}}
}

func (c *settledTotals) Samples(ctx context.Context, q tsdb.SampleQuery) (tsdb.SamplePage, error) {
	return c.store.Samples(ctx, q)
}

func (c *settledTotals) RollupTotals(ctx context.Context, ids []string, from, to time.Time) (map[string]tsdb.RollupTotal, error) {
	now := c.now()
	day := from.UTC().Truncate(24 * time.Hour)
	if !from.Equal(day) || !to.Equal(day.Add(24*time.Hour)) || now.Before(to.Add(settleAfter)) {
		return c.store.RollupTotals(ctx, ids, from, to)
	}
	out := make(map[string]tsdb.RollupTotal, len(ids))
	var missing []string
	c.mu.Lock()
	for _, id := range ids {
		if k, ok := c.kept[dayKey{id, day.Unix()}]; ok && now.Before(k.expires) {
			out[id] = k.total
		} else {
			missing = append(missing, id)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	got, err := c.store.RollupTotals(ctx, missing, from, to)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.kept)+len(missing) > maxSettled {
		clear(c.kept)
	}
	for _, id := range missing {
		out[id] = got[id]
		c.kept[dayKey{id, day.Unix()}] = keptTotal{total: got[id], expires: now.Add(keepFor(day, now))}
	}
	return out, nil
}
