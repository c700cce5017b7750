package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"
)

// Of several servers sharing a registry only the alerting lease holder
// evaluates alerts, so a push of agent results that reaches another server
// (through a load balancer) is handed to the holder as it came, with the
// agent's own Authorization: the holder authenticates it again, claims the
// results and evaluates them. While no holder is known, or it cannot be
// reached, the push is refused 503 with Retry-After: the agent keeps the
// batch in its spool and sends it again.

// ForwardedHeader marks a push one server forwarded to another. A server
// that gets a forwarded push it would forward again (the lease moved
// meanwhile) refuses it instead: a push is forwarded at most once.
const ForwardedHeader = "Upwatch-Forwarded"

// ErrNoResultsServer is a ResultsRoute's answer while no server takes
// agent results (the alerting lease is between holders).
var ErrNoResultsServer = errors.New("no server evaluates alerts right now")

// Bounds of a forwarded push.
const (
	// ForwardTimeout bounds one forwarded push, answer included.
	ForwardTimeout = 30 * time.Second
	// forwardRetryAfter is what a refused push is told to wait.
	forwardRetryAfter = "1"
)

// newResultsProxy forwards pushes to the base URL the request's context
// carries (see forwardResults).
func newResultsProxy(s *Server) *httputil.ReverseProxy {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			to := pr.In.Context().Value(forwardKey{}).(*url.URL)
			pr.SetURL(to) // joins to's path prefix with /api/v1/agent/results
			pr.Out.Header.Set(ForwardedHeader, "1")
			pr.SetXForwarded()
		},
		// Servers talk to each other directly, never through an outbound
		// proxy; each forward waits at most ForwardTimeout in all.
		Transport: &http.Transport{
			DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second,
			ResponseHeaderTimeout: ForwardTimeout, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.fail(w, r, Problem(http.StatusRequestEntityTooLarge, "Content Too Large", "the body is too large"))
				return
			}
			s.log.Warn("forwarding agent results to the server that evaluates alerts failed; the agent retries", "err", err)
			w.Header().Set("Retry-After", forwardRetryAfter)
			s.fail(w, r, Problem(http.StatusServiceUnavailable, "Service Unavailable",
				"the server that evaluates alerts did not take the results; retry"))
		},
	}
}

type forwardKey struct{}

// routeResults says whether this server takes a push of results itself
// (true) or has handled it: forwarded it to the lease holder, or refused
// it 503 with Retry-After.
func (s *Server) routeResults(w http.ResponseWriter, r *http.Request) (here bool, err error) {
	if s.o.ResultsRoute == nil {
		return true, nil
	}
	to, err := s.o.ResultsRoute(r.Context())
	if err == nil && to == nil {
		return true, nil
	}
	detail := "no server evaluates alerts right now (the alerting lease is changing hands); retry"
	switch {
	case err != nil && !errors.Is(err, ErrNoResultsServer):
		s.log.Warn("finding the server that evaluates alerts", "err", err)
	case err == nil && r.Header.Get(ForwardedHeader) != "":
		detail = "this server no longer evaluates alerts; retry"
	case err == nil:
		ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), forwardKey{}, to), ForwardTimeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, MaxBatchBytes)
		s.forward.ServeHTTP(w, r)
		return false, nil
	}
	w.Header().Set("Retry-After", forwardRetryAfter)
	return false, Problem(http.StatusServiceUnavailable, "Service Unavailable", detail)
}
