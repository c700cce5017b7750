package alerting_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
)

// An acknowledged incident gets no reminder and no escalation, while an
// unacknowledged one beside it does; its UP message still goes out, and
// reminders already queued but unsent when it was acknowledged are dropped.
func TestAcknowledgedIncidentGetsNoReminders(t *testing.T) {
	s := openStore(t, "")
	ctx := context.Background()
	e, err := alerting.NewEngine(ctx, alerting.EngineOptions{Store: s, Acks: s, Now: func() time.Time { return t0 }, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	e.Update(map[string]alerting.Route{"web": route("web"), "db": route("db")}, nil)
	next := feed(t, e, "web", t0, "xxx")
	feed(t, e, "db", t0, "xxx")

	// First reminder of both (12:12), then web is acknowledged.
	e.Tick(ctx, t0.Add(13*time.Minute))
	require.Equal(t, 3, countKind(queued(t, s), "web", notify.KindReminder, alerting.NotificationPending), "alice by email and sms, bob by email")
	// A dispatcher is sending one of them (its lease runs) when web is
	// acknowledged: that one is left to it.
	var sending string
	for _, n := range queued(t, s) {
		if n.Message.TargetID == "web" && n.Message.Kind == notify.KindReminder && sending == "" {
			sending = n.Key
		}
	}
	claimed, err := s.Claim(ctx, t0.Add(13*time.Minute), time.Hour, 100)
	require.NoError(t, err)
	for _, n := range claimed { // all but one handed back
		if n.Key != sending {
			require.NoError(t, s.Settle(ctx, n.Key, alerting.NotificationPending, t0.Add(13*time.Minute), "", t0.Add(13*time.Minute)))
		}
	}
	st, _ := e.State("web")
	inc, err := s.AckIncident(ctx, st.Incident.ID, "user:ed", t0.Add(14*time.Minute))
	require.NoError(t, err)
	require.Equal(t, "user:ed", inc.AckedBy)
	require.Equal(t, 1, countKind(queued(t, s), "web", notify.KindReminder, alerting.NotificationPending), "unsent reminders are dropped, but for the one being sent")
	require.Equal(t, 2, countKind(queued(t, s), "web", notify.KindReminder, alerting.NotificationFailed))
	status, _, err := s.Status(ctx, sending)
	require.NoError(t, err)
	require.Equal(t, alerting.NotificationPending, status)

	for _, m := range []time.Duration{23, 33, 43} {
		e.Tick(ctx, t0.Add(m*time.Minute))
	}
	ns := queued(t, s)
	require.Equal(t, 3, countKind(ns, "web", notify.KindReminder, ""), "no reminder after the acknowledgement")
	require.Zero(t, countKind(ns, "web", notify.KindEscalation, ""), "nor an escalation")
	require.Equal(t, 12, countKind(ns, "db", notify.KindReminder, ""), "db, not acknowledged: four reminders of three messages")
	require.Equal(t, 1, countKind(ns, "db", notify.KindEscalation, ""))
	st, _ = e.State("web")
	require.True(t, st.Incident.Acked(), "the engine remembers the acknowledgement")
	require.Equal(t, "user:ed", st.Incident.AckedBy)

	// Recovery is still told, and the acknowledgement stays recorded.
	feed(t, e, "web", next.Add(45*time.Minute), "..")
	require.Equal(t, 3, countKind(queued(t, s), "web", notify.KindUp, alerting.NotificationPending))
	by, at, err := s.IncidentAck(ctx, st.Incident.ID)
	require.NoError(t, err)
	require.Equal(t, "user:ed", by)
	require.True(t, at.Equal(t0.Add(14*time.Minute)))
}

// Tick, the pure machine, has nothing due for an acknowledged incident.
func TestTickAcknowledged(t *testing.T) {
	inc := alerting.Incident{ID: "i", TargetID: "web", Start: t0, Cause: "x"}
	st := alerting.State{TargetID: "web", Status: alerting.StatusDown, Since: t0, Incident: &inc, LastNotifiedAt: t0}
	p := alerting.Policy{RepeatInterval: time.Minute, EscalateAfter: time.Minute}
	_, trs := alerting.Tick(st, p, t0.Add(time.Hour))
	require.Len(t, trs, 2)
	inc.AckedBy, inc.AckedAt = "user:ed", t0.Add(time.Second)
	_, trs = alerting.Tick(st, p, t0.Add(time.Hour))
	require.Empty(t, trs)
}

// countKind counts target's notifications of kind (and status, unless "").
func countKind(ns []alerting.Notification, target, kind string, status alerting.NotificationStatus) int {
	n := 0
	for _, x := range ns {
		if x.Message.TargetID == target && x.Message.Kind == kind && (status == "" || x.Status == status) {
			n++
		}
	}
	return n
}
