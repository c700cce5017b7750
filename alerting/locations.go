package alerting

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
)

// Location watch defaults (see LocationOptions).
const (
	DefaultSuspectWindow     = 2 * time.Minute
	DefaultSuspectShare      = 0.5
	DefaultSuspectMinTargets = 5
)

// suspectScanEvery bounds how often the suspect scan runs.
const suspectScanEvery = 5 * time.Second

// LocationOptions configure how the engine watches the probe locations as
// a whole. Zero fields take their defaults.
type LocationOptions struct {
	// StaleAfter is how long a location may send no result at all before it
	// is unavailable (default DefaultStaleIntervals × the longest interval
	// of the routed targets).
	StaleAfter time.Duration
	// SuspectWindow is how far back a location's results count when
	// deciding whether it is suspect (default 2m; it should cover the
	// targets' interval).
	SuspectWindow time.Duration
	// SuspectShare is the share of a location's targets checked within
	// the window that must be failing there while another location sees
	// them up for the location to be suspect (exceeded, default 0.5).
	SuspectShare float64
	// SuspectMinTargets is the least number of such targets (default 5),
	// so that a location running few targets is not suspected for one.
	SuspectMinTargets int
}

func (o LocationOptions) withDefaults() LocationOptions {
	if o.SuspectWindow <= 0 {
		o.SuspectWindow = DefaultSuspectWindow
	}
	if o.SuspectShare <= 0 || o.SuspectShare >= 1 {
		o.SuspectShare = DefaultSuspectShare
	}
	if o.SuspectMinTargets <= 0 {
		o.SuspectMinTargets = DefaultSuspectMinTargets
	}
	return o
}

// The kinds of LocationEvent.
const (
	LocationUnavailable = "location_unavailable" // no result from it within StaleAfter
	LocationAvailable   = "location_available"   // results again after being unavailable
	LocationSuspect     = "location_suspect"     // most of its targets fail there only
	LocationTrusted     = "location_trusted"     // no longer suspect
)

// LocationEvent is something operators should know about a probe location.
type LocationEvent struct {
	Kind     string    `json:"kind"`
	Location string    `json:"location"`
	At       time.Time `json:"at"`
	Detail   string    `json:"detail"`
}

// lastResult is a location's newest result for a target.
type lastResult struct {
	at time.Time
	ok bool
}

// locSeen is a location's newest result start, raised without
// locationWatch.mu by the results of the only location.
type locSeen struct {
	newest      atomic.Int64 // Unix nanoseconds, math.MinInt64 for the zero time
	unavailable atomic.Bool  // as locationWatch.unavailable says
}

func (l *locSeen) at() time.Time {
	if n := l.newest.Load(); n != math.MinInt64 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// raise makes t the newest start if it is newer.
func (l *locSeen) raise(t time.Time) {
	if t.IsZero() {
		return
	}
	n := t.UnixNano()
	for {
		cur := l.newest.Load()
		if n <= cur || l.newest.CompareAndSwap(cur, n) {
			return
		}
	}
}

// locationWatch tracks every location's newest result, and, once there is
// more than one location, each target's newest result per location, to
// decide which locations are unavailable and which are suspect.
type locationWatch struct {
	o LocationOptions

	mu          sync.Mutex
	seen        map[string]*locSeen              // location → newest result start
	last        map[string]map[string]lastResult // target → location → newest
	unavailable map[string]bool
	suspect     map[string]bool
	scanned     time.Time // when the suspect scan last ran
	// suspects is a copy of suspect that StepQuorum reads without mu.
	suspects atomic.Pointer[map[string]bool]
	// only is the location while it is the only one, nil otherwise: its
	// results, nearly all of them with one location, only raise its newest
	// start, without mu.
	only atomic.Pointer[onlyLocation]

	available *prometheus.GaugeVec
	suspectG  *prometheus.GaugeVec
}

func newLocationWatch(o LocationOptions) *locationWatch {
	w := &locationWatch{
		o:           o.withDefaults(),
		seen:        map[string]*locSeen{},
		last:        map[string]map[string]lastResult{},
		unavailable: map[string]bool{},
		suspect:     map[string]bool{},
		available: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "upwatch_location_available",
			Help: "1 while the probe location sends results, 0 once it has been silent past its staleness window.",
		}, []string{"location"}),
		suspectG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "upwatch_location_suspect",
			Help: "1 while most of the location's targets fail there only (its own network is the likely cause); it then drops out of every quorum.",
		}, []string{"location"}),
	}
	w.suspects.Store(&map[string]bool{})
	return w
}

// onlyLocation is the one location seen so far.
type onlyLocation struct {
	name string
	seen *locSeen
}

// isSuspect reports whether loc is suspect now.
func (w *locationWatch) isSuspect(loc string) bool { return (*w.suspects.Load())[loc] }

// observe notes r; it returns an event when r's location comes back.
func (w *locationWatch) observe(r prober.Result) *LocationEvent {
	loc := r.Location
	if o := w.only.Load(); o != nil && o.name == loc && !o.seen.unavailable.Load() {
		o.seen.raise(r.Start)
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ls, known := w.seen[loc]
	if !known {
		ls = &locSeen{}
		ls.newest.Store(math.MinInt64)
		w.seen[loc] = ls
	}
	ls.raise(r.Start)
	var ev *LocationEvent
	if !known {
		w.available.WithLabelValues(loc).Set(1)
		w.suspectG.WithLabelValues(loc).Set(0)
	} else if w.unavailable[loc] {
		delete(w.unavailable, loc)
		ls.unavailable.Store(false)
		w.available.WithLabelValues(loc).Set(1)
		ev = &LocationEvent{Kind: LocationAvailable, Location: loc, At: r.Start, Detail: "results arrive again"}
	}
	if len(w.seen) == 1 {
		w.only.Store(&onlyLocation{name: loc, seen: ls})
	} else {
		w.only.Store(nil)
	}
	if len(w.seen) > 1 {
		m := w.last[r.TargetID]
		if m == nil {
			m = make(map[string]lastResult, len(w.seen))
			w.last[r.TargetID] = m
		}
		if r.Start.After(m[loc].at) {
			m[loc] = lastResult{at: r.Start, ok: r.Success}
		}
	}
	return ev
}

// forget drops targets no longer routed.
func (w *locationWatch) forget(ids []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range ids {
		delete(w.last, id)
	}
}

// evaluate decides, at now, which locations are unavailable (silent past
// stale) and which are suspect, and returns what changed.
func (w *locationWatch) evaluate(now time.Time, stale time.Duration) []LocationEvent {
	if w.o.StaleAfter > 0 {
		stale = w.o.StaleAfter
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []LocationEvent
	for _, loc := range sortedKeys(w.seen) {
		if silent := now.Sub(w.seen[loc].at()); silent > stale && !w.unavailable[loc] {
			w.unavailable[loc] = true
			w.seen[loc].unavailable.Store(true)
			w.available.WithLabelValues(loc).Set(0)
			out = append(out, LocationEvent{Kind: LocationUnavailable, Location: loc, At: now,
				Detail: fmt.Sprintf("no result for %s (window %s); it drops out of every quorum", silent.Round(time.Second), stale)})
		}
	}
	// The suspect scan reads every target's newest results: at most once
	// per suspectScanEvery, not on every tick.
	if len(w.seen) < 2 || (now.After(w.scanned) && now.Sub(w.scanned) < suspectScanEvery) {
		return out
	}
	w.scanned = now
	// Share of each location's recently checked targets failing there
	// while another fresh location sees them up.
	total, failing := map[string]int{}, map[string]int{}
	since, fresh := now.Add(-w.o.SuspectWindow), now.Add(-stale)
	for id, m := range w.last {
		newest := time.Time{}
		for loc, lr := range m {
			newest = maxTime(newest, lr.at)
			if lr.at.Before(since) {
				continue
			}
			total[loc]++
			if lr.ok {
				continue
			}
			for other, o := range m {
				if other != loc && o.ok && !o.at.Before(fresh) {
					failing[loc]++
					break
				}
			}
		}
		if newest.Before(now.Add(-10 * stale)) {
			delete(w.last, id) // nothing has checked it for long: not routed any more
		}
	}
	changed := false
	for _, loc := range sortedKeys(w.seen) {
		f, n := failing[loc], total[loc]
		sus := f >= w.o.SuspectMinTargets && float64(f) > w.o.SuspectShare*float64(n)
		if sus == w.suspect[loc] {
			continue
		}
		changed = true
		if sus {
			w.suspect[loc] = true
			w.suspectG.WithLabelValues(loc).Set(1)
			out = append(out, LocationEvent{Kind: LocationSuspect, Location: loc, At: now,
				Detail: fmt.Sprintf("%d of %d targets checked within %s fail there while another location sees them up; it drops out of every quorum", f, n, w.o.SuspectWindow)})
		} else {
			delete(w.suspect, loc)
			w.suspectG.WithLabelValues(loc).Set(0)
			out = append(out, LocationEvent{Kind: LocationTrusted, Location: loc, At: now,
				Detail: fmt.Sprintf("%d of %d targets checked within %s fail there only; it counts again", f, n, w.o.SuspectWindow)})
		}
	}
	if changed {
		cp := make(map[string]bool, len(w.suspect))
		for k := range w.suspect {
			cp[k] = true
		}
		w.suspects.Store(&cp)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
