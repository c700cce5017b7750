package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
	// FirstFailureEvidence links to the evidence of the check the incident
	// starts at, when the sample store keeps evidence.
	FirstFailureEvidence string `json:"first_failure_evidence,omitempty"`
	// AcknowledgedBy is the key (a web user: "user:<name>") that
	// acknowledged the incident; both are null until someone does.
	AcknowledgedBy *string    `json:"acknowledged_by"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
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
	if inc.Acked() {
		by, at := inc.AckedBy, inc.AckedAt.UTC()
		d.AcknowledgedBy, d.AcknowledgedAt = &by, &at
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

// incidentsDoc answers the incident lists, newest first, in the list
// envelope; incidents repeats the items for clients written before the
// envelope was the same everywhere.
type incidentsDoc struct {
	list[incidentDoc]
	Incidents []incidentDoc `json:"incidents"`
}

// incidentPage is an incident list query: the registry's, plus where the
// page starts.
type incidentPage struct {
	registry.IncidentQuery
	limit  int             // the page size asked for
	cursor *incidentCursor // nil: the first page
}

// incidentQuery reads from, to (both optional: unbounded), open, limit and
// cursor. The registry is asked for one more than the page, from the
// cursor's start on, so the answer knows whether another page follows.
func incidentQuery(v url.Values) (incidentPage, error) {
	var iss queryIssues
	var q incidentPage
	q.From, _ = iss.time(v, "from")
	q.To, _ = iss.time(v, "to")
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		iss.add("to", "must be after from")
	}
	q.OpenOnly = iss.bool(v, "open", false)
	q.limit = iss.int(v, "limit", registry.DefaultLimit, 1, registry.MaxLimit)
	if c := v.Get("cursor"); c != "" {
		cur, ok := parseIncidentCursor(c)
		if !ok {
			iss.add("cursor", "is not a cursor this API gave")
		} else {
			q.cursor = &cur
			// Started at or before the cursor's start (ties are sorted by id).
			if to := cur.start.Add(time.Nanosecond); q.To.IsZero() || to.Before(q.To) {
				q.To = to
			}
		}
	}
	// One more than the page tells whether another follows; after a
	// cursor, one more again: each target has at most one incident
	// starting at the cursor's instant, which the page before may have
	// shown.
	extra := 1
	if q.cursor != nil {
		extra = 2
	}
	q.Limit = min(q.limit+extra, registry.MaxLimit)
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
	incs, err := s.o.Incidents.Incidents(r.Context(), q.IncidentQuery)
	if err != nil {
		return fmt.Errorf("incidents: %w", err)
	}
	writeJSON(w, http.StatusOK, s.incidentsDoc(incs, q, len(incs) >= registry.MaxLimit, map[string]string{ti.Key: ti.Target.ID}))
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
	capped := false
	ids := make(map[string]string, len(targets))
	for _, t := range targets {
		ids[t.Key] = t.Target.ID
		q.TargetID = t.Key
		incs, err := s.o.Incidents.Incidents(r.Context(), q.IncidentQuery)
		if err != nil {
			return fmt.Errorf("incidents: %w", err)
		}
		all = append(all, incs...)
		capped = capped || len(incs) >= registry.MaxLimit
	}
	writeJSON(w, http.StatusOK, s.incidentsDoc(all, q, capped, ids))
	return nil
}

// incidentsDoc sorts newest first, drops what the cursor's page already
// showed and keeps a page; ids maps the targets' keys, which the incidents
// carry, to the ids the caller knows them by. capped says the registry
// may have held back more than it returned (it answers at most MaxLimit).
func (s *Server) incidentsDoc(incs []alerting.Incident, q incidentPage, capped bool, ids map[string]string) incidentsDoc {
	if q.cursor != nil {
		incs = slices.DeleteFunc(incs, func(inc alerting.Incident) bool { return !q.cursor.after(inc.Start, inc.ID) })
	}
	sort.SliceStable(incs, func(i, j int) bool {
		if !incs[i].Start.Equal(incs[j].Start) {
			return incs[i].Start.After(incs[j].Start)
		}
		return incs[i].ID < incs[j].ID
	})
	more := len(incs) > q.limit || (capped && len(incs) == q.limit)
	if len(incs) > q.limit {
		incs = incs[:q.limit]
	}
	now := s.o.Now()
	doc := incidentsDoc{list: newList(make([]incidentDoc, 0, len(incs)))}
	for _, inc := range incs {
		inc.TargetID = ids[inc.TargetID]
		d := newIncidentDoc(inc, now)
		d.FirstFailureEvidence = s.evidenceLink(inc.TargetID, inc.Start)
		doc.Items = append(doc.Items, d)
	}
	if more && len(incs) > 0 {
		last := incs[len(incs)-1]
		doc.NextCursor = incidentCursor{start: last.Start, id: last.ID}.String()
	}
	doc.Incidents = doc.Items
	return doc
}
