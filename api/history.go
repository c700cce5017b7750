package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tsdb"
)

// DefaultHistoryWindow is how far back samples, exports and incidents
// reach when the request gives no from.
const DefaultHistoryWindow = 24 * time.Hour

// historyRange reads from and to for the history routes: to defaults to
// now, from to to − DefaultHistoryWindow.
func historyRange(iss *queryIssues, v url.Values, now time.Time) (from, to time.Time) {
	to, ok := iss.time(v, "to")
	if !ok {
		to = now
	}
	from, ok = iss.time(v, "from")
	if !ok {
		from = to.Add(-DefaultHistoryWindow)
	}
	if v.Get("from") != "" && v.Get("to") != "" && !from.Before(to) {
		iss.add("to", "must be after from")
	}
	return from, to
}

// samplesDoc answers GET /targets/{id}/samples: raw samples (a page, with
// next_cursor while more follow) or, with step, downsampled buckets.
type samplesDoc struct {
	TargetID   string         `json:"target_id"`
	From       time.Time      `json:"from"`
	To         time.Time      `json:"to"`
	Samples    []sampleDoc    `json:"samples,omitzero"`
	NextCursor *string        `json:"next_cursor,omitempty"`
	Step       *durationDoc   `json:"step,omitempty"`
	Buckets    []sampleBucket `json:"buckets,omitzero"`
}

func (s *Server) getSamples(w http.ResponseWriter, r *http.Request, p Principal) error {
	ti, err := s.targetOf(r.Context(), p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	if s.o.Samples == nil {
		return unavailable("the sample store")
	}
	v := r.URL.Query()
	var iss queryIssues
	from, to := historyRange(&iss, v, s.o.Now())
	limit := iss.int(v, "limit", 1000, 1, 10000)
	var step time.Duration
	if st := v.Get("step"); st != "" {
		if step, err = parseStep(st); err != nil {
			iss.add("step", "%v", err)
		} else if n := to.Sub(from) / step; n > MaxBuckets {
			iss.add("step", "%d buckets of %s over this window; at most %d: widen the step or narrow the window", n, st, MaxBuckets)
		}
		if v.Get("cursor") != "" {
			iss.add("cursor", "not with step: a downsampled answer is never paged")
		}
		if v.Get("limit") != "" {
			iss.add("limit", "not with step")
		}
	}
	if err := iss.problem(); err != nil {
		return err
	}
	doc := samplesDoc{TargetID: ti.Target.ID, From: from.UTC(), To: to.UTC()}
	q := tsdb.SampleQuery{TargetID: ti.Key, From: from, To: to, Limit: limit, Cursor: v.Get("cursor")}

	if step == 0 {
		page, err := s.o.Samples.Samples(r.Context(), q)
		if err != nil {
			return sampleError(err)
		}
		doc.Samples = make([]sampleDoc, 0, len(page.Samples))
		for _, res := range page.Samples {
			doc.Samples = append(doc.Samples, newSampleDoc(ti.Shown(res)))
		}
		if page.NextCursor != "" {
			doc.NextCursor = &page.NextCursor
		}
		writeJSON(w, http.StatusOK, doc)
		return nil
	}

	sd := newDuration(step)
	doc.Step = &sd
	doc.Buckets = []sampleBucket{}
	ds := newDownsampler(step, func(b sampleBucket) error {
		doc.Buckets = append(doc.Buckets, b)
		return nil
	})
	q.Limit = 10000
	if err := s.eachSample(r, q, func(page tsdb.SamplePage) error {
		for _, res := range page.Samples {
			if err := ds.add(res); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := ds.flush(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// eachSample hands every page of q to fn, oldest first.
func (s *Server) eachSample(r *http.Request, q tsdb.SampleQuery, fn func(tsdb.SamplePage) error) error {
	for {
		page, err := s.o.Samples.Samples(r.Context(), q)
		if err != nil {
			return sampleError(err)
		}
		if err := fn(page); err != nil {
			return err
		}
		if page.NextCursor == "" || len(page.Samples) == 0 {
			return nil
		}
		q.Cursor = page.NextCursor
	}
}

// sampleError turns a bad cursor into a 400.
func sampleError(err error) error {
	if errors.Is(err, tsdb.ErrInvalidCursor) {
		iss := queryIssues{}
		iss.add("cursor", "not a cursor this server issued for this target")
		return iss.problem()
	}
	return fmt.Errorf("samples: %w", err)
}

func (s *Server) getLatest(w http.ResponseWriter, r *http.Request, p Principal) error {
	ti, err := s.targetOf(r.Context(), p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	if s.o.Samples == nil {
		return unavailable("the sample store")
	}
	latest, err := s.o.Samples.Latest(r.Context())
	if err != nil {
		return fmt.Errorf("latest: %w", err)
	}
	res, ok := latest[ti.Key]
	if !ok {
		return Problem(http.StatusNotFound, "Not Found", fmt.Sprintf("target %q has no check result yet", ti.Target.ID))
	}
	writeJSON(w, http.StatusOK, newSampleDoc(ti.Shown(res)))
	return nil
}

// incidentDoc is one incident: start, end (null while open), duration (up
// to now while open) and cause.
type incidentDoc struct {
	ID               string      `json:"id"`
	TargetID         string      `json:"target_id"`
	Start            time.Time   `json:"start"`
	End              *time.Time  `json:"end"`
	Open             bool        `json:"open"`
	Duration         durationDoc `json:"duration"`
	Cause            string      `json:"cause"`
	Suppressed       bool        `json:"suppressed"`
	SuppressedReason string      `json:"suppressed_reason,omitempty"`
	InMaintenance    bool        `json:"in_maintenance"`
	// Locations are where the failure was seen, with several locations.
	Locations []incidentLocationDoc `json:"locations,omitempty"`
}

type incidentLocationDoc struct {
	Location     string    `json:"location"`
	FirstFailure time.Time `json:"first_failure"`
	LastFailure  time.Time `json:"last_failure"`
}

func newIncidentDoc(inc alerting.Incident, now time.Time) incidentDoc {
	d := incidentDoc{
		ID: inc.ID, TargetID: inc.TargetID, Start: inc.Start.UTC(), Open: inc.Open(), Cause: inc.Cause,
		Suppressed: inc.Suppressed, SuppressedReason: inc.SuppressedReason, InMaintenance: inc.InMaintenance,
	}
	for _, l := range inc.Locations {
		d.Locations = append(d.Locations, incidentLocationDoc{Location: l.Location, FirstFailure: l.FirstFailure.UTC(), LastFailure: l.LastFailure.UTC()})
	}
	end := now
	if !inc.Open() {
		e := inc.End.UTC()
		d.End, end = &e, inc.End
	}
	d.Duration = newDuration(max(end.Sub(inc.Start), 0))
	return d
}

// incidentsDoc answers the incident lists, newest first.
type incidentsDoc struct {
	Incidents []incidentDoc `json:"incidents"`
}

// incidentQuery reads from, to (both optional: unbounded), open and limit.
func incidentQuery(v url.Values) (registry.IncidentQuery, error) {
	var iss queryIssues
	var q registry.IncidentQuery
	q.From, _ = iss.time(v, "from")
	q.To, _ = iss.time(v, "to")
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		iss.add("to", "must be after from")
	}
	q.OpenOnly = iss.bool(v, "open", false)
	q.Limit = iss.int(v, "limit", registry.DefaultLimit, 1, registry.MaxLimit)
	return q, iss.problem()
}

func (s *Server) getTargetIncidents(w http.ResponseWriter, r *http.Request, p Principal) error {
	ti, err := s.targetOf(r.Context(), p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	q, err := incidentQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if s.o.Incidents == nil {
		return unavailable("the incident store")
	}
	q.TargetID = ti.Key
	incs, err := s.o.Incidents.Incidents(r.Context(), q)
	if err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	writeJSON(w, http.StatusOK, s.incidentsDoc(incs, q.Limit, map[string]string{ti.Key: ti.Target.ID}))
	return nil
}

// getIncidents lists the incidents of every target of the caller's
// tenant: each target's newest limit, merged, newest limit of those.
func (s *Server) getIncidents(w http.ResponseWriter, r *http.Request, p Principal) error {
	q, err := incidentQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if s.o.Incidents == nil {
		return unavailable("the incident store")
	}
	targets, err := s.targetsOf(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	var all []alerting.Incident
	ids := make(map[string]string, len(targets))
	for _, t := range targets {
		ids[t.Key] = t.Target.ID
		q.TargetID = t.Key
		incs, err := s.o.Incidents.Incidents(r.Context(), q)
		if err != nil {
			return fmt.Errorf("incidents: %w", err)
		}
		all = append(all, incs...)
	}
	writeJSON(w, http.StatusOK, s.incidentsDoc(all, q.Limit, ids))
	return nil
}

// incidentsDoc sorts newest first and keeps limit; ids maps the targets'
// keys, which the incidents carry, to the ids the caller knows them by.
func (s *Server) incidentsDoc(incs []alerting.Incident, limit int, ids map[string]string) incidentsDoc {
	sort.SliceStable(incs, func(i, j int) bool {
		if !incs[i].Start.Equal(incs[j].Start) {
			return incs[i].Start.After(incs[j].Start)
		}
		return incs[i].ID < incs[j].ID
	})
	if len(incs) > limit {
		incs = incs[:limit]
	}
	now := s.o.Now()
	doc := incidentsDoc{Incidents: make([]incidentDoc, 0, len(incs))}
	for _, inc := range incs {
		inc.TargetID = ids[inc.TargetID]
		doc.Incidents = append(doc.Incidents, newIncidentDoc(inc, now))
	}
	return doc
}
