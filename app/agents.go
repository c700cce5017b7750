package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/lease"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
)

// resultClaimer is the registry's record of agent results already taken.
type resultClaimer interface {
	ClaimResults(ctx context.Context, keys []registry.ResultKey) ([]bool, error)
	PruneResults(ctx context.Context, before time.Time) (int64, error)
}

// agentService serves probe agents: membership and assignments from the
// fleet, and results into the same path as the server's own checks.
type agentService struct {
	fleet    *fleet.Fleet
	claims   resultClaimer
	record   func(context.Context, prober.Result)
	maxBatch int
	now      func() time.Time
	log      *slog.Logger
}

var _ api.AgentService = (*agentService)(nil)

func (a *agentService) MaxBatch() int { return a.maxBatch }

func (a *agentService) Heartbeat(ctx context.Context, m fleet.Member) (fleet.Welcome, error) {
	if err := a.fleet.Heartbeat(ctx, m); err != nil {
		return fleet.Welcome{}, err
	}
	return fleet.Welcome{Location: m.Location, TTL: a.fleet.TTL().String(), MaxBatch: a.maxBatch}, nil
}

func (a *agentService) Assignment(ctx context.Context, id, location, since string, wait time.Duration) (fleet.Assignment, bool, error) {
	as, ts, changed, err := a.fleet.Wait(ctx, id, location, since, wait)
	if err != nil || (!changed && since != "") {
		return as, false, err
	}
	ts, as.Removed, as.Full = a.fleet.Changes(id, since, as.Version, ts)
	as.Targets = make([]fleet.WireTarget, 0, len(ts))
	for _, t := range ts {
		w, err := fleet.EncodeTarget(t)
		if err != nil {
			return as, false, err
		}
		as.Targets = append(as.Targets, w)
	}
	return as, changed, nil
}

// Ingest takes each result once: results for a target that is gone or not
// checked from location, or scheduled outside the dedupe window (their key
// may be forgotten), are refused; the others are claimed in the registry
// by (target, location, scheduled), and those claimed for the first time
// go where local results go (write-ahead log, store, metrics, alerting).
// A claim is made before the result is recorded: a server killed between
// the two loses that result rather than counting it twice.
func (a *agentService) Ingest(ctx context.Context, location string, results []prober.Result) (fleet.BatchReply, error) {
	var reply fleet.BatchReply
	now := a.now()
	oldest, newest := now.Add(-registry.DedupeWindow), now.Add(time.Hour)
	keep := make([]prober.Result, 0, len(results))
	keys := make([]registry.ResultKey, 0, len(results))
	for _, r := range results {
		t, ok := a.fleet.Target(r.TargetID)
		if !ok || !t.CheckedFrom(location) || r.Scheduled.Before(oldest) || r.Scheduled.After(newest) {
			reply.Rejected++
			continue
		}
		// What the server knows of the target wins over what the agent
		// says: its name and kind become labels.
		r.Location, r.Target, r.Kind = location, t.Name, t.Kind
		keep = append(keep, r)
		keys = append(keys, registry.ResultKey{TargetKey: r.TargetID, Location: location, Scheduled: r.Scheduled})
	}
	if reply.Rejected > 0 {
		a.log.Warn("agent results refused: target gone, not checked from this location, or too old", "location", location, "results", reply.Rejected)
	}
	fresh, err := a.claims.ClaimResults(ctx, keys)
	if errors.Is(err, lease.ErrFenced) {
		// Deposed between routing the push here and claiming: the agent
		// sends it again, to the new holder.
		return reply, fmt.Errorf("%w: this server no longer holds the alerting lease", api.ErrNoResultsServer)
	}
	if err != nil {
		return reply, err
	}
	// Claimed results are recorded even if the agent hangs up meanwhile.
	ctx = context.WithoutCancel(ctx)
	for i, r := range keep {
		if !fresh[i] {
			reply.Duplicates++
			continue
		}
		a.record(ctx, r)
		reply.Accepted++
	}
	return reply, nil
}

// pruneLoop forgets result keys older than the dedupe window, every
// interval, until ctx ends.
func (a *agentService) pruneLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := a.claims.PruneResults(ctx, a.now().Add(-registry.DedupeWindow)); err != nil && ctx.Err() == nil {
			a.log.Warn("pruning agent result keys", "err", err)
		}
		t.Reset(interval)
	}
}
