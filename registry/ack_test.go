package registry_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/registry"
)

func TestAckIncident(t *testing.T) {
	testAckIncident(t, openSQLite(t, filepath.Join(t.TempDir(), "r.db")))
}

func TestPostgresAckIncident(t *testing.T) {
	postgresBaseURL(t)
	t.Parallel()
	testAckIncident(t, openPostgres(t, postgresSchemaURL(t)))
}

// testAckIncident: the first acknowledgement stands, an ended incident
// has none, and the incident's pending reminders and escalations (not its
// other messages) are dropped.
func testAckIncident(t *testing.T, s *registry.Registry) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	open := alerting.Incident{ID: "inc-open", TargetID: "web", Start: t0, Cause: "x"}
	past := alerting.Incident{ID: "inc-past", TargetID: "web", Start: t0.Add(-time.Hour), End: t0.Add(-time.Minute), Cause: "x"}
	msg := func(kind string) alerting.Notification {
		key := open.ID + "|" + kind + "|1|email|a@example.com"
		return alerting.Notification{Key: key, Channel: alerting.ChannelEmail, Status: alerting.NotificationPending, NextAttempt: t0, CreatedAt: t0,
			Message: notify.Message{Key: key, Kind: kind, IncidentID: open.ID, TargetID: "web"}}
	}
	require.NoError(t, s.Commit(ctx, alerting.State{TargetID: "web", Status: alerting.StatusDown}, []alerting.Incident{past, open},
		[]alerting.Notification{msg(notify.KindDown), msg(notify.KindReminder), msg(notify.KindEscalation)}))

	by, at, err := s.IncidentAck(ctx, open.ID)
	require.NoError(t, err)
	require.Empty(t, by)
	require.True(t, at.IsZero())

	inc, err := s.AckIncident(ctx, open.ID, "user:ed", t0.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, "user:ed", inc.AckedBy)
	inc, err = s.AckIncident(ctx, open.ID, "user:ada", t0.Add(2*time.Minute))
	require.NoError(t, err)
	require.Equal(t, "user:ed", inc.AckedBy, "the first stands")
	require.True(t, inc.AckedAt.Equal(t0.Add(time.Minute)))
	got, err := s.Incident(ctx, open.ID)
	require.NoError(t, err)
	require.Equal(t, "user:ed", got.AckedBy)

	// The engine's later upsert of the incident (its UP) keeps the record.
	up := open
	up.End = t0.Add(time.Hour)
	require.NoError(t, s.Commit(ctx, alerting.State{TargetID: "web", Status: alerting.StatusUp}, []alerting.Incident{up}, nil))
	by, at, err = s.IncidentAck(ctx, open.ID)
	require.NoError(t, err)
	require.Equal(t, "user:ed", by)
	require.True(t, at.Equal(t0.Add(time.Minute)))

	_, err = s.AckIncident(ctx, past.ID, "user:ed", t0)
	require.ErrorIs(t, err, registry.ErrIncidentEnded)
	_, err = s.AckIncident(ctx, "nope", "user:ed", t0)
	require.ErrorIs(t, err, registry.ErrNotFound)

	for kind, want := range map[string]alerting.NotificationStatus{
		notify.KindDown: alerting.NotificationPending, notify.KindReminder: alerting.NotificationFailed, notify.KindEscalation: alerting.NotificationFailed,
	} {
		st, _, err := s.Status(ctx, msg(kind).Key)
		require.NoError(t, err)
		require.Equal(t, want, st, kind)
	}
}
