package notify_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
)

func TestRetryableStatus(t *testing.T) {
	for code, want := range map[int]bool{
		500: true, 502: true, 503: true, 504: true, 599: true,
		429: true, 408: true,
		400: false, 401: false, 403: false, 404: false, 409: false, 413: false, 422: false,
		301: false, 302: false, 307: false,
	} {
		if got := notify.RetryableStatus(code); got != want {
			t.Errorf("RetryableStatus(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 7 ", 7 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"99999999999", notify.MaxRetryAfter, true},
		{"Mon, 01 Jan 2024 12:01:30 GMT", 90 * time.Second, true},
		{"Monday, 01-Jan-24 12:01:30 GMT", 90 * time.Second, true}, // RFC 850
		{"Mon Jan  1 12:01:30 2024", 90 * time.Second, true},       // asctime
		{"Mon, 01 Jan 2024 11:00:00 GMT", 0, true},                 // past
		{"Mon, 01 Jan 2030 11:00:00 GMT", notify.MaxRetryAfter, true},
	} {
		got, ok := notify.ParseRetryAfter(tc.h, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.h, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryAfterError(t *testing.T) {
	base := errors.New("sendgrid: HTTP 429")
	err := fmt.Errorf("wrapped: %w", &notify.RetryAfterError{After: 3 * time.Second, Err: base})
	if !errors.Is(err, base) {
		t.Error("RetryAfterError does not unwrap")
	}
	if d, ok := notify.RetryAfter(err); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if !strings.Contains(err.Error(), "retry after 3s") {
		t.Errorf("Error() = %q", err)
	}
	if _, ok := notify.RetryAfter(base); ok {
		t.Error("RetryAfter found a duration in a plain error")
	}
}

func TestRedactURL(t *testing.T) {
	err := fmt.Errorf("x: %w", &url.Error{Op: "Post", URL: "https://user:pw@hooks.example/T0/B1/tok?k=v", Err: errors.New("boom")})
	got := notify.RedactURL(err).Error()
	for _, s := range []string{"user", "pw", "T0", "tok", "k=v"} {
		if strings.Contains(got, s) {
			t.Errorf("%q still holds %q", got, s)
		}
	}
	if !strings.Contains(got, "https://hooks.example") || !strings.Contains(got, "boom") {
		t.Errorf("%q lost the host or the cause", got)
	}
	var ue *url.Error
	if !errors.As(notify.RedactURL(err), &ue) {
		t.Error("redacted error is no longer a *url.Error")
	}
	plain := errors.New("plain")
	if notify.RedactURL(plain) != plain {
		t.Error("a non-URL error must be returned as is")
	}
}

func TestSnippet(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"  hello\n\n world\t", "hello world"},
		{"a\x00b\x1bc", "a b c"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{strings.Repeat("y", 500), strings.Repeat("y", 200) + "…"},
	} {
		if got := notify.Snippet([]byte(tc.in)); got != tc.want {
			t.Errorf("Snippet(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
