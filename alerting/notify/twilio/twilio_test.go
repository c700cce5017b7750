package twilio_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/twilio"
	"github.com/upwatch/upwatch/secret"
)

const (
	sid   = "AC0123456789abcdef0123456789abcdef"
	token = "twilio-auth-token-never-leak"
	mgsid = "MG0123456789abcdef0123456789abcdef"
)

func config(base string) twilio.Config {
	return twilio.Config{AccountSID: sid, AuthToken: secret.New(token), From: "+14155550100", BaseURL: base}
}

func message() notify.Message {
	return notify.Message{
		Key: "inc-1/down/ada/sms", Kind: notify.KindDown, IncidentID: "inc-1",
		Subject: "[upwatch] DOWN: Shop", Text: "DOWN: Shop (https://shop.example) since 2024-01-02 03:04:05 UTC.\n",
		To: notify.Recipient{Name: "Ada", Phone: "+447911123456"},
	}
}

// The request as Twilio documents it.
func TestNotifySendsDocumentedRequest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      func(string) twilio.Config
		wantForm url.Values
	}{
		{"from", config, url.Values{"To": {"+447911123456"}, "From": {"+14155550100"},
			"Body": {"DOWN: Shop (https://shop.example) since 2024-01-02 03:04:05 UTC."}}},
		{"messaging service", func(b string) twilio.Config {
			c := config(b)
			c.From = ""
			c.MessagingServiceSID = mgsid
			return c
		}, url.Values{"To": {"+447911123456"}, "MessagingServiceSid": {mgsid},
			"Body": {"DOWN: Shop (https://shop.example) since 2024-01-02 03:04:05 UTC."}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls++
				if want := "/2010-04-01/Accounts/" + sid + "/Messages.json"; r.Method != http.MethodPost || r.URL.Path != want {
					t.Errorf("request %s %s, want POST %s", r.Method, r.URL.Path, want)
				}
				if u, p, ok := r.BasicAuth(); !ok || u != sid || p != token {
					t.Errorf("basic auth = %q, %q, %v", u, p, ok)
				}
				if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
					t.Errorf("Content-Type = %q", ct)
				}
				b, _ := io.ReadAll(r.Body)
				form, err := url.ParseQuery(string(b))
				if err != nil {
					t.Errorf("body is not a form: %v", err)
				}
				if form.Encode() != tc.wantForm.Encode() {
					t.Errorf("form = %v, want %v", form, tc.wantForm)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				_, _ = io.WriteString(w, `{"sid":"SM0123","status":"queued"}`)
			}))
			defer srv.Close()
			retry, err := twilio.New(tc.cfg(srv.URL), srv.Client()).Notify(context.Background(), message())
			if err != nil {
				t.Fatalf("Notify: %v (retry %v)", err, retry)
			}
			if calls != 1 {
				t.Errorf("%d requests, want 1", calls)
			}
		})
	}
}

func TestNotifyProviderFailures(t *testing.T) {
	notifytest.RetryTable(t, func(t *testing.T, base string) notify.Notifier {
		return twilio.New(config(base), nil)
	}, message(), token)
}

func TestTwilioErrorIsIncluded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"code": 21211, "message": "The 'To' number +447911123456 is not a valid phone number (token `+token+`).", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`)
	}))
	defer srv.Close()
	retry, err := twilio.New(config(srv.URL), nil).Notify(context.Background(), message())
	if err == nil || retry {
		t.Fatalf("retry %v, err %v; want permanent error", retry, err)
	}
	if !strings.Contains(err.Error(), "21211") || !strings.Contains(err.Error(), "is not a valid phone number") {
		t.Errorf("error %q lacks Twilio's code and message", err)
	}
	notifytest.AssertNoSecret(t, err, token)
}

func TestNotifyBadPhoneIsPermanent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("no request may be made")
	}))
	defer srv.Close()
	for _, p := range []string{"", "07700900123", "+44 7700 900123"} {
		m := message()
		m.To.Phone = p
		retry, err := twilio.New(config(srv.URL), nil).Notify(context.Background(), m)
		if err == nil || retry {
			t.Errorf("phone %q: retry %v, err %v; want permanent error", p, retry, err)
		}
	}
}

func TestValidE164(t *testing.T) {
	for s, want := range map[string]bool{
		"+14155550100":      true,
		"+447911123456":     true,
		"+4915112345678":    true,
		"+15005550006":      true,  // Twilio's test sender
		"+447700900123":     false, // a range the UK keeps for fiction
		"+15550100":         false, // too short for its plan
		"+4915112":          false,
		"+12":               false,
		"+123456789012345":  false,
		"+1234567890123456": false, // 16 digits
		"14155550100":       false,
		"+04155550100":      false,
		"+1 415 555 0100":   false,
		"+1-415-555-0100":   false,
		"":                  false,
		"+":                 false,
		"+1415555010a":      false,
		"+14155550100\n":    false,
	} {
		if got := twilio.ValidE164(s); got != want {
			t.Errorf("ValidE164(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestShorten(t *testing.T) {
	long := strings.Repeat("Target down: connection refused. ", 30)
	for _, tc := range []struct {
		name, in string
		cut      bool
		ellipsis string
	}{
		{"short", "DOWN: Shop", false, ""},
		{"one segment exactly", strings.Repeat("a", 160), false, ""},
		{"two segments exactly", strings.Repeat("a", 306), false, ""},
		{"gsm long", long, true, "..."},
		{"gsm extension chars", strings.Repeat("{x}", 200), true, "..."},
		{"ucs2 long", strings.Repeat("Сервис недоступен ", 30), true, "…"},
		{"emoji long", strings.Repeat("🔥 down ", 60), true, "…"},
		{"invalid utf8", strings.Repeat("ab\xffcd", 100), true, "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := twilio.Shorten(tc.in, twilio.MaxSegments)
			if !utf8.ValidString(got) {
				t.Errorf("not valid UTF-8: %q", got)
			}
			if n := twilio.Segments(got); n > twilio.MaxSegments {
				t.Errorf("%d segments, want ≤ %d: %q", n, twilio.MaxSegments, got)
			}
			if n := utf8.RuneCountInString(got); n > 320 {
				t.Errorf("%d characters, want ≤ 320", n)
			}
			if !tc.cut {
				if got != tc.in {
					t.Errorf("Shorten changed a text that fits: %q", got)
				}
				return
			}
			if !strings.HasSuffix(got, tc.ellipsis) {
				t.Errorf("%q does not end in %q", got, tc.ellipsis)
			}
			if len(got) < 60 {
				t.Errorf("cut too much: %q", got)
			}
		})
	}
}

func TestSegments(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 1},
		{strings.Repeat("a", 160), 1},
		{strings.Repeat("a", 161), 2},
		{strings.Repeat("€", 80), 1}, // extension: 2 septets each
		{strings.Repeat("€", 81), 2},
		{strings.Repeat("я", 70), 1},
		{strings.Repeat("я", 71), 2},
		{strings.Repeat("я", 135), 3},
	} {
		if got := twilio.Segments(tc.in); got != tc.want {
			t.Errorf("Segments(%d × %q) = %d, want %d", utf8.RuneCountInString(tc.in), []rune(tc.in + " ")[0], got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := config("").Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*twilio.Config)
		want []string
	}{
		{"empty", func(c *twilio.Config) { *c = twilio.Config{} }, []string{"account_sid: required", "auth_token: required", "from: required"}},
		{"bad sid", func(c *twilio.Config) { c.AccountSID = "AC123" }, []string{"account_sid: "}},
		{"bad from", func(c *twilio.Config) { c.From = "0800 123" }, []string{"from: "}},
		{"bad service", func(c *twilio.Config) { c.MessagingServiceSID = "XX" }, []string{"messaging_service_sid: "}},
		{"bad base", func(c *twilio.Config) { c.BaseURL = "ftp://x" }, []string{"base_url: "}},
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
			notifytest.AssertNoSecret(t, err, token)
		})
	}
	notifytest.AssertNoSecret(t, config("http://127.0.0.1:1"), token)
}
