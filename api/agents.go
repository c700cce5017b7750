package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
)

// AgentService is what the probe-agent routes need: membership and
// assignments (fleet.Fleet) and the ingestion of results. app wires it; a
// Server without one answers the agent routes 404.
type AgentService interface {
	Heartbeat(ctx context.Context, m fleet.Member) (fleet.Welcome, error)
	// Assignment waits up to wait for agent id's assignment to differ
	// from version since, and returns it; changed is false if it did not.
	Assignment(ctx context.Context, id, location, since string, wait time.Duration) (a fleet.Assignment, changed bool, err error)
	// Ingest takes a batch of results checked from location, each at most
	// once (by target, location and scheduled time).
	Ingest(ctx context.Context, location string, results []prober.Result) (fleet.BatchReply, error)
	// MaxBatch bounds the results of one push.
	MaxBatch() int
}

// Bounds of the agent routes.
const (
	// MaxAgentWait bounds a long poll for assignments, under the HTTP
	// server's write timeout.
	MaxAgentWait = 50 * time.Second
	// MaxBatchBytes bounds a pushed batch's body.
	MaxBatchBytes = 16 << 20
)

var agentIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s *Server) registerAgentRoutes(r *mux.Router) {
	s.route(r, http.MethodPost, "/agent/heartbeat", ScopeAgent, s.agentHeartbeat)
	s.route(r, http.MethodGet, "/agent/assignments", ScopeAgent, s.agentAssignments)
	s.route(r, http.MethodPost, "/agent/results", ScopeAgent, s.agentResults)
}

// agentLocation checks that agents are served, that the request carries a
// verified client certificate when the server requires one, and that p is
// bound to a location.
func (s *Server) agentLocation(r *http.Request, p Principal) (string, error) {
	if s.o.Agents == nil {
		return "", Problem(http.StatusNotFound, "Not Found", "this server does not take probe agents")
	}
	if s.o.AgentClientCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
		return "", Problem(http.StatusUnauthorized, "Unauthorized", "agents must present a client certificate signed by server.tls.client_ca_file")
	}
	if p.Location == "" {
		return "", Problem(http.StatusForbidden, "Forbidden", "this agent key has no location")
	}
	return p.Location, nil
}

func (s *Server) agentHeartbeat(w http.ResponseWriter, r *http.Request, p Principal) error {
	loc, err := s.agentLocation(r, p)
	if err != nil {
		return err
	}
	var in fleet.Hello
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	var errs []invalid.Field
	if !agentIDPattern.MatchString(in.ID) {
		errs = append(errs, invalid.Field{Path: "id", Msg: "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"})
	}
	for path, v := range map[string]string{"name": in.Name, "version": in.Version} {
		if len(v) > 200 {
			errs = append(errs, invalid.Field{Path: path, Msg: "must be at most 200 characters"})
		}
		errs = append(errs, prober.CheckText(path, v)...)
	}
	if len(errs) > 0 {
		return ValidationProblem(errs)
	}
	wel, err := s.o.Agents.Heartbeat(r.Context(), fleet.Member{ID: in.ID, Location: loc, Name: in.Name, Version: in.Version, KeyID: p.KeyID})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wel)
	return nil
}

// agentAssignments answers the agent's targets: at once without since,
// else once they differ from version since or wait has passed (then with
// unchanged true and no targets).
func (s *Server) agentAssignments(w http.ResponseWriter, r *http.Request, p Principal) error {
	loc, err := s.agentLocation(r, p)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	id, since := q.Get("agent"), q.Get("since")
	var errs []invalid.Field
	if !agentIDPattern.MatchString(id) {
		errs = append(errs, invalid.Field{Path: "agent", Msg: "must be the id the agent heartbeats with"})
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil || wait < 0 || wait > MaxAgentWait {
			errs = append(errs, invalid.Field{Path: "wait", Msg: fmt.Sprintf("must be a duration between 0s and %s", MaxAgentWait)})
		}
	}
	if since == "" {
		wait = 0
	}
	if len(errs) > 0 {
		return ValidationProblem(errs)
	}
	a, changed, err := s.o.Agents.Assignment(r.Context(), id, loc, since, wait)
	switch {
	case errors.Is(err, fleet.ErrNotLive):
		return Problem(http.StatusConflict, "Conflict", "agent "+id+" has no live heartbeat in location "+loc+"; heartbeat first")
	case err != nil:
		return err
	}
	if !changed && since != "" {
		a.Targets, a.Unchanged = nil, true
	}
	if a.Targets == nil {
		a.Targets = []fleet.WireTarget{}
	}
	writeSecretJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) agentResults(w http.ResponseWriter, r *http.Request, p Principal) error {
	loc, err := s.agentLocation(r, p)
	if err != nil {
		return err
	}
	if here, err := s.routeResults(w, r); !here {
		return err
	}
	var in fleet.Batch
	if err := decodeJSONLimit(r, &in, MaxBatchBytes); err != nil {
		return err
	}
	if n, max := len(in.Results), s.o.Agents.MaxBatch(); n > max {
		return Problem(http.StatusRequestEntityTooLarge, "Content Too Large", fmt.Sprintf("results: %d results in one batch; at most %d", n, max))
	}
	var errs []invalid.Field
	for i, res := range in.Results {
		path := fmt.Sprintf("results[%d]", i)
		switch {
		case res.TargetID == "":
			errs = append(errs, invalid.Field{Path: path + ".target_id", Msg: "is required"})
		case res.Scheduled.IsZero():
			errs = append(errs, invalid.Field{Path: path + ".scheduled", Msg: "is required"})
		case res.Location != loc:
			errs = append(errs, invalid.Field{Path: path + ".location", Msg: fmt.Sprintf("must be this agent key's location %q", loc)})
		}
		if len(errs) >= 20 {
			break
		}
	}
	if len(errs) > 0 {
		return ValidationProblem(errs)
	}
	reply, err := s.o.Agents.Ingest(r.Context(), loc, in.Results)
	if errors.Is(err, ErrNoResultsServer) {
		w.Header().Set("Retry-After", forwardRetryAfter)
		return Problem(http.StatusServiceUnavailable, "Service Unavailable", err.Error()+"; retry")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reply)
	return nil
}
