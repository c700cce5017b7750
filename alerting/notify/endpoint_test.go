package notify_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
)

// A destination for another channel, or one that does not decode, is an
// error that quotes nothing of the endpoint (it holds credentials).
func TestDecodeEndpoint(t *testing.T) {
	var d struct {
		Token string `json:"token"`
	}
	m := notify.Message{To: notify.Recipient{Channel: "slack", Endpoint: `{"token":"xoxb-S3CRET"}`}}
	if err := notify.DecodeEndpoint(m, "slack", &d); err != nil || d.Token != "xoxb-S3CRET" {
		t.Fatalf("decode: %v, %+v", err, d)
	}
	for _, bad := range []notify.Message{
		{To: notify.Recipient{Channel: "discord", Endpoint: `{"token":"xoxb-S3CRET"}`}},
		{To: notify.Recipient{Channel: "slack", Endpoint: `{"token":"xoxb-S3CRET"`}},
		{To: notify.Recipient{Channel: "slack", Endpoint: `{"token":42,"x":"S3CRET"}`}},
		{To: notify.Recipient{Email: "a@example.com"}},
	} {
		err := notify.DecodeEndpoint(bad, "slack", &d)
		if err == nil || strings.Contains(err.Error(), "S3CRET") {
			t.Errorf("%+v: err %v; want an error without the endpoint", bad.To, err)
		}
	}
}

// Every message of one incident shares the alert key; messages outside an
// incident get one per target, kind and start.
func TestAlertKey(t *testing.T) {
	down := notify.Message{Kind: notify.KindDown, IncidentID: "abc", TargetID: "t"}
	up, reminder := down, down
	up.Kind, reminder.Kind = notify.KindUp, notify.KindReminder
	if k := notify.AlertKey(down); k != "upwatch-abc" || notify.AlertKey(up) != k || notify.AlertKey(reminder) != k {
		t.Errorf("keys %q %q %q", k, notify.AlertKey(up), notify.AlertKey(reminder))
	}
	at := time.Unix(1000, 0)
	deg := notify.Message{Kind: notify.KindDegraded, TargetID: "t", StartedAt: at}
	other := deg
	other.StartedAt = at.Add(time.Hour)
	if notify.AlertKey(deg) == notify.AlertKey(other) || !strings.HasPrefix(notify.AlertKey(deg), "upwatch-degraded-") {
		t.Errorf("degraded keys %q %q", notify.AlertKey(deg), notify.AlertKey(other))
	}
	if !notify.Resolves(up) || notify.Resolves(down) || notify.Resolves(reminder) {
		t.Error("only an UP resolves")
	}
	if got := notify.Truncate("héllo wörld", 5); got != "héll…" {
		t.Errorf("Truncate = %q", got)
	}
}

// The destination field checks name the field and never quote the value.
func TestFieldChecks(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{notify.CheckURLField("url", ""), "url: required"},
		{notify.CheckURLField("url", "ftp://h/S3CRET"), "url: not an absolute http(s) URL"},
		{notify.CheckURLField("url", "https://h/S3CRET"), ""},
		{notify.CheckSecretField("key", "", regexp.MustCompile(`^[a-z]+$`), "letters"), "key: required"},
		{notify.CheckSecretField("key", "S3CRET", regexp.MustCompile(`^[a-z]+$`), "letters"), "key: letters"},
		{notify.CheckSecretField("key", "abc", regexp.MustCompile(`^[a-z]+$`), "letters"), ""},
		{notify.CheckRegion("ap"), `region: "ap" is not us or eu`},
		{notify.CheckRegion(""), ""},
		{notify.CheckRegion("eu"), ""},
	} {
		got := ""
		if c.err != nil {
			got = c.err.Error()
		}
		if got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	for _, c := range [][2]string{{"", "https://us"}, {"us", "https://us"}, {"eu", "https://eu"}} {
		if got := notify.RegionURL("", c[0], "https://us", "https://eu"); got != c[1] {
			t.Errorf("RegionURL(%q) = %q, want %q", c[0], got, c[1])
		}
	}
	if got := notify.RegionURL("http://127.0.0.1:1", "eu", "https://us", "https://eu"); got != "http://127.0.0.1:1" {
		t.Errorf("override: %q", got)
	}
}

// A JSONNotifier decodes the destination, posts what build makes of it and
// names its channel in errors.
func TestJSONNotifier(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusOK, "")
	type dest struct {
		Path string `json:"path"`
	}
	n := notify.NewJSONNotifier(nil, "chat", func(m notify.Message, d dest) notify.Post {
		h := http.Header{}
		h.Set("X-Kind", m.Kind)
		return notify.Post{URL: srv.URL + d.Path, Header: h, Body: map[string]string{"subject": m.Subject}}
	})
	down, _ := notifytest.Incident(t, "chat", dest{Path: "/hook"})
	r := srv.Deliver(t, n, down)[0]
	if r.Path != "/hook" || r.Header.Get("X-Kind") != notify.KindDown || r.JSON(t)["subject"] != down.Subject {
		t.Errorf("request %+v", r)
	}
	if retry, err := n.Notify(t.Context(), notify.Message{}); err == nil || retry {
		t.Errorf("no destination: %v, %v", retry, err)
	}
	srv.Status = http.StatusBadRequest
	if retry, err := n.Notify(t.Context(), down); err == nil || retry || !strings.HasPrefix(err.Error(), "chat: HTTP 400") {
		t.Errorf("400: %v, %v", retry, err)
	}
}

// Provider renames the provider in errors; Answer decides from the body.
func TestJSONNotifierProviderAnswer(t *testing.T) {
	srv := notifytest.NewStandIn(t, http.StatusBadRequest, `{"ok":false}`)
	var seen string
	n := notify.NewJSONNotifier(nil, "chat", func(m notify.Message, d struct{}) notify.Post {
		return notify.Post{URL: srv.URL, Provider: "chat api", Body: 1,
			Answer: func(b []byte, retry bool, err error) (bool, error) {
				seen = string(b)
				return !retry, err
			}}
	})
	down, _ := notifytest.Incident(t, "chat", struct{}{})
	retry, err := n.Notify(t.Context(), down)
	if !retry || err == nil || !strings.HasPrefix(err.Error(), "chat api: HTTP 400") || seen != `{"ok":false}` {
		t.Errorf("got %v, %v; answer saw %q", retry, err, seen)
	}
}

// JSONDetail quotes one string field of a JSON error answer, cut to a
// printable line; anything else quotes nothing.
func TestJSONDetail(t *testing.T) {
	detail := notify.JSONDetail("message")
	for body, want := range map[string]string{
		`{"message":"bad\nkey","took":0.1}`: "bad key",
		`{"message":5}`:                     "",
		`{"message":""}`:                    "",
		`{"error":"x"}`:                     "",
		`null`:                              "",
		"\x00garbage":                       "",
	} {
		if got := detail([]byte(body)); got != want {
			t.Errorf("%q: %q, want %q", body, got, want)
		}
	}
}
