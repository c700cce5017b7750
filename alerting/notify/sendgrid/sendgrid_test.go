package sendgrid_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/sendgrid"
	"github.com/upwatch/upwatch/secret"
)

const apiKey = "SG.test-key-that-must-never-leak"

func message() notify.Message {
	return notify.Message{
		Key:        "inc-42/down/ada/email",
		Kind:       notify.KindDown,
		IncidentID: "inc-42",
		TargetName: "Shop",
		Subject:    "[upwatch] DOWN: Shop",
		Text:       "DOWN: Shop\n",
		HTML:       "<p>DOWN: Shop</p>",
		To:         notify.Recipient{Name: "Ada Lovelace", Email: "ada@example.com"},
	}
}

func config(base string) sendgrid.Config {
	return sendgrid.Config{APIKey: secret.New(apiKey), From: "alerts@upwatch.test", FromName: "upwatch", BaseURL: base}
}

// The request as SendGrid documents it: POST /v3/mail/send, bearer token,
// JSON with personalizations, from, subject, content (text/plain first)
// and custom_args.
func TestNotifySendsDocumentedRequest(t *testing.T) {
	type email struct {
		Email string `json:"email"`
		Name  string `json:"name"`
	}
	type body struct {
		Personalizations []struct {
			To []email `json:"to"`
		} `json:"personalizations"`
		From    email  `json:"from"`
		Subject string `json:"subject"`
		Content []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"content"`
		CustomArgs map[string]string `json:"custom_args"`
	}
	var got body
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" {
			t.Errorf("request %s %s, want POST /v3/mail/send", r.Method, r.URL.Path)
		}
		if a := r.Header.Get("Authorization"); a != "Bearer "+apiKey {
			t.Errorf("Authorization = %q", a)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("body is not JSON: %v: %s", err, b)
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	n := sendgrid.New(config(srv.URL), srv.Client())
	retry, err := n.Notify(context.Background(), message())
	if err != nil {
		t.Fatalf("Notify: %v (retry %v)", err, retry)
	}
	if calls != 1 {
		t.Fatalf("%d requests, want 1", calls)
	}
	if len(got.Personalizations) != 1 || len(got.Personalizations[0].To) != 1 ||
		got.Personalizations[0].To[0] != (email{"ada@example.com", "Ada Lovelace"}) {
		t.Errorf("personalizations = %+v", got.Personalizations)
	}
	if got.From != (email{"alerts@upwatch.test", "upwatch"}) {
		t.Errorf("from = %+v", got.From)
	}
	if got.Subject != "[upwatch] DOWN: Shop" {
		t.Errorf("subject = %q", got.Subject)
	}
	if len(got.Content) != 2 || got.Content[0].Type != "text/plain" || got.Content[0].Value != "DOWN: Shop\n" ||
		got.Content[1].Type != "text/html" || got.Content[1].Value != "<p>DOWN: Shop</p>" {
		t.Errorf("content = %+v", got.Content)
	}
	if got.CustomArgs["incident_id"] != "inc-42" || got.CustomArgs["notification_key"] != "inc-42/down/ada/email" {
		t.Errorf("custom_args = %v", got.CustomArgs)
	}
}

func TestNotifyProviderFailures(t *testing.T) {
	notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
		return sendgrid.New(config(base), nil)
	}, message(), apiKey)
}

// A provider that echoes the key back in its error must not leak it.
func TestErrorEchoingKeyIsRedacted(t *testing.T) {
	for _, body := range []string{
		`{"errors":[{"message":"bad key ` + apiKey + `","field":"authorization"}]}`,
		"garbage " + apiKey,
		strings.Repeat("x", 190) + apiKey, // the key straddles the snippet cut
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, body)
		}))
		_, err := sendgrid.New(config(srv.URL), nil).Notify(context.Background(), message())
		srv.Close()
		if err == nil {
			t.Fatal("want an error")
		}
		notifytest.AssertNoSecret(t, err, apiKey, apiKey[:12])
	}
}

func TestNotifyBadRecipientIsPermanent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("no request may be made")
	}))
	defer srv.Close()
	n := sendgrid.New(config(srv.URL), nil)
	for _, to := range []string{"", "not an address", "a@b.c\r\nBcc: x@y.z"} {
		m := message()
		m.To.Email = to
		retry, err := n.Notify(context.Background(), m)
		if err == nil || retry {
			t.Errorf("To %q: retry %v, err %v; want a permanent error", to, retry, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := config("").Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*sendgrid.Config)
		want []string
	}{
		{"empty", func(c *sendgrid.Config) { *c = sendgrid.Config{} }, []string{"api_key: required", "from: required"}},
		{"bad from", func(c *sendgrid.Config) { c.From = "Alerts <a@b.c>" }, []string{"from: "}},
		{"bad base", func(c *sendgrid.Config) { c.BaseURL = "api.sendgrid.com" }, []string{"base_url: "}},
		{"from name newline", func(c *sendgrid.Config) { c.FromName = "a\nb" }, []string{"from_name: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config("")
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigNeverPrintsKey(t *testing.T) {
	c := config("http://127.0.0.1:1")
	notifytest.AssertNoSecret(t, c, apiKey)
	// An unreachable provider: the transport error carries no key either.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	retry, err := sendgrid.New(c, nil).Notify(ctx, message())
	if err == nil || !retry {
		t.Fatalf("retry %v, err %v; want a retryable error", retry, err)
	}
	notifytest.AssertNoSecret(t, err, apiKey)
}
