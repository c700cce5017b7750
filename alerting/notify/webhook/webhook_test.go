package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/webhook"
	"github.com/upwatch/upwatch/internal/ssrf"
	"github.com/upwatch/upwatch/secret"
)

const (
	hookSecret = "whsec-never-leak-this"
	pathToken  = "tok-path-secret-123"
)

func message() notify.Message {
	return notify.Message{
		Key: "inc-7/up/ops/webhook", Kind: notify.KindUp, IncidentID: "inc-7",
		TargetID: "t-3", TargetName: "API", TargetURL: "https://api.example/health",
		Cause:     "HTTP 503",
		StartedAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.FixedZone("CEST", 2*3600)),
		Duration:  12*time.Minute + 30*time.Second,
		Link:      "https://upwatch.example/i/inc-7",
		Subject:   "[upwatch] UP: API is back up after 12m 30s", Text: "UP: API\n", HTML: "<p>UP</p>",
		To: notify.Recipient{Name: "ops"},
	}
}

func TestNotifySendsSignedPayload(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/hooks/"+pathToken || r.URL.RawQuery != "a=1" {
			t.Errorf("request %s %s", r.Method, r.URL)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		if k := r.Header.Get("X-Upwatch-Key"); k != "inc-7/up/ops/webhook" {
			t.Errorf("X-Upwatch-Key = %q", k)
		}
		body, _ := io.ReadAll(r.Body)
		ts, sig := r.Header.Get("X-Upwatch-Timestamp"), r.Header.Get("X-Upwatch-Signature")
		if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
			t.Errorf("X-Upwatch-Signature = %q", sig)
		}
		if err := webhook.Verify([]byte(hookSecret), ts, body, sig, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("Verify: %v", err)
		}
		want := `{"version":1,"key":"inc-7/up/ops/webhook","kind":"up","incident_id":"inc-7",` +
			`"target":{"id":"t-3","name":"API","url":"https://api.example/health"},"cause":"HTTP 503",` +
			`"started_at":"2024-05-06T05:08:09Z","duration_seconds":750,"duration":"12m 30s",` +
			`"link":"https://upwatch.example/i/inc-7","subject":"[upwatch] UP: API is back up after 12m 30s",` +
			`"text":"UP: API\n","recipient":"ops"}`
		if string(body) != want {
			t.Errorf("body\n got %s\nwant %s", body, want)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	n := webhook.New(webhook.Config{URL: srv.URL + "/hooks/" + pathToken + "?a=1", Secret: secret.New(hookSecret)}, srv.Client())
	if retry, err := n.Notify(context.Background(), message()); err != nil {
		t.Fatalf("Notify: %v (retry %v)", err, retry)
	}
	if calls.Load() != 1 {
		t.Errorf("%d requests, want 1", calls.Load())
	}
}

func TestRecipientURLOverridesConfig(t *testing.T) {
	var hitConfig, hitRecipient atomic.Int32
	cfgSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hitConfig.Add(1) }))
	defer cfgSrv.Close()
	rcpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hitRecipient.Add(1) }))
	defer rcpSrv.Close()
	n := webhook.New(webhook.Config{URL: cfgSrv.URL, Secret: secret.New(hookSecret)}, nil)
	m := message()
	m.To.WebhookURL = rcpSrv.URL + "/mine"
	if _, err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if hitConfig.Load() != 0 || hitRecipient.Load() != 1 {
		t.Errorf("config URL hit %d times, recipient URL %d; want 0 and 1", hitConfig.Load(), hitRecipient.Load())
	}
}

func TestNoURLIsPermanent(t *testing.T) {
	n := webhook.New(webhook.Config{Secret: secret.New(hookSecret)}, nil)
	for _, u := range []string{"", "not a url", "ftp://x/y", "http://"} {
		m := message()
		m.To.WebhookURL = u
		retry, err := n.Notify(context.Background(), m)
		if err == nil || retry {
			t.Errorf("URL %q: retry %v, err %v; want permanent error", u, retry, err)
		}
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var followed atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusTemporaryRedirect))
	defer srv.Close()
	retry, err := webhook.New(webhook.Config{URL: srv.URL, Secret: secret.New(hookSecret)}, nil).Notify(context.Background(), message())
	if err == nil || retry {
		t.Errorf("retry %v, err %v; want a permanent error", retry, err)
	}
	if followed.Load() != 0 {
		t.Error("redirect was followed")
	}
}

func TestNotifyProviderFailures(t *testing.T) {
	notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
		return webhook.New(webhook.Config{URL: base + "/hooks/" + pathToken, Secret: secret.New(hookSecret)}, nil)
	}, message(), hookSecret, pathToken)
}

// Errors name the host, not the path or query, which may hold tokens.
func TestUnreachableURLIsRedacted(t *testing.T) {
	n := webhook.New(webhook.Config{URL: "http://127.0.0.1:1/hooks/" + pathToken + "?t=" + pathToken, Secret: secret.New(hookSecret)}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	retry, err := n.Notify(ctx, message())
	if err == nil || !retry {
		t.Fatalf("retry %v, err %v; want a retryable error", retry, err)
	}
	notifytest.AssertNoSecret(t, err, hookSecret, pathToken)
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error %q should name the host", err)
	}
}

// A URL the SSRF guard refuses is a permanent failure: nothing reaches
// the server and the dispatcher does not retry it.
func TestBlockedAddressIsPermanent(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	guarded := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Control: ssrf.New().Control}).DialContext}}
	n := webhook.New(webhook.Config{URL: srv.URL + "/hooks/" + pathToken, Secret: secret.New(hookSecret)}, guarded)
	for _, u := range []string{"", "http://[64:ff9b::7f00:1]:" + port + "/hooks/" + pathToken} {
		m := message()
		m.To.WebhookURL = u
		retry, err := n.Notify(context.Background(), m)
		if !errors.Is(err, ssrf.ErrBlocked) || retry {
			t.Errorf("URL %q: retry %v, err %v; want a permanent ssrf.ErrBlocked", u, retry, err)
		}
		notifytest.AssertNoSecret(t, err, hookSecret, pathToken)
	}
	if calls.Load() != 0 {
		t.Errorf("%d requests reached the server", calls.Load())
	}
}

func TestSignKnownVector(t *testing.T) {
	// printf '1700000000.{"hello":"world"}' | openssl dgst -sha256 -hmac whsec_test
	got := webhook.Sign([]byte("whsec_test"), 1700000000, []byte(`{"hello":"world"}`))
	if want := "sha256=f592bbf3951cfc94e560eecfb5d9dd4da6b0fff2e626235f8ab4b54860925d0b"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	key := []byte("k")
	body := []byte(`{"a":1}`)
	now := time.Unix(1700000000, 0)
	good := webhook.Sign(key, now.Unix(), body)
	for _, tc := range []struct {
		name      string
		key       []byte
		ts        string
		body      []byte
		sig       string
		tolerance time.Duration
		want      error
	}{
		{"ok", key, "1700000000", body, good, time.Minute, nil},
		{"ok within tolerance", key, "1699999950", body, webhook.Sign(key, 1699999950, body), time.Minute, nil},
		{"tampered body", key, "1700000000", []byte(`{"a":2}`), good, time.Minute, webhook.ErrSignature},
		{"wrong key", []byte("x"), "1700000000", body, good, time.Minute, webhook.ErrSignature},
		{"timestamp swapped", key, "1700000001", body, good, time.Minute, webhook.ErrSignature},
		{"no prefix", key, "1700000000", body, strings.TrimPrefix(good, "sha256="), time.Minute, webhook.ErrSignature},
		{"empty sig", key, "1700000000", body, "", time.Minute, webhook.ErrSignature},
		{"malformed ts", key, "17e8", body, good, time.Minute, webhook.ErrTimestamp},
		{"empty ts", key, "", body, good, time.Minute, webhook.ErrTimestamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.key, tc.ts, tc.body, tc.sig, now, tc.tolerance)
			if !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	// Replays: a correctly signed old or future request is refused.
	for _, off := range []int64{-301, 301} {
		ts := now.Unix() + off
		sig := webhook.Sign(key, ts, body)
		err := webhook.Verify(key, itoa(ts), body, sig, now, 5*time.Minute)
		if !errors.Is(err, webhook.ErrTimestamp) {
			t.Errorf("offset %ds: Verify = %v, want ErrTimestamp", off, err)
		}
		if err := webhook.Verify(key, itoa(ts), body, sig, now, 0); err != nil {
			t.Errorf("offset %ds, no tolerance: Verify = %v", off, err)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestConfigValidate(t *testing.T) {
	if err := (webhook.Config{URL: "https://h.example/x", Secret: secret.New("s")}).Validate(); err != nil {
		t.Fatal(err)
	}
	err := webhook.Config{URL: "h.example/" + pathToken}.Validate()
	if err == nil || !strings.Contains(err.Error(), "url: ") || !strings.Contains(err.Error(), "secret: required") {
		t.Errorf("Validate = %v", err)
	}
	notifytest.AssertNoSecret(t, err, pathToken)
	notifytest.AssertNoSecret(t, webhook.Config{URL: "https://h.example/x", Secret: secret.New(hookSecret)}, hookSecret)
}
