package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/upwatch/upwatch/internal/clock"
	"github.com/upwatch/upwatch/prober"
)

// Options configure New. Store is required.
type Options struct {
	Store Store
	// TTL is how long an agent is alive after a heartbeat (default 15s).
	TTL time.Duration
	// Poll is how often a waiting assignment request looks at the live
	// members again (default TTL/8, at most 1s): another server, or an
	// expiry, changes them without telling this one.
	Poll time.Duration
	Now  func() time.Time
}

// Fleet hands out assignments: each target checked from a location goes to
// exactly one of that location's live agents, by rendezvous hashing.
type Fleet struct {
	o Options

	mu      sync.Mutex
	live    map[string]liveRead // by location: the last read of its members
	sent    map[string]sent     // by agent id: what it was last answered
	targets []prober.Target
	byID    map[string]int // index in targets
	changed chan struct{}  // closed (and replaced) when targets change
}

// New returns a fleet with no targets.
func New(o Options) *Fleet {
	if o.TTL <= 0 {
		o.TTL = 15 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = min(o.TTL/8, time.Second)
	}
	o.Now = clock.Or(o.Now)
	return &Fleet{o: o, changed: make(chan struct{}), sent: map[string]sent{}, live: map[string]liveRead{}}
}

// liveRead is a location's live members as read at at. Waiting requests
// share it for up to Poll/2, so many agents polling cost one query a
// location, not one each.
type liveRead struct {
	ids []string
	at  time.Time
}

// liveIDs returns location's live agents, sorted, from a recent read or
// the store.
func (f *Fleet) liveIDs(ctx context.Context, location string) ([]string, error) {
	now := f.o.Now()
	f.mu.Lock()
	r, ok := f.live[location]
	f.mu.Unlock()
	if ok && now.Sub(r.at) >= 0 && now.Sub(r.at) < f.o.Poll/2 {
		return r.ids, nil
	}
	live, err := f.o.Store.LiveMembers(ctx, location, now)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(live))
	for i, m := range live {
		ids[i] = m.ID
	}
	f.mu.Lock()
	f.live[location] = liveRead{ids: ids, at: now}
	f.mu.Unlock()
	return ids, nil
}

// sent is what an agent was last answered: a version and its targets'
// fingerprints.
type sent struct {
	version string
	fps     map[string]string
	at      time.Time
}

// Changes turns agent id's assignment ts (version) into an answer for an
// agent that has version since: only what changed, if since is what this
// fleet last answered it, else everything (full). It remembers the answer
// for the next call. Several servers each remember their own answers; an
// agent that moves to another server gets a full answer there.
func (f *Fleet) Changes(id, since, version string, ts []prober.Target) (upsert []prober.Target, removed []string, full bool) {
	fps := make(map[string]string, len(ts))
	for _, t := range ts {
		fps[t.ID] = t.Fingerprint()
	}
	now := f.o.Now()
	f.mu.Lock()
	prev, ok := f.sent[id]
	f.sent[id] = sent{version: version, fps: fps, at: now}
	if len(f.sent) > 64 { // forget agents gone for long
		for k, v := range f.sent {
			if now.Sub(v.at) > time.Hour {
				delete(f.sent, k)
			}
		}
	}
	f.mu.Unlock()
	if since == "" || !ok || prev.version != since {
		return ts, nil, true
	}
	for _, t := range ts {
		if prev.fps[t.ID] != fps[t.ID] {
			upsert = append(upsert, t)
		}
	}
	for tid := range prev.fps {
		if _, still := fps[tid]; !still {
			removed = append(removed, tid)
		}
	}
	slices.Sort(removed)
	return upsert, removed, false
}

// TTL is how long an agent stays alive after a heartbeat.
func (f *Fleet) TTL() time.Duration { return f.o.TTL }

// SetTargets replaces every target (of every tenant, by target key); the
// caller must not modify them afterwards. Waiting requests look again.
func (f *Fleet) SetTargets(ts []prober.Target) {
	byID := make(map[string]int, len(ts))
	for i, t := range ts {
		byID[t.ID] = i
	}
	f.mu.Lock()
	f.targets, f.byID = ts, byID
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

// Target returns the target with key id, if there is one.
func (f *Fleet) Target(id string) (prober.Target, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.byID[id]
	if !ok {
		return prober.Target{}, false
	}
	return f.targets[i], true
}

// Heartbeat records m alive for one TTL from now.
func (f *Fleet) Heartbeat(ctx context.Context, m Member) error {
	now := f.o.Now()
	m.SeenAt, m.ExpiresAt = now, now.Add(f.o.TTL)
	if err := f.o.Store.Heartbeat(ctx, m); err != nil {
		return err
	}
	f.mu.Lock()
	delete(f.live, m.Location) // a new member is seen at once
	f.mu.Unlock()
	return nil
}

// ErrNotLive is returned for an agent that has no live heartbeat: it must
// heartbeat before it is given targets, or it would check targets the
// other agents already check.
var ErrNotLive = errors.New("fleet: agent not alive; heartbeat first")

// Assignment returns the targets agent id of location checks now.
func (f *Fleet) Assignment(ctx context.Context, id, location string) (Assignment, []prober.Target, error) {
	f.mu.Lock()
	all := f.targets
	f.mu.Unlock()
	ids, err := f.liveIDs(ctx, location)
	if err != nil {
		return Assignment{}, nil, err
	}
	if !slices.Contains(ids, id) {
		return Assignment{}, nil, ErrNotLive
	}
	var mine []prober.Target
	h := sha256.New()
	for _, t := range all {
		if t.Paused || !t.CheckedFrom(location) || Owner(t.ID, ids) != id {
			continue
		}
		mine = append(mine, t)
		h.Write([]byte(t.ID + "\x00" + t.Fingerprint() + "\x00"))
	}
	return Assignment{Version: hex.EncodeToString(h.Sum(nil)[:12])}, mine, nil
}

// Wait returns agent id's assignment once its version differs from since,
// or, if it does not change within wait, the unchanged one with changed
// false. since "" returns at once.
func (f *Fleet) Wait(ctx context.Context, id, location, since string, wait time.Duration) (a Assignment, ts []prober.Target, changed bool, err error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTimer(f.o.Poll)
	defer poll.Stop()
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		a, ts, err = f.Assignment(ctx, id, location)
		if err != nil || a.Version != since {
			return a, ts, err == nil, err
		}
		select {
		case <-ctx.Done():
			return a, ts, false, ctx.Err()
		case <-deadline.C:
			return a, ts, false, nil
		case <-ch:
		case <-poll.C:
			poll.Reset(f.o.Poll)
		}
	}
}
