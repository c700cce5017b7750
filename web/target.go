package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
)

// What the target page reads from the API's JSON.
type (
	sampleDoc struct {
		Time            time.Time `json:"time"`
		Location        string    `json:"location"`
		Success         bool      `json:"success"`
		DurationSeconds float64   `json:"duration_seconds"`
		Phases          struct {
			DNS, Connect, TLS, TTFB, Transfer float64
		} `json:"phases_seconds"`
	}
	samplesDoc struct {
		Samples []sampleDoc `json:"samples"`
	}
	durationDoc struct {
		Seconds float64 `json:"seconds"`
		Human   string  `json:"human"`
	}
	incidentDoc struct {
		ID               string      `json:"id"`
		TargetID         string      `json:"target_id"`
		Start            time.Time   `json:"start"`
		End              *time.Time  `json:"end"`
		Open             bool        `json:"open"`
		Duration         durationDoc `json:"duration"`
		Cause            string      `json:"cause"`
		Suppressed       bool        `json:"suppressed"`
		SuppressedReason string      `json:"suppressed_reason"`
		InMaintenance    bool        `json:"in_maintenance"`
		AcknowledgedBy   *string     `json:"acknowledged_by"`
		AcknowledgedAt   *time.Time  `json:"acknowledged_at"`
	}
	incidentsDoc struct {
		Incidents []incidentDoc `json:"incidents"`
	}
	slaDoc struct {
		Window struct {
			From time.Time `json:"from"`
			To   time.Time `json:"to"`
		} `json:"window"`
		UptimePercent *float64    `json:"uptime_percent"`
		Downtime      durationDoc `json:"downtime"`
		Unknown       durationDoc `json:"unknown"`
		Incidents     int         `json:"incidents"`
	}
)

// notified is who an incident's notifications went to.
type notified struct {
	Channel, To, Kind, Status string
}

type incidentView struct {
	incidentDoc
	Notified []notified
	Notes    []registry.IncidentNote
	Acked    *registry.IncidentNote
}

type targetPage struct {
	ID, Name, Kind, Status, Source string
	Paused                         bool
	Doc                            string // the target as JSON, credentials redacted
	Labels                         []string
	Chart                          template.HTML
	PhaseAvg                       []phaseAvg
	Locations                      []locationStat // with more than one location
	Bar                            template.HTML
	Uptime90                       *float64
	Incidents                      []incidentView
	SLAThis, SLALast               slaDoc
	ThisMonth, LastMonth           string
}

// targetInfo finds the tenant's target id, or 404 (also for another
// tenant's target: the API answers 404 for both).
func (s *Server) targetInfo(ctx context.Context, sess *session, id string) (tenancy.TargetInfo, map[string]any, error) {
	var doc map[string]any
	if err := s.call(ctx, sess, http.MethodGet, "/targets/"+url.PathEscape(id), nil, &doc); err != nil {
		return tenancy.TargetInfo{}, nil, err
	}
	all, err := s.o.API.TargetsOf(ctx, sess.TenantID)
	if err != nil {
		return tenancy.TargetInfo{}, nil, err
	}
	for _, ti := range all {
		if ti.Target.ID == id {
			return ti, doc, nil
		}
	}
	return tenancy.TargetInfo{}, nil, notFound("target " + id)
}

func (s *Server) getTarget(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	ti, doc, err := s.targetInfo(ctx, sess, id)
	if err != nil {
		return err
	}
	now := s.o.Now().UTC()
	st, ok := s.o.States(ti.Key)
	p := targetPage{ID: id, Name: ti.Target.Name, Kind: ti.Target.Kind, Status: statusOf(ti, st, ok), Source: ti.Source, Paused: ti.Target.Paused}
	for k, v := range ti.Target.Labels {
		p.Labels = append(p.Labels, k+"="+v)
	}
	sort.Strings(p.Labels)
	p.Doc = editableDoc(doc)

	esc := url.PathEscape(id)
	var samples samplesDoc
	q := url.Values{"from": {now.Add(-24 * time.Hour).Format(time.RFC3339)}, "to": {now.Add(time.Second).Format(time.RFC3339)}, "limit": {"10000"}}
	if err := s.call(ctx, sess, http.MethodGet, "/targets/"+esc+"/samples?"+q.Encode(), nil, &samples); err != nil {
		return err
	}
	p.Chart, p.PhaseAvg = phaseChart(samples.Samples, now.Add(-24*time.Hour), now)
	p.Locations = byLocation(samples.Samples, now.Add(-24*time.Hour), now)

	dayStart := now.Truncate(24 * time.Hour)
	rollups, err := s.o.Samples.Rollups(ctx, ti.Key, dayStart.Add(-89*24*time.Hour), dayStart.Add(24*time.Hour))
	if err != nil {
		return err
	}
	p.Bar, p.Uptime90 = uptimeBar(rollups, dayStart, 90)

	var incs incidentsDoc
	if err := s.call(ctx, sess, http.MethodGet, "/targets/"+esc+"/incidents?limit=20", nil, &incs); err != nil {
		return err
	}
	if p.Incidents, err = s.incidentViews(ctx, sess, incs.Incidents, true); err != nil {
		return err
	}

	p.ThisMonth, p.LastMonth = now.Format("2006-01"), time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	for _, m := range []struct {
		month string
		into  *slaDoc
	}{{p.ThisMonth, &p.SLAThis}, {p.LastMonth, &p.SLALast}} {
		if err := s.call(ctx, sess, http.MethodGet, "/targets/"+esc+"/sla?period=month&month="+m.month, nil, m.into); err != nil {
			return err
		}
	}
	s.renderPage(w, r, sess, http.StatusOK, "target", p)
	return nil
}

// incidentViews adds who was notified (when withNotified) and the notes.
func (s *Server) incidentViews(ctx context.Context, sess *session, incs []incidentDoc, withNotified bool) ([]incidentView, error) {
	out := make([]incidentView, len(incs))
	ids := make([]string, len(incs))
	for i, inc := range incs {
		out[i].incidentDoc, ids[i] = inc, inc.ID
		if inc.AcknowledgedBy != nil && inc.AcknowledgedAt != nil {
			// A web user acknowledges as "user:<name>"; an API key by its id.
			out[i].Acked = &registry.IncidentNote{TenantID: sess.TenantID, IncidentID: inc.ID, Kind: "ack",
				UserName: strings.TrimPrefix(*inc.AcknowledgedBy, "user:"), At: *inc.AcknowledgedAt}
		}
		if !withNotified {
			continue
		}
		ns, err := s.o.Notifications.Notifications(ctx, registry.NotificationQuery{IncidentID: inc.ID, Limit: 50})
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			to := n.Message.To.Name
			switch {
			case n.Channel == "email" && n.Message.To.Email != "":
				to = strings.TrimSpace(to + " <" + n.Message.To.Email + ">")
			case n.Channel == "sms" && n.Message.To.Phone != "":
				to = strings.TrimSpace(to + " " + n.Message.To.Phone)
			case to == "":
				to = n.Channel
			}
			out[i].Notified = append(out[i].Notified, notified{Channel: n.Channel, To: to, Kind: n.Message.Kind, Status: string(n.Status)})
		}
	}
	notes, err := s.o.Notes.IncidentNotes(ctx, sess.TenantID, ids)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		for i := range out {
			if out[i].ID != n.IncidentID {
				continue
			}
			if n.Kind == "ack" {
				if out[i].Acked == nil {
					out[i].Acked = &n
				}
			} else {
				out[i].Notes = append(out[i].Notes, n)
			}
		}
	}
	return out, nil
}

// editableDoc is the target as the edit form shows it: the API's document
// without the fields the API sets itself.
func editableDoc(doc map[string]any) string {
	d := map[string]any{}
	for k, v := range doc {
		switch k {
		case "source", "paused", "created_at", "updated_at":
			continue
		}
		d[k] = v
	}
	b, _ := json.MarshalIndent(d, "", "  ")
	return string(b)
}

type editPage struct {
	ID, Doc string
	New     bool
	Problem *httpError
}

func (s *Server) getEditTarget(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := mux.Vars(r)["id"]
	_, doc, err := s.targetInfo(r.Context(), sess, id)
	if err != nil {
		return err
	}
	s.renderPage(w, r, sess, http.StatusOK, "edit", editPage{ID: id, Doc: editableDoc(doc)})
	return nil
}

const exampleTarget = `{
  "id": "example",
  "name": "Example",
  "kind": "http",
  "interval": "1m",
  "http": {"url": "https://example.com/"},
  "labels": {"team": "web"}
}`

func (s *Server) getNewTarget(w http.ResponseWriter, r *http.Request, sess *session) error {
	s.renderPage(w, r, sess, http.StatusOK, "edit", editPage{New: true, Doc: exampleTarget})
	return nil
}

// writeTarget sends the form's JSON to the API; a rejected document comes
// back to the form with the API's problem.
func (s *Server) writeTarget(w http.ResponseWriter, r *http.Request, sess *session, p editPage, method, path string) error {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	p.Doc = r.PostFormValue("doc")
	var created map[string]any
	err := s.call(r.Context(), sess, method, path, []byte(p.Doc), &created)
	var he *httpError
	if errors.As(err, &he) && he.Status < 500 && he.Status != http.StatusNotFound {
		p.Problem = he
		s.renderPage(w, r, sess, he.Status, "edit", p)
		return nil
	} else if err != nil {
		return err
	}
	id := p.ID
	if v, ok := created["id"].(string); ok {
		id = v
	}
	return seeOther(w, r, Prefix+"/targets/"+url.PathEscape(id))
}

func (s *Server) postEditTarget(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := mux.Vars(r)["id"]
	return s.writeTarget(w, r, sess, editPage{ID: id}, http.MethodPut, "/targets/"+url.PathEscape(id))
}

func (s *Server) postNewTarget(w http.ResponseWriter, r *http.Request, sess *session) error {
	return s.writeTarget(w, r, sess, editPage{New: true}, http.MethodPost, "/targets")
}

func (s *Server) postPause(pause bool) handler {
	action := "resume"
	if pause {
		action = "pause"
	}
	return func(w http.ResponseWriter, r *http.Request, sess *session) error {
		id := mux.Vars(r)["id"]
		if err := s.call(r.Context(), sess, http.MethodPost, "/targets/"+url.PathEscape(id)+"/"+action, nil, nil); err != nil {
			return err
		}
		return seeOther(w, r, Prefix+"/targets/"+url.PathEscape(id))
	}
}

func (s *Server) postDeleteTarget(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := mux.Vars(r)["id"]
	if err := s.call(r.Context(), sess, http.MethodDelete, "/targets/"+url.PathEscape(id), nil, nil); err != nil {
		return err
	}
	return seeOther(w, r, Prefix+"/")
}

// String helps templates print an SLA figure.
func (d slaDoc) String() string { return fmt.Sprint(formatPercent(d.UptimePercent)) }
