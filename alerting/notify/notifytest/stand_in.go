package notifytest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
)

// Request is one request a StandIn received.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// JSON decodes the body as a JSON object, failing t if it is not one.
func (r Request) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// StandIn is a provider stand-in on 127.0.0.1 that records every request
// and answers each with Status (200 if zero) and Body.
type StandIn struct {
	*httptest.Server
	Status int
	Body   string

	mu   sync.Mutex
	reqs []Request
}

// NewStandIn starts a StandIn, closed when t ends.
func NewStandIn(t testing.TB, status int, body string) *StandIn {
	s := &StandIn{Status: status, Body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: b})
		s.mu.Unlock()
		code := s.Status
		if code == 0 {
			code = http.StatusOK
		}
		if s.Body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, s.Body)
	}))
	t.Cleanup(s.Close)
	return s
}

// Requests returns what was received so far.
func (s *StandIn) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// Incident returns the DOWN and the UP message of one incident, rendered,
// to a recipient with dest (marshalled as JSON) on channel.
func Incident(t testing.TB, channel string, dest any) (down, up notify.Message) {
	t.Helper()
	b, err := json.Marshal(dest)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	down = notify.Message{
		Key: "a1b2c3d4e5f60708|down||" + channel + "|sha256:00", Kind: notify.KindDown, IncidentID: "a1b2c3d4e5f60708",
		TargetID: "t-3", TargetName: "API", TargetURL: "https://api.example/health",
		Cause: "HTTP 503", StartedAt: start, Link: "https://upwatch.example/i/a1b2c3d4e5f60708",
		Subject: "[upwatch] DOWN: API", Text: "API is down: HTTP 503",
		To: notify.Recipient{Name: "ops", Channel: channel, Endpoint: string(b)},
	}
	up = down
	up.Key = "a1b2c3d4e5f60708|up||" + channel + "|sha256:00"
	up.Kind = notify.KindUp
	up.Duration = 12*time.Minute + 30*time.Second
	up.Subject, up.Text = "[upwatch] UP: API is back up after 12m 30s", "API is up again after 12m 30s"
	return down, up
}

// To wraps n so every message goes to dest (marshalled as JSON) on
// channel: RetryTable with a destination that depends on the stand-in's
// address.
func To(t testing.TB, n notify.Notifier, channel string, dest any) notify.Notifier {
	b, err := json.Marshal(dest)
	if err != nil {
		t.Fatal(err)
	}
	return notifyFunc(func(ctx context.Context, m notify.Message) (bool, error) {
		m.To.Channel, m.To.Endpoint = channel, string(b)
		return n.Notify(ctx, m)
	})
}

type notifyFunc func(ctx context.Context, m notify.Message) (bool, error)

func (f notifyFunc) Notify(ctx context.Context, m notify.Message) (bool, error) { return f(ctx, m) }

// Deliver sends msgs through n, each of which must succeed with no retry
// asked for, and returns what s received: one POST per message.
func (s *StandIn) Deliver(t testing.TB, n notify.Notifier, msgs ...notify.Message) []Request {
	t.Helper()
	for _, m := range msgs {
		retry, err := n.Notify(t.Context(), m)
		if err != nil || retry {
			t.Fatalf("Notify(%s) = %v, %v; want false, nil", m.Kind, retry, err)
		}
	}
	reqs := s.Requests()
	if len(reqs) != len(msgs) {
		t.Fatalf("stand-in received %d requests, want %d", len(reqs), len(msgs))
	}
	for i, r := range reqs {
		if r.Method != http.MethodPost {
			t.Errorf("request %d: method %s, want POST", i, r.Method)
		}
	}
	return reqs
}
