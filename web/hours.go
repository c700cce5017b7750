package web

import (
	"context"
	"sync"
	"time"

	"github.com/upwatch/upwatch/tsdb"
)

// hourGrace is how long after an hour ends its rollups may still change
// (late samples, an agent's spool); after that they are cached.
const hourGrace = 5 * time.Minute

// hourCache keeps the closed hours of the dashboard's sparklines: each
// poll then reads only the current hour and the 30-day totals, not 24
// hours again. Entries are keyed by target key (never reused, so no
// tenant sees another's) and hours older than a day are dropped.
type hourCache struct {
	mu    sync.Mutex
	hours map[time.Time]*hourEntry
}

type hourEntry struct {
	fetched time.Time
	byKey   map[string]tsdb.Rollup
}

// hourly returns, for each of keys, the rollup of the hour starting at
// hour.
func (c *hourCache) hourly(ctx context.Context, r tsdb.Reader, keys []string, hour, now time.Time) (map[string]tsdb.Rollup, error) {
	closed := !now.Before(hour.Add(time.Hour + hourGrace))
	c.mu.Lock()
	if c.hours == nil {
		c.hours = map[time.Time]*hourEntry{}
	}
	e := c.hours[hour]
	var missing []string
	if e == nil || !closed || e.fetched.Before(hour.Add(time.Hour+hourGrace)) {
		missing = keys
	} else {
		for _, k := range keys {
			if _, ok := e.byKey[k]; !ok {
				missing = append(missing, k)
			}
		}
	}
	c.mu.Unlock()
	out := make(map[string]tsdb.Rollup, len(keys))
	if len(missing) > 0 {
		got, err := r.RollupTotals(ctx, missing, hour, hour.Add(time.Hour))
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if e == nil || len(missing) == len(keys) {
			e = &hourEntry{byKey: make(map[string]tsdb.Rollup, len(keys))}
		}
		e.fetched = now
		for k, t := range got {
			e.byKey[k] = t.Sum
		}
		if closed {
			c.hours[hour] = e
			for h := range c.hours {
				if now.Sub(h) > 25*time.Hour {
					delete(c.hours, h)
				}
			}
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		out[k] = e.byKey[k]
	}
	return out, nil
}
