package api

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/sla"
	"github.com/upwatch/upwatch/sla/slainput"
	"github.com/upwatch/upwatch/tenancy"
	"github.com/upwatch/upwatch/tsdb"
)

func (s *Server) getTargetSLA(w http.ResponseWriter, r *http.Request, p Principal) error {
	ti, err := s.targetOf(r.Context(), p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	q, err := parseSLAQuery(r.URL.Query(), s.o.Now())
	if err != nil {
		return err
	}
	if s.o.Samples == nil {
		return unavailable("the sample store")
	}
	out, err := s.slaTargets(r.Context(), p.TenantID, []tenancy.TargetInfo{ti}, q)
	if err != nil {
		return err
	}
	res := out[0]
	doc := targetSLADoc{
		TargetID: ti.Target.ID, Name: ti.Target.Name,
		Window:      newWindowDoc(res.Report, q.Period, q.TimeZone),
		slaSettings: q.settings(),
		slaFigures:  newFigures(res.Report),
	}
	if res.Report.Checks > 0 {
		if doc.LatencyByLocation, doc.LatencyByLocationTruncated, err = s.locationLatency(r.Context(), p.TenantID, ti, q); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// locationLatency is a target's latency percentiles per probe location
// over q, when more than one location has checks.
func (s *Server) locationLatency(ctx context.Context, tenantID string, ti tenancy.TargetInfo, q slaQuery) ([]locationLatencyDoc, bool, error) {
	in := slainput.Query{From: q.From, To: q.To, ExcludeMaintenance: q.ExcludeMaintenance}
	if q.ExcludeMaintenance {
		windows, err := s.maintenanceWindows(ctx, tenantID)
		if err != nil {
			return nil, false, err
		}
		in.Windows = windows
	}
	ls, truncated, err := s.sla.LocationLatency(ctx, ti, in)
	if err != nil {
		return nil, false, err
	}
	return newLocationLatencyDocs(ls), truncated && len(ls) > 0, nil
}

func (s *Server) getSelectorSLA(w http.ResponseWriter, r *http.Request, p Principal) error {
	doc, err := s.selectorSLA(r.Context(), r, p.TenantID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// selectorSLA computes the SLA of the tenant's targets matching the
// request's selector (all targets without one), each and pooled.
func (s *Server) selectorSLA(ctx context.Context, r *http.Request, tenantID string) (selectorSLADoc, error) {
	v := r.URL.Query()
	now := s.o.Now()
	q, err := parseSLAQuery(v, now)
	var iss queryIssues
	sel, selErr := parseSelector(v.Get("selector"))
	if selErr != nil {
		iss.add("selector", "%v", selErr)
	}
	if err != nil {
		if pe, ok := err.(*ProblemError); ok {
			pe.Errors = append(pe.Errors, iss...)
			return selectorSLADoc{}, pe
		}
		return selectorSLADoc{}, err
	}
	if err := iss.problem(); err != nil {
		return selectorSLADoc{}, err
	}
	if s.o.Samples == nil {
		return selectorSLADoc{}, unavailable("the sample store")
	}
	all, err := s.targetsOf(ctx, tenantID)
	if err != nil {
		return selectorSLADoc{}, err
	}
	var targets []tenancy.TargetInfo
	for _, t := range all {
		if sel.matches(t.Target.Labels) {
			targets = append(targets, t)
		}
	}
	sort.SliceStable(targets, func(i, j int) bool { return targets[i].Target.ID < targets[j].Target.ID })
	results, err := s.slaTargets(ctx, tenantID, targets, q)
	if err != nil {
		return selectorSLADoc{}, err
	}
	return newSelectorDoc(sel.text, q, now, results), nil
}

// newSelectorDoc builds the per-target figures and their aggregate.
func newSelectorDoc(selector string, q slaQuery, now time.Time, results []slainput.Result) selectorSLADoc {
	doc := selectorSLADoc{
		Selector: selector, slaSettings: q.settings(),
		Targets: make([]targetFiguresDoc, 0, len(results)),
	}
	reps := make([]sla.Report, 0, len(results))
	counted := make([]tsdb.Rollup, 0, len(results))
	for _, res := range results {
		doc.Targets = append(doc.Targets, targetFiguresDoc{
			TargetID: res.Target.Target.ID, Name: res.Target.Target.Name,
			Labels: res.Target.Target.Labels, slaFigures: newFigures(res.Report),
		})
		reps = append(reps, res.Report)
		counted = append(counted, res.Counted)
	}
	// The window as computed for any target (they share it); with no
	// target, as Compute would state it.
	win := sla.Compute(sla.Input{From: q.From, To: q.To, Now: now, Data: []sla.Interval{}})
	doc.Window = newWindowDoc(win, q.Period, q.TimeZone)
	doc.Aggregate = aggregate(reps, counted, q.Accounting, q.SLO)
	return doc
}
