package notify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
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
