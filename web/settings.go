package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/registry"
)

// objectKinds are the settings objects the API keeps: path below /api/v1
// and what the page calls them.
var objectKinds = []struct{ Path, Title, Example string }{
	{"contact-groups", "Contact groups", `{"name": "ops", "members": [{"name": "Ops", "email": "ops@example.com"}]}`},
	{"alert-policies", "Alert policies", `{"name": "default", "contact_groups": ["ops"], "channels": ["email"], "repeat_interval": "1h"}`},
	{"maintenance-windows", "Maintenance windows", `{"name": "upgrade", "start": "2030-01-01T02:00:00Z", "end": "2030-01-01T03:00:00Z"}`},
}

func knownKind(kind string) bool {
	for _, k := range objectKinds {
		if k.Path == kind {
			return true
		}
	}
	return false
}

type objectList struct {
	Path, Title, Example string
	Items                []objectItem
}

type objectItem struct {
	ID, JSON string
}

type keyItem struct {
	ID, Name, Prefix string
	Scopes           []string
	Revoked          bool
}

// reportKeyItem is a report key as the API lists it, never its secret.
type reportKeyItem struct {
	KID       string     `json:"kid"`
	CreatedAt time.Time  `json:"created_at"`
	Current   bool       `json:"current"`
	RetiredAt *time.Time `json:"retired_at"`
}

// newReportKey is the API's answer that creates a report key: its JWK,
// shown once.
type newReportKey struct {
	KID     string          `json:"kid"`
	JWK     json.RawMessage `json:"jwk"`
	Retired []string        `json:"retired"`
	Note    string          `json:"note"`
}

type settingsPage struct {
	Objects    []objectList
	Keys       []keyItem
	ReportKeys []reportKeyItem
	// NewReportKey is set right after a report key was created or
	// rotated: the only time its JWK is shown.
	NewReportKey *newReportKey
	Users        []registry.WebUser
	Roles        []Role
	Scopes       []api.Scope
	NewKey       string // shown once, right after creation
	Problem      *httpError
	UserName     string
}

func (s *Server) settings(r *http.Request, sess *session) (settingsPage, error) {
	ctx := r.Context()
	p := settingsPage{Roles: Roles, Scopes: api.Scopes}
	for _, k := range objectKinds {
		var l struct {
			Items []map[string]any `json:"items"`
		}
		if err := s.call(ctx, sess, http.MethodGet, "/"+k.Path, nil, &l); err != nil {
			return p, err
		}
		ol := objectList{Path: k.Path, Title: k.Title, Example: k.Example}
		for _, it := range l.Items {
			id, _ := it["id"].(string)
			b, _ := json.Marshal(it)
			ol.Items = append(ol.Items, objectItem{ID: id, JSON: string(b)})
		}
		p.Objects = append(p.Objects, ol)
	}
	var keys struct {
		Items []struct {
			ID        string   `json:"id"`
			Name      string   `json:"name"`
			Prefix    string   `json:"prefix"`
			Scopes    []string `json:"scopes"`
			RevokedAt *string  `json:"revoked_at"`
		} `json:"items"`
	}
	if err := s.call(ctx, sess, http.MethodGet, "/keys", nil, &keys); err != nil {
		return p, err
	}
	for _, k := range keys.Items {
		p.Keys = append(p.Keys, keyItem{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Scopes: k.Scopes, Revoked: k.RevokedAt != nil})
	}
	var rks struct {
		Items []reportKeyItem `json:"items"`
	}
	if err := s.call(ctx, sess, http.MethodGet, "/report-keys?limit=100", nil, &rks); err != nil {
		return p, err
	}
	p.ReportKeys = rks.Items
	users, err := s.o.Users.WebUsers(ctx, sess.TenantID)
	if err != nil {
		return p, err
	}
	p.Users = users
	return p, nil
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request, sess *session) error {
	p, err := s.settings(r, sess)
	if err != nil {
		return err
	}
	s.renderPage(w, r, sess, http.StatusOK, "settings", p)
	return nil
}

// showProblem renders the settings page again with a rejected form's
// problem, in the API's status.
func (s *Server) showProblem(w http.ResponseWriter, r *http.Request, sess *session, err error) error {
	var he *httpError
	if !errors.As(err, &he) || he.Status >= 500 {
		return err
	}
	p, perr := s.settings(r, sess)
	if perr != nil {
		return perr
	}
	p.Problem = he
	s.renderPage(w, r, sess, he.Status, "settings", p)
	return nil
}

func (s *Server) postCreateObject(w http.ResponseWriter, r *http.Request, sess *session) error {
	kind := mux.Vars(r)["kind"]
	if !knownKind(kind) {
		return notFound("kind of setting " + kind)
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := s.call(r.Context(), sess, http.MethodPost, "/"+kind, []byte(r.PostFormValue("doc")), nil); err != nil {
		return s.showProblem(w, r, sess, err)
	}
	return seeOther(w, r, Prefix+"/settings#"+kind)
}

func (s *Server) postDeleteObject(w http.ResponseWriter, r *http.Request, sess *session) error {
	v := mux.Vars(r)
	if !knownKind(v["kind"]) {
		return notFound("kind of setting " + v["kind"])
	}
	if err := s.call(r.Context(), sess, http.MethodDelete, "/"+v["kind"]+"/"+url.PathEscape(v["id"]), nil, nil); err != nil {
		return s.showProblem(w, r, sess, err)
	}
	return seeOther(w, r, Prefix+"/settings#"+v["kind"])
}

// postCreateKey issues an API key through the API and shows it once.
func (s *Server) postCreateKey(w http.ResponseWriter, r *http.Request, sess *session) error {
	in := map[string]any{"name": strings.TrimSpace(r.PostFormValue("name")), "scopes": r.PostForm["scopes"]}
	if in["scopes"] == nil {
		in["scopes"] = []string{}
	}
	body, _ := json.Marshal(in)
	var created struct {
		Key string `json:"key"`
	}
	if err := s.call(r.Context(), sess, http.MethodPost, "/keys", body, &created); err != nil {
		return s.showProblem(w, r, sess, err)
	}
	p, err := s.settings(r, sess)
	if err != nil {
		return err
	}
	p.NewKey = created.Key
	s.renderPage(w, r, sess, http.StatusCreated, "settings", p)
	return nil
}

func (s *Server) postRevokeKey(w http.ResponseWriter, r *http.Request, sess *session) error {
	if err := s.call(r.Context(), sess, http.MethodDelete, "/keys/"+url.PathEscape(mux.Vars(r)["id"]), nil, nil); err != nil {
		return s.showProblem(w, r, sess, err)
	}
	return seeOther(w, r, Prefix+"/settings#keys")
}

// postReportKey creates the tenant's first report key (action "create")
// or a new current one (action "rotate") through the API, and shows its
// JWK once; the API answers 409 to a second create.
func (s *Server) postReportKey(action string) handler {
	path := "/report-keys"
	if action == "rotate" {
		path += "/rotate"
	}
	return func(w http.ResponseWriter, r *http.Request, sess *session) error {
		var created newReportKey
		if err := s.call(r.Context(), sess, http.MethodPost, path, nil, &created); err != nil {
			return s.showProblem(w, r, sess, err)
		}
		p, err := s.settings(r, sess)
		if err != nil {
			return err
		}
		p.NewReportKey = &created
		w.Header().Set("Cache-Control", "no-store") // the secret is in the page
		s.renderPage(w, r, sess, http.StatusCreated, "settings", p)
		return nil
	}
}

// postCreateUser adds a user to the admin's tenant (NewUser's rules, as
// the CLI).
func (s *Server) postCreateUser(w http.ResponseWriter, r *http.Request, sess *session) error {
	u, err := newUser(sess.TenantID, strings.TrimSpace(r.PostFormValue("name")), Role(r.PostFormValue("role")),
		r.PostFormValue("password"), s.o.Now(), s.params, true)
	if err != nil {
		return s.showProblem(w, r, sess, fieldsProblem(err))
	}
	if err := s.o.Users.CreateWebUser(r.Context(), u); errors.Is(err, registry.ErrConflict) {
		return s.showProblem(w, r, sess, &httpError{Status: http.StatusConflict, Title: "Conflict", Detail: "user " + u.Name + " already exists"})
	} else if err != nil {
		return err
	}
	return seeOther(w, r, Prefix+"/settings#users")
}

func (s *Server) postDeleteUser(w http.ResponseWriter, r *http.Request, sess *session) error {
	name := mux.Vars(r)["name"]
	if name == sess.User {
		return s.showProblem(w, r, sess, &httpError{Status: http.StatusConflict, Title: "Conflict", Detail: "you cannot delete yourself; ask another admin"})
	}
	if err := s.o.Users.DeleteWebUser(r.Context(), sess.TenantID, name); errors.Is(err, registry.ErrNotFound) {
		return notFound("user " + name)
	} else if err != nil {
		return err
	}
	return seeOther(w, r, Prefix+"/settings#users")
}

// fieldsProblem turns NewUser's field errors into a 422.
func fieldsProblem(err error) error {
	he := &httpError{Status: http.StatusUnprocessableEntity, Title: "Invalid user", Detail: "the user was not created"}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var f invalid.Field
		if errors.As(e, &f) {
			he.Fields = append(he.Fields, api.FieldIssue{Path: f.Path, Message: f.Msg})
		} else {
			return err
		}
	}
	return he
}
