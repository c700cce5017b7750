// Package notifytest holds what every notifier's tests share: a table of
// provider failures each HTTP notifier must classify the same way, and an
// assertion that a secret reaches no error, printout or log.
package notifytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
)

// NewFunc builds the notifier under test, pointed at baseURL (an httptest
// server on 127.0.0.1).
type NewFunc func(t *testing.T, baseURL string) notify.Notifier

// Case is one provider behaviour and how a notifier must classify it.
type Case struct {
	Name    string
	Handler http.HandlerFunc
	Retry   bool
	// RetryAfter, if not zero, is the *notify.RetryAfterError duration the
	// error must carry.
	RetryAfter time.Duration
	// Timeout, if not zero, bounds the Notify call's context.
	Timeout time.Duration
}

func status(code int, contentType, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// garbage is what a broken proxy might answer: binary, invalid UTF-8,
// truncated JSON.
const garbage = "\x00\xff\xfe{\"code\": 2\x1b[31m<html><body>oops"

// Cases returns the failure table; a hanging handler returns when hang is
// closed or the client goes away. Cases: 400 and 401 permanent; 429 with
// Retry-After (seconds and HTTP-date) and 500 retried; a 503 with a garbage
// body and a 400 with a garbage body; a huge error body; a connection
// closed mid-answer; a server that never answers (retried, within the
// context deadline).
func Cases(hang <-chan struct{}) []Case {
	date := time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)
	return []Case{
		{Name: "400", Handler: status(400, "application/json", `{"code":21211,"message":"bad request","errors":[{"message":"bad request"}]}`)},
		{Name: "401", Handler: status(401, "application/json", `{"code":20003,"message":"Authenticate","errors":[{"message":"authorization failed"}]}`)},
		{Name: "403", Handler: status(403, "text/plain", "forbidden")},
		{Name: "429 retry-after seconds", Handler: status(429, "application/json", `{"message":"slow down"}`, "Retry-After", "7"),
			Retry: true, RetryAfter: 7 * time.Second},
		{Name: "429 retry-after date", Handler: status(429, "", "", "Retry-After", date),
			Retry: true, RetryAfter: -1},
		{Name: "429 without retry-after", Handler: status(429, "", ""), Retry: true},
		{Name: "408", Handler: status(408, "", ""), Retry: true},
		{Name: "500", Handler: status(500, "text/plain", "internal error"), Retry: true},
		{Name: "503 garbage", Handler: status(503, "application/json", garbage), Retry: true},
		{Name: "400 garbage", Handler: status(400, "application/json", garbage)},
		{Name: "500 huge body", Handler: status(500, "text/plain", strings.Repeat("x", 4<<20)), Retry: true},
		{Name: "connection dropped", Handler: func(w http.ResponseWriter, r *http.Request) {
			hj, ok := w.(http.Hijacker)
			if !ok {
				panic("no hijacker")
			}
			c, _, err := hj.Hijack()
			if err == nil {
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Len"))
				_ = c.Close()
			}
		}, Retry: true},
		{Name: "hangs", Handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-hang:
			}
		}, Retry: true, Timeout: 300 * time.Millisecond},
	}
}

// RetryTable runs every Case against the notifier newFn builds, sending m,
// and checks the classification and that no secret appears in the error.
func RetryTable(t *testing.T, newFn NewFunc, m notify.Message, secrets ...string) {
	t.Helper()
	for i, c := range Cases(nil) {
		t.Run(c.Name, func(t *testing.T) {
			hang := make(chan struct{})
			c := Cases(hang)[i]
			srv := httptest.NewServer(c.Handler)
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(hang) }) // runs first: releases a hanging handler
			n := newFn(t, srv.URL)
			ctx := context.Background()
			if c.Timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.Timeout)
				defer cancel()
			} else {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
			}
			retry, err := n.Notify(ctx, m)
			if err == nil {
				t.Fatalf("Notify succeeded, want an error")
			}
			if retry != c.Retry {
				t.Errorf("retry = %v, want %v (err: %v)", retry, c.Retry, err)
			}
			after, ok := notify.RetryAfter(err)
			switch {
			case c.RetryAfter > 0 && (!ok || after != c.RetryAfter):
				t.Errorf("RetryAfter = %v, %v; want %v (err: %v)", after, ok, c.RetryAfter, err)
			case c.RetryAfter < 0 && (!ok || after <= 0):
				t.Errorf("RetryAfter = %v, %v; want a positive duration (err: %v)", after, ok, err)
			case c.RetryAfter == 0 && ok:
				t.Errorf("unexpected RetryAfter %v (err: %v)", after, err)
			}
			if len(err.Error()) > 2000 {
				t.Errorf("error is %d bytes long; the provider body must be cut", len(err.Error()))
			}
			AssertNoSecret(t, err, secrets...)
		})
	}
}

// AssertNoSecret fails t if any of secrets appears in v printed every way
// a program might print it: Error(), %v, %+v, %#v, JSON, and slog text and
// JSON handlers (what a log line would hold). Empty secrets are skipped.
func AssertNoSecret(t testing.TB, v any, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for how, text := range Printouts(v) {
			if strings.Contains(text, s) {
				t.Errorf("secret %q found in %s: %s", s, how, text)
			}
		}
	}
}

// Printouts returns v printed every way AssertNoSecret checks, keyed by how.
func Printouts(v any) map[string]string {
	out := map[string]string{
		"%v":  fmt.Sprintf("%v", v),
		"%+v": fmt.Sprintf("%+v", v),
		"%#v": fmt.Sprintf("%#v", v),
		"%s":  fmt.Sprintf("%s", v),
	}
	if err, ok := v.(error); ok && err != nil {
		out["Error()"] = err.Error()
		var chain []string
		for e := err; e != nil; e = errors.Unwrap(e) {
			chain = append(chain, fmt.Sprintf("%#v", e))
		}
		out["unwrapped chain"] = strings.Join(chain, "\n")
	}
	if b, err := json.Marshal(v); err == nil {
		out["json"] = string(b)
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Error("notify", "value", v, "err", v)
	slog.New(slog.NewJSONHandler(&js, nil)).Error("notify", "value", v, "err", v)
	out["slog text"] = text.String()
	out["slog json"] = js.String()
	return out
}
