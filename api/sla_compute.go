package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/sla"
	"github.com/upwatch/upwatch/store"
	"github.com/upwatch/upwatch/tsdb"
)

// SLA figures come from the target's incidents (the registry), its hourly
// rollups (the sample store: checks, latency histograms and, to the hour,
// data coverage) and the maintenance windows that cover it, expanded over
// the window. sla.Compute does the arithmetic, so every backend answers
// the same.

// slaWorkers bounds how many targets' inputs are read at once for a
// selector or a report.
const slaWorkers = 8

// unavailable is the 503 for a store the server was built without.
func unavailable(what string) error {
	return Problem(http.StatusServiceUnavailable, "Service Unavailable", what+" is not configured on this server")
}

// targetSLA is one target's computed report and the rollups it counted.
type targetSLA struct {
	Target  TargetInfo
	Report  sla.Report
	Rollups []tsdb.Rollup
}

// slaInputs are what computeSLA needs besides the target.
type slaInputs struct {
	q       slaQuery
	now     time.Time
	windows []alerting.Window
	// incidents, when set, holds every incident of the tenant in the
	// window by target (read once for many targets); nil reads per target.
	incidents map[string][]alerting.Incident
}

// computeSLA reads one target's inputs and computes its SLA.
func (s *Server) computeSLA(ctx context.Context, ti TargetInfo, in slaInputs) (targetSLA, error) {
	id := ti.Target.ID
	incs, ok := in.incidents[id]
	if !ok && in.incidents == nil {
		var err error
		if incs, err = s.incidentsIn(ctx, id, in.q.From, in.q.To); err != nil {
			return targetSLA{}, err
		}
	}
	// The hour holding From may start before it: ask from its start so the
	// first, partial hour counts as covered.
	rollups, err := s.o.Samples.Rollups(ctx, id, in.q.From.UTC().Truncate(time.Hour), in.q.To)
	if err != nil {
		return targetSLA{}, fmt.Errorf("rollups of %s: %w", id, err)
	}
	maint, err := maintenanceOf(in.windows, id, ti.Target.Labels, in.q.From, in.q.To)
	if err != nil {
		return targetSLA{}, err
	}
	input := sla.Input{
		From: in.q.From, To: in.q.To, Now: in.now,
		Maintenance: maint, ExcludeMaintenance: in.q.ExcludeMaintenance,
		Rollups: rollups, Accounting: in.q.Accounting, SLO: in.q.SLO,
	}
	for _, inc := range incs {
		input.Incidents = append(input.Incidents, sla.Interval{Start: inc.Start, End: inc.End})
	}
	rep := sla.Compute(input)
	return targetSLA{Target: ti, Report: rep, Rollups: countedRollups(rollups, in.q, maint)}, nil
}

// computeSLAs computes the SLA of every target, slaWorkers at a time, in
// the order given. Incidents are read once for the whole tenant.
func (s *Server) computeSLAs(ctx context.Context, targets []TargetInfo, in slaInputs) ([]targetSLA, error) {
	if len(targets) > 1 {
		all, err := s.incidentsIn(ctx, "", in.q.From, in.q.To)
		if err != nil {
			return nil, err
		}
		in.incidents = make(map[string][]alerting.Incident, len(targets))
		for _, t := range targets {
			in.incidents[t.Target.ID] = nil
		}
		for _, inc := range all {
			if _, ok := in.incidents[inc.TargetID]; ok {
				in.incidents[inc.TargetID] = append(in.incidents[inc.TargetID], inc)
			}
		}
	}
	out := make([]targetSLA, len(targets))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	for range min(slaWorkers, len(targets)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := s.computeSLA(ctx, targets[i], in)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel()
					}
					mu.Unlock()
					continue
				}
				out[i] = r
			}
		}()
	}
feed:
	for i := range targets {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// incidentsIn returns the incidents of targetID ("" for every target of
// the registry) overlapping [from, to), reading past the store's page
// limit. The store answers newest first; each further page asks for the
// incidents that started before the oldest one seen.
func (s *Server) incidentsIn(ctx context.Context, targetID string, from, to time.Time) ([]alerting.Incident, error) {
	if s.o.Incidents == nil {
		return nil, unavailable("the incident store")
	}
	var out []alerting.Incident
	seen := map[string]bool{}
	upper := to
	for {
		page, err := s.o.Incidents.Incidents(ctx, store.IncidentQuery{
			TargetID: targetID, From: from, To: upper, Limit: store.MaxLimit,
		})
		if err != nil {
			return nil, fmt.Errorf("incidents: %w", err)
		}
		added := 0
		oldest := upper
		for _, inc := range page {
			if inc.Start.Before(oldest) {
				oldest = inc.Start
			}
			if seen[inc.ID] {
				continue
			}
			seen[inc.ID] = true
			out = append(out, inc)
			added++
		}
		if len(page) < store.MaxLimit || added == 0 {
			break
		}
		// Incidents starting at the oldest start may continue on the next
		// page: ask up to just after it; the ones already seen are skipped.
		upper = oldest.Add(time.Nanosecond)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// maintenanceWindows returns the tenant's maintenance windows, validated:
// the config file's (tenant "default") and the API's.
func (s *Server) maintenanceWindows(ctx context.Context, tenantID string) ([]alerting.Window, error) {
	var out []alerting.Window
	if tenantID == store.DefaultTenant {
		for _, w := range s.o.Config().Maintenance {
			if len(w.Validate("maintenance")) == 0 {
				out = append(out, w)
			}
		}
	}
	objs, err := s.o.Store.Objects(ctx, store.MaintenanceWindows, tenantID)
	if err != nil {
		return nil, fmt.Errorf("maintenance windows: %w", err)
	}
	for _, o := range objs {
		var doc map[string]any
		if err := json.Unmarshal(o.Spec, &doc); err != nil {
			return nil, fmt.Errorf("maintenance window %s: stored spec: %w", o.ID, err)
		}
		delete(doc, "id")
		for _, f := range readOnlyTargetFields {
			delete(doc, f)
		}
		var w alerting.Window
		if err := fromDocument(doc, &w); err != nil {
			return nil, fmt.Errorf("maintenance window %s: stored spec does not decode: %w", o.ID, err)
		}
		if errs := w.Validate("maintenance"); len(errs) > 0 {
			return nil, fmt.Errorf("maintenance window %s: stored spec is invalid: %w", o.ID, errors.Join(errs...))
		}
		out = append(out, w)
	}
	return out, nil
}

// maintenanceOf expands the windows that cover the target over [from, to).
func maintenanceOf(windows []alerting.Window, id string, labels map[string]string, from, to time.Time) ([]sla.Interval, error) {
	var out []sla.Interval
	for i := range windows {
		w := &windows[i]
		if !w.Applies(id, labels) {
			continue
		}
		ps, err := w.Periods(from, to)
		if errors.Is(err, alerting.ErrTooManyStarts) {
			return nil, Problem(http.StatusUnprocessableEntity, "Window Too Long",
				fmt.Sprintf("maintenance window %q fires too often to expand over this SLA window; ask for a shorter window", w.Name))
		}
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			out = append(out, sla.Interval{Start: p.Start, End: p.End})
		}
	}
	return out, nil
}

// countedRollups returns the rollups sla.Compute counted for checks and
// latency: hour in [From, To), and not wholly inside maintenance when it
// is excluded.
func countedRollups(rollups []tsdb.Rollup, q slaQuery, maint []sla.Interval) []tsdb.Rollup {
	var m []sla.Interval
	if q.ExcludeMaintenance {
		m = sla.Union(maint)
	}
	out := make([]tsdb.Rollup, 0, len(rollups))
	for _, r := range rollups {
		if r.Hour.Before(q.From) || !r.Hour.Before(q.To) {
			continue
		}
		if wholly(m, r.Hour, r.Hour.Add(time.Hour)) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// wholly reports whether the merged, sorted intervals contain [s, e).
func wholly(ivs []sla.Interval, s, e time.Time) bool {
	i := sort.Search(len(ivs), func(i int) bool { return ivs[i].Start.After(s) })
	return i > 0 && !ivs[i-1].End.Before(e)
}
