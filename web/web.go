// Package web is upwatch's signed-in web interface at / and /ui/ (DESIGN
// §3): a dashboard of every target, a page per target, incidents and, for
// admins, settings. Pages are server-rendered html/template with the
// static files (htmx, CSS, a small script) embedded; they work without
// JavaScript where they can, and htmx only refreshes the dashboard's rows.
//
// Users sign in per tenant with a password (argon2id); their role maps
// onto the API's scopes, and every read and write goes through the API's
// own handlers in-process (api.Server.Call) as that user, so validation,
// quotas, audit and the scheduler's reload are the API's, never a copy.
// Sessions are random tokens in an HttpOnly, SameSite=Lax cookie, stored
// as their SHA-256; every form carries the session's CSRF token.
//
// Markup contract for browser tests: pages carry data-page="…", target
// rows data-target="<id>" and data-status="<status>", incidents
// data-incident="<id>", forms ids named after their action.
package web

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
	"github.com/upwatch/upwatch/tsdb"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// API is what the web interface needs of the REST API (api.Server).
type API interface {
	// Call serves one API request in-process as p.
	Call(ctx context.Context, p api.Principal, method, path string, body []byte) (status int, contentType string, body2 []byte)
	// TargetsOf lists a tenant's targets with their storage keys.
	TargetsOf(ctx context.Context, tenantID string) ([]tenancy.TargetInfo, error)
}

// Limiter counts failed sign-ins per source (api.FailLimiter).
type Limiter interface {
	Blocked(r *http.Request) (time.Duration, bool)
	Fail(r *http.Request, reason string)
}

// UserStore holds the users (registry.Registry).
type UserStore interface {
	CreateWebUser(ctx context.Context, u registry.WebUser) error
	DeleteWebUser(ctx context.Context, tenantID, name string) error
	WebUser(ctx context.Context, tenantID, name string) (registry.WebUser, error)
	WebUsers(ctx context.Context, tenantID string) ([]registry.WebUser, error)
}

// SessionStore holds the sessions, by the SHA-256 of their token.
type SessionStore interface {
	CreateWebSession(ctx context.Context, s registry.WebSession) error
	WebSession(ctx context.Context, hash []byte) (registry.WebSession, error)
	DeleteWebSession(ctx context.Context, hash []byte) error
	DeleteWebSessions(ctx context.Context, tenantID, userName string) error
	DeleteExpiredWebSessions(ctx context.Context, now time.Time) (int64, error)
}

// NoteStore holds notes and acknowledgements on incidents.
type NoteStore interface {
	AddIncidentNote(ctx context.Context, n registry.IncidentNote) error
	IncidentNotes(ctx context.Context, tenantID string, incidentIDs []string) ([]registry.IncidentNote, error)
}

// NotificationReader lists the outbox (who was notified of an incident).
type NotificationReader interface {
	Notifications(ctx context.Context, q registry.NotificationQuery) ([]alerting.Notification, error)
}

// Options configure a Server. API, Samples, Users, Sessions, Notes and
// Notifications are required.
type Options struct {
	API           API
	Samples       tsdb.Reader
	Users         UserStore
	Sessions      SessionStore
	Notes         NoteStore
	Notifications NotificationReader
	// States gives a target's alert state by its key (alerting.Engine.State).
	States func(key string) (alerting.State, bool)
	// SignIn limits failed sign-ins per source; nil: no limit.
	SignIn Limiter
	// Web is the config's web section (public URL, session lifetime).
	Web config.Web
	// Demo says the read-only user demo/demo exists (see EnsureDemoUser).
	Demo   bool
	Now    func() time.Time
	Logger *slog.Logger
}

// Server is the web interface. Build it with New; serve Handler.
type Server struct {
	o      Options
	log    *slog.Logger
	pages  *pages
	router *mux.Router
	secure bool // cookies are Secure even on a plain HTTP request
	hours  hourCache
	params argonParams
}

// New builds the web interface.
func New(o Options) (*Server, error) {
	if o.API == nil || o.Samples == nil || o.Users == nil || o.Sessions == nil || o.Notes == nil || o.Notifications == nil {
		return nil, errors.New("web: API, Samples, Users, Sessions, Notes and Notifications are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.States == nil {
		o.States = func(string) (alerting.State, bool) { return alerting.State{}, false }
	}
	if o.Web.SessionTTL <= 0 {
		o.Web.SessionTTL = config.DefaultSessionTTL
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, log: o.Logger, pages: p, params: defaultParams}
	if u, err := url.Parse(o.Web.PublicURL); err == nil && u.Scheme == "https" {
		s.secure = true
	}
	s.router = s.buildRouter()
	return s, nil
}

// Handler serves / and /ui/.
func (s *Server) Handler() http.Handler { return s.router }

// Prefix is where the pages live; "/" redirects to the dashboard.
const Prefix = "/ui"

func (s *Server) buildRouter() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, nil, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, nil, http.StatusMethodNotAllowed, "Method not allowed", r.Method+" is not allowed here.")
	})
	r.Handle("/", http.RedirectHandler(Prefix+"/", http.StatusSeeOther)).Methods(http.MethodGet, http.MethodHead)
	static, _ := fs.Sub(staticFS, "static")
	r.PathPrefix(Prefix+"/static/").Handler(cacheForever(http.StripPrefix(Prefix+"/static/", http.FileServerFS(static)))).Methods(http.MethodGet, http.MethodHead)

	r.HandleFunc(Prefix+"/signin", s.getSignIn).Methods(http.MethodGet)
	r.HandleFunc(Prefix+"/signin", s.postSignIn).Methods(http.MethodPost)
	s.page(r, "POST", "/signout", RoleViewer, s.postSignOut)
	s.page(r, "POST", "/signout-everywhere", RoleViewer, s.postSignOutEverywhere)

	s.page(r, "GET", "/", RoleViewer, s.getDashboard)
	s.page(r, "GET", "/fragments/targets", RoleViewer, s.getDashboardRows)
	s.page(r, "GET", "/targets/new", RoleEditor, s.getNewTarget)
	s.page(r, "POST", "/targets/new", RoleEditor, s.postNewTarget)
	s.page(r, "GET", "/targets/{id}", RoleViewer, s.getTarget)
	s.page(r, "GET", "/targets/{id}/edit", RoleEditor, s.getEditTarget)
	s.page(r, "POST", "/targets/{id}/edit", RoleEditor, s.postEditTarget)
	s.page(r, "POST", "/targets/{id}/pause", RoleEditor, s.postPause(true))
	s.page(r, "POST", "/targets/{id}/resume", RoleEditor, s.postPause(false))
	s.page(r, "POST", "/targets/{id}/delete", RoleEditor, s.postDeleteTarget)

	s.page(r, "GET", "/incidents", RoleViewer, s.getIncidents)
	s.page(r, "POST", "/incidents/{id}/ack", RoleEditor, s.postIncidentAck)
	s.page(r, "POST", "/incidents/{id}/notes", RoleEditor, s.postIncidentNote)

	s.page(r, "GET", "/settings", RoleAdmin, s.getSettings)
	s.page(r, "POST", "/settings/keys", RoleAdmin, s.postCreateKey)
	s.page(r, "POST", "/settings/keys/{id}/revoke", RoleAdmin, s.postRevokeKey)
	s.page(r, "POST", "/settings/users", RoleAdmin, s.postCreateUser)
	s.page(r, "POST", "/settings/users/{name}/delete", RoleAdmin, s.postDeleteUser)
	s.page(r, "POST", "/settings/report-keys", RoleAdmin, s.postReportKey("create"))
	s.page(r, "POST", "/settings/report-keys/rotate", RoleAdmin, s.postReportKey("rotate"))
	s.page(r, "POST", "/settings/{kind}", RoleAdmin, s.postCreateObject)
	s.page(r, "POST", "/settings/{kind}/{id}/delete", RoleAdmin, s.postDeleteObject)
	return r
}

// cacheForever marks the embedded files immutable for a day: they change
// only with the binary.
func cacheForever(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// handler is a page: sess is the signed-in user; a returned error becomes
// an error page (an *httpError keeps its status).
type handler func(w http.ResponseWriter, r *http.Request, sess *session) error

// page registers h for method and path (below Prefix), for users whose
// role is at least min. Anonymous visitors are sent to the sign-in page;
// a POST must carry the session's CSRF token.
func (s *Server) page(r *mux.Router, method, path string, min Role, h handler) {
	r.Handle(Prefix+path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, err := s.session(r)
		if err != nil {
			s.fail(w, r, nil, err)
			return
		}
		if sess == nil {
			target := Prefix + "/signin"
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, Prefix+"/fragments/") {
				target += "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			if r.Header.Get("HX-Request") != "" {
				w.Header().Set("HX-Redirect", target)
			}
			http.Redirect(w, r, target, http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !sess.validCSRF(r.PostFormValue(csrfField)) {
			s.renderError(w, r, sess, http.StatusForbidden, "Forbidden", "The form's security token is missing or stale; reload the page and try again.")
			return
		}
		if !sess.Role.atLeast(min) {
			s.renderError(w, r, sess, http.StatusForbidden, "Forbidden", "Your role ("+string(sess.Role)+") may not do this; ask an admin.")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		if err := h(w, r, sess); err != nil {
			s.fail(w, r, sess, err)
		}
	})).Methods(method)
}

// httpError is an error page with a status.
type httpError struct {
	Status        int
	Title, Detail string
	Fields        []api.FieldIssue
}

func (e *httpError) Error() string { return e.Title + ": " + e.Detail }

func notFound(what string) error {
	return &httpError{Status: http.StatusNotFound, Title: "Not found", Detail: "There is no " + what + " here."}
}

// fail renders err; errors that are not *httpError are logged and shown
// without detail.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		s.log.Error("web request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		he = &httpError{Status: http.StatusInternalServerError, Title: "Something went wrong", Detail: "The request could not be completed; see the server log."}
	}
	s.renderPage(w, r, sess, he.Status, "error", errorPage{Title: he.Title, Detail: he.Detail, Fields: he.Fields})
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, sess *session, status int, title, detail string) {
	s.fail(w, r, sess, &httpError{Status: status, Title: title, Detail: detail})
}

type errorPage struct {
	Title, Detail string
	Fields        []api.FieldIssue
}

// seeOther answers a successful form with a redirect (post/redirect/get).
func seeOther(w http.ResponseWriter, r *http.Request, to string) error {
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}
