package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/registry"
)

type incidentsPage struct {
	Open, Past []incidentView
}

// getIncidents lists the open incidents and the newest past ones of every
// target of the tenant, with their notes.
func (s *Server) getIncidents(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	var all incidentsDoc
	if err := s.call(ctx, sess, http.MethodGet, "/incidents?limit=200", nil, &all); err != nil {
		return err
	}
	views, err := s.incidentViews(ctx, sess, all.Incidents, false)
	if err != nil {
		return err
	}
	var p incidentsPage
	for _, v := range views {
		if v.Open {
			p.Open = append(p.Open, v)
		} else {
			p.Past = append(p.Past, v)
		}
	}
	s.renderPage(w, r, sess, http.StatusOK, "incidents", p)
	return nil
}

// MaxNoteLen bounds a note on an incident (bytes).
const MaxNoteLen = 4000

// postIncidentNote records a note with the user's name. The incident must
// be one of the tenant's (the API's incident list is scoped to it).
func (s *Server) postIncidentNote(w http.ResponseWriter, r *http.Request, sess *session) error {
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	text := strings.TrimSpace(r.PostFormValue("text"))
	if text == "" || len(text) > MaxNoteLen || !utf8.ValidString(text) {
		return &httpError{Status: http.StatusUnprocessableEntity, Title: "Invalid note",
			Detail: "A note must be 1 to 4000 characters of text."}
	}
	var all incidentsDoc
	if err := s.call(ctx, sess, http.MethodGet, "/incidents?limit=1000", nil, &all); err != nil {
		return err
	}
	if !slices.ContainsFunc(all.Incidents, func(inc incidentDoc) bool { return inc.ID == id }) {
		return notFound("incident " + id)
	}
	if err := s.o.Notes.AddIncidentNote(ctx, registry.IncidentNote{TenantID: sess.TenantID, IncidentID: id,
		UserName: sess.User, Kind: "note", Text: text, At: s.o.Now()}); err != nil {
		return err
	}
	return seeOther(w, r, back(r))
}

// postIncidentAck acknowledges an open incident through the API, which
// records the user and stops its reminders and escalations; the first
// acknowledgement stands.
func (s *Server) postIncidentAck(w http.ResponseWriter, r *http.Request, sess *session) error {
	id := mux.Vars(r)["id"]
	if err := s.call(r.Context(), sess, http.MethodPost, "/incidents/"+url.PathEscape(id)+"/ack", nil, nil); err != nil {
		return err
	}
	return seeOther(w, r, back(r))
}

// back is the form's "back" field when it is one of our pages.
func back(r *http.Request) string {
	b := r.PostFormValue("back")
	if u, err := url.Parse(b); b == "" || err != nil || u.Host != "" || u.Scheme != "" {
		return Prefix + "/incidents"
	}
	return safeNext(b)
}
