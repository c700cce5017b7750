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

// hourCache keeps the closed spans of the dashboard: the hours of its
// sparklines and the 29 days before them of its 30-day uptime, so each
// poll reads only the current hour. Entries are keyed by target key (never
// reused, so no tenant sees another's) and spans that ended more than a
// day ago are dropped.
type hourCache struct {
	mu    sync.Mutex
	spans map[spanKey]*hourEntry
}

// spanKey is [from, to) in Unix seconds.
type spanKey struct{ from, to int64 }

type hourEntry struct {
	fetched time.Time
	byKey   map[string]tsdb.Rollup
}

// hourly returns, for each of keys, the rollup of the hour starting at
// hour.
func (c *hourCache) hourly(ctx context.Context, r tsdb.Reader, keys []string, hour, now time.Time) (map[string]tsdb.Rollup, error) {
	return c.span(ctx, r, keys, hour, hour.Add(time.Hour), now)
}

// span returns, for each of keys, the rollup total of [from, to), from
// the cache once the span is closed (hourGrace after to).
func (c *hourCache) span(ctx context.Context, r tsdb.Reader, keys []string, from, to, now time.Time) (map[string]tsdb.Rollup, error) {
	sk := spanKey{from.Unix(), to.Unix()}
	settled := to.Add(hourGrace)
	closed := !now.Before(settled)
	c.mu.Lock()
	if c.spans == nil {
		c.spans = map[spanKey]*hourEntry{}
	}
	e := c.spans[sk]
	var missing []string
	if e == nil || !closed || e.fetched.Before(settled) {
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
		got, err := r.RollupTotals(ctx, missing, from, to)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if e == nil || len(missing) == len(keys) {
			e = &hourEntry{byKey: make(map[string]tsdb.Rollup, len(keys))}
		}
		e.fetched = now
		for _, k := range missing {
			e.byKey[k] = got[k].Sum // a key without rollups is cached as zero
		}
		if closed {
			c.spans[sk] = e
			for k := range c.spans {
				if now.Sub(time.Unix(k.to, 0)) > 25*time.Hour {
					delete(c.spans, k)
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
