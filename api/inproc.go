package api

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/upwatch/upwatch/tenancy"
)

// In-process calls: the web interface reads and writes through the API's
// own handlers (same validation, audit, quotas and OnChange), as a
// Principal it authenticated itself (a signed-in user), so it never holds a
// copy of a rule. Nothing reachable over HTTP sets the principal: only Call.

type callerKey struct{}

// Call serves one API request (path relative to /api/v1, query included)
// as p, without an API key; the scope of the route is still checked. It
// returns the status, the Content-Type and the body.
func (s *Server) Call(ctx context.Context, p Principal, method, path string, body []byte) (int, string, []byte) {
	req, err := http.NewRequestWithContext(context.WithValue(ctx, callerKey{}, p), method, Prefix+path, bytes.NewReader(body))
	if err != nil {
		return http.StatusBadRequest, "text/plain", []byte(err.Error())
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.RemoteAddr = "in-process"
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	s.router.ServeHTTP(rec, req)
	return rec.status, rec.header.Get("Content-Type"), rec.body.Bytes()
}

// caller is the principal Call set, if any.
func caller(r *http.Request) (Principal, bool) {
	p, ok := r.Context().Value(callerKey{}).(Principal)
	return p, ok
}

// recorder is the response writer of an in-process call.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// TargetsOf lists every target of a tenant as the API sees them (config
// file targets for tenant "default" first), with the keys their samples and
// incidents are stored under.
func (s *Server) TargetsOf(ctx context.Context, tenantID string) ([]tenancy.TargetInfo, error) {
	return s.targetsOf(ctx, tenantID)
}

// TargetOf is one target of a tenant, or a 404 problem.
func (s *Server) TargetOf(ctx context.Context, tenantID, id string) (tenancy.TargetInfo, error) {
	return s.targetOf(ctx, tenantID, id)
}

// FailLimiter is the API's failed-authentication limiter, for the other
// front doors of the same server (the web sign-in): one source failing at
// both is counted once.
type FailLimiter struct{ a *authFailures }

// AuthFailures returns the limiter the API counts failed keys in.
func (s *Server) AuthFailures() FailLimiter { return FailLimiter{s.authFails} }

// Blocked says whether r's source has used up its failures and for how long.
func (f FailLimiter) Blocked(r *http.Request) (time.Duration, bool) {
	return f.a.blocked(f.a.source(r))
}

// Fail counts one failed authentication of r's source; reason is logged
// (never a secret).
func (f FailLimiter) Fail(r *http.Request, reason string) {
	f.a.fail(f.a.source(r), r.URL.Path, reason)
}
