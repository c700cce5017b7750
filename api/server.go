// Package api is upwatch's REST API under /api/v1 (DESIGN §3, §5): API
// keys and tenants, targets, contact groups, alert policies, maintenance
// windows, the status board, history, SLA and encrypted reports, described
// by the OpenAPI document at /api/v1/openapi.json. It reads and writes
// through small interfaces it declares itself, one per resource (Stores,
// IncidentReader, tsdb.Reader); app wires the real stores in. What tenants
// keep (targets, sealed credentials, object kinds, config-as-code plans)
// is package tenancy's; SLA inputs are package slainput's.
//
// # Extension points (for handlers in other files of this package)
//
//   - Register a route with s.route(r, method, path, scope, h): path is
//     relative to /api/v1 ("/targets/{id}/sla"), scope is the one the key
//     needs (ScopeRead, ScopeWrite, ScopeAdmin, ScopeReports; ScopePublic
//     for none), h is a handlerFunc that gets the authenticated Principal and
//     returns an error. s.route handles authentication, scope, the per-key
//     rate limit and turns errors into RFC 9457 problem details. Every route
//     registered this way is in the authorization-matrix test automatically.
//   - History, SLA, export and report routes go in registerDataRoutes
//     (routes_data.go).
//   - Errors: return Problem(status, title, detail), ValidationProblem(errs)
//     (422 with errors[].path) or any other error (500, logged, not shown).
//   - Input: decodeJSON(r, &v) (1 MiB limit → 413, nesting > MaxDepth → 400, unknown field → 400,
//     Content-Type not JSON → 415, syntax → 400). Output: writeJSON(w, status, v).
//   - A target of the caller's tenant: s.targetOf(ctx, p.TenantID, id)
//     returns tenancy.TargetInfo or a 404 problem (also for another tenant's
//     target); s.targetsOf(ctx, p.TenantID) lists them all (config-file
//     targets belong to tenant "default", Source "config").
//   - Report keys: s.o.ReportKeys.CreateReportKey / ReportKeys (newest
//     first) / ReportKeyInfos / RetireReportKey. The store seals the secret with the
//     master key (registry.SQLiteOptions.MasterKey; AAD = tenant + kid), so the
//     API handles report.Key values in clear and must never log or return
//     the secret except once, as a JWK, on creation.
//   - OpenAPI: each file api/openapi/*.yaml is a fragment (core.yaml holds
//     openapi/info/security); their paths (full, "/api/v1/...") and
//     components.schemas/responses/parameters are merged, duplicate keys are
//     an error. Error responses use $ref: '#/components/responses/Problem'.
//   - Tests: newHarness(t) in harness_test.go serves a Server over httptest
//     with a real SQLite registry and sample store, two tenants ("default",
//     "other") with a key of every scope, and validates every response
//     against the served OpenAPI document.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/sla/slainput"
	"github.com/upwatch/upwatch/tsdb"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// RateLimit is a per-key token bucket: RPS requests a second on average,
// Burst at once.
type RateLimit struct {
	RPS   float64
	Burst int
}

// DefaultRateLimit is used when Options.RateLimit is zero.
var DefaultRateLimit = RateLimit{RPS: 20, Burst: 40}

// IncidentReader lists incidents (registry.Registry does). Without one the
// incident and SLA routes answer 503.
type IncidentReader interface {
	Incidents(ctx context.Context, q registry.IncidentQuery) ([]alerting.Incident, error)
}

// LocationEventReader lists the probe locations' events, newest first
// (registry.Registry does). Without one GET /location-events answers 503.
type LocationEventReader interface {
	LocationEvents(ctx context.Context, limit int) ([]alerting.LocationEvent, error)
}

// Options configure a Server. Every one of Stores is required.
type Options struct {
	Stores
	Samples   tsdb.Reader
	Incidents IncidentReader
	// Acks records acknowledgements of incidents.
	Acks IncidentAcker
	// LocationEvents are the alert engine's events about probe locations.
	LocationEvents LocationEventReader
	// States gives a target's alert state (alerting.Engine.State).
	States func(targetID string) (alerting.State, bool)
	// MasterKey seals target credentials (AAD = tenant id + target id).
	MasterKey crypt.MasterKey
	// Config returns the running config: its targets, contact groups,
	// policies and windows belong to tenant "default" and are read-only
	// here; its alerting providers decide which channels policies may use.
	// Nil means an empty config.
	Config func() *config.Config
	Logger *slog.Logger
	Now    func() time.Time
	// OnChange is called after a target, group, policy or maintenance write
	// so the running scheduler and engine pick it up.
	OnChange func(tenantID string)
	// RateLimit per API key; zero uses DefaultRateLimit.
	RateLimit RateLimit
	// AuthFailures bounds failed authentications per source address; zero
	// fields use DefaultAuthFailureLimit. Its window runs on Now.
	AuthFailures AuthFailureLimit
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client that failed authentication; from any other peer the
	// header is ignored.
	TrustedProxies []netip.Prefix
	// Agents serves probe agents (the /agent routes); nil answers them 404.
	Agents AgentService
	// AgentClientCert makes the agent routes refuse requests without a
	// client certificate the TLS layer verified (mTLS), besides the key.
	AgentClientCert bool
	// ResultsRoute, if set, says where a push of agent results goes: nil
	// while this server takes them, else the base URL of the server that
	// does (it is forwarded there); ErrNoResultsServer while none does
	// (refused 503 with Retry-After). Nil: this server takes them all.
	ResultsRoute func(ctx context.Context) (*url.URL, error)
}

// Server is the API. Build it with New; serve Handler.
type Server struct {
	o      Options
	log    *slog.Logger
	doc    []byte // the OpenAPI document as JSON
	router *mux.Router
	// queryParams are each documented operation's query parameters
	// ("GET /api/v1/targets" → label, source, format): others are refused.
	queryParams map[string][]string

	limiter   *limiter
	authFails *authFailures
	writes    tenantWrites // quota check and store write of a tenant's targets, one at a time
	forward   http.Handler // agent results to the alerting lease holder
	sla       *slainput.Reader

	mu     sync.Mutex
	routes map[string]Scope // "METHOD /api/v1/path" → scope, for tests
	// touched remembers when each key's last_used_at was last written, so a
	// busy key costs one write a minute, not one per request.
	touched map[string]time.Time
}

// New builds the API.
func New(o Options) (*Server, error) {
	if name := o.Stores.missing(); name != "" {
		return nil, errors.New("api: no " + name + " store")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.OnChange == nil {
		o.OnChange = func(string) {}
	}
	if o.States == nil {
		o.States = func(string) (alerting.State, bool) { return alerting.State{}, false }
	}
	if o.Config == nil {
		empty := &config.Config{}
		o.Config = func() *config.Config { return empty }
	}
	if o.RateLimit.RPS <= 0 || o.RateLimit.Burst <= 0 {
		o.RateLimit = DefaultRateLimit
	}
	doc, err := openAPIDocument()
	if err != nil {
		return nil, fmt.Errorf("api: OpenAPI document: %w", err)
	}
	params, err := queryParams(doc)
	if err != nil {
		return nil, fmt.Errorf("api: OpenAPI document: %w", err)
	}
	s := &Server{
		o: o, log: o.Logger, doc: doc, queryParams: params,
		limiter:   newLimiter(o.RateLimit, o.Now),
		authFails: newAuthFailures(o.AuthFailures, o.TrustedProxies, o.Now, o.Logger),
		sla:       slainput.New(o.Samples, o.Incidents, o.Now),
		routes:    map[string]Scope{}, touched: map[string]time.Time{},
	}
	s.forward = newResultsProxy(s)
	s.router = s.buildRouter()
	return s, nil
}

// Handler serves everything under /api/v1.
func (s *Server) Handler() http.Handler { return s.router }

func (s *Server) buildRouter() *mux.Router {
	notFound := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem(http.StatusNotFound, "Not Found", "no such resource: "+r.URL.Path).(*ProblemError))
	})
	notAllowed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem(http.StatusMethodNotAllowed, "Method Not Allowed", r.Method+" is not allowed on "+r.URL.Path).(*ProblemError))
	})
	root := mux.NewRouter()
	root.NotFoundHandler, root.MethodNotAllowedHandler = notFound, notAllowed
	// Routes are registered on the root with Prefix prepended: a PathPrefix
	// subrouter answers 404 instead of 405 for a method mismatch
	// (gorilla/mux #509).
	r := root
	s.route(r, http.MethodGet, "/openapi.json", ScopePublic, s.getOpenAPI)
	s.registerCoreRoutes(r)
	s.registerObjectRoutes(r)
	s.registerDataRoutes(r)
	s.registerAgentRoutes(r)
	s.registerStatusPageRoutes(r)
	return root
}

// handlerFunc is an API handler: p is the authenticated caller; a returned
// error becomes a problem document.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p Principal) error

// route registers h on r (the API's root router) for method and path
// (relative to /api/v1: route prepends Prefix), requiring scope
// (ScopePublic: no key).
func (s *Server) route(r *mux.Router, method, path string, scope Scope, h handlerFunc) {
	s.mu.Lock()
	s.routes[method+" "+Prefix+path] = scope
	s.mu.Unlock()
	if allowed, documented := s.queryParams[method+" "+Prefix+path]; documented {
		inner := h
		h = func(w http.ResponseWriter, r *http.Request, p Principal) error {
			if err := unknownQuery(r, allowed); err != nil {
				return err
			}
			return inner(w, r, p)
		}
	}
	r.Handle(Prefix+path, s.wrap(scope, h)).Methods(method)
}

// RouteScopes returns every registered route ("METHOD /api/v1/path") with
// the scope it needs.
func (s *Server) RouteScopes() map[string]Scope {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Scope, len(s.routes))
	for k, v := range s.routes {
		out[k] = v
	}
	return out
}

// Routes lists the registered routes, sorted.
func (s *Server) Routes() []string {
	m := s.RouteScopes()
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (s *Server) wrap(scope Scope, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, inProcess := caller(r)
		if inProcess {
			if scope != ScopePublic && !p.Has(scope) {
				s.fail(w, r, Problem(http.StatusForbidden, "Forbidden", fmt.Sprintf("this role lacks the %q scope", scope)))
				return
			}
		} else if scope != ScopePublic {
			src := s.authFails.source(r)
			if wait, blocked := s.authFails.blocked(src); blocked {
				s.tooMany(w, r, wait, "too many failed authentications from this address")
				return
			}
			var err error
			if p, err = s.authenticate(r); err != nil {
				var pe *ProblemError
				if errors.As(err, &pe) && pe.Status == http.StatusUnauthorized {
					s.authFails.fail(src, r.URL.Path, pe.Detail)
				}
				s.fail(w, r, err)
				return
			}
			if !p.Has(scope) {
				s.fail(w, r, Problem(http.StatusForbidden, "Forbidden", fmt.Sprintf("this key lacks the %q scope", scope)))
				return
			}
			if wait, ok := s.limiter.allow(p.KeyID); !ok {
				s.tooMany(w, r, wait, "rate limit of this key exceeded")
				return
			}
		}
		if err := h(w, r, p); err != nil {
			s.fail(w, r, err)
		}
	})
}

// tooMany answers 429 with Retry-After (whole seconds, at least 1).
func (s *Server) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, why string) {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	s.fail(w, r, Problem(http.StatusTooManyRequests, "Too Many Requests", fmt.Sprintf("%s; retry in %d s", why, secs)))
}

// fail writes err as a problem; errors that are not problems are logged and
// answered 500 without detail.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *ProblemError
	if !errors.As(err, &pe) {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		pe = Problem(http.StatusInternalServerError, "Internal Server Error", "the request could not be completed; see the server log").(*ProblemError)
	}
	writeProblem(w, r, pe)
}

func (s *Server) getOpenAPI(w http.ResponseWriter, _ *http.Request, _ Principal) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, err := w.Write(s.doc)
	return err
}
