package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
)

// ErrIncidentEnded is AckIncident's answer for an incident that is over:
// there is nothing left to acknowledge.
var ErrIncidentEnded = errors.New("the incident has ended")

// Incident returns one incident by ID; ErrNotFound if there is none.
func (s *Registry) Incident(ctx context.Context, id string) (alerting.Incident, error) {
	inc, err := scanIncident(s.queryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return inc, s.wrap("incident "+id, err)
}

// AckIncident records that by acknowledged the open incident id at at, and
// returns the incident. The first acknowledgement stands: a second one
// changes nothing and returns the first. Reminders and escalations of the
// incident still waiting in the outbox are dropped (failed, "acknowledged")
// in the same transaction, except one a dispatcher is sending; the engine queues no new ones (see
// alerting.AckReader). ErrNotFound if there is no such incident,
// ErrIncidentEnded if it is over.
func (s *Registry) AckIncident(ctx context.Context, id, by string, at time.Time) (alerting.Incident, error) {
	if id == "" || by == "" || at.IsZero() {
		return alerting.Incident{}, errors.New("registry store: ack incident: id, who and when are required")
	}
	var inc alerting.Incident
	err := s.withTx(ctx, func(tx txn) error {
		var err error
		inc, err = scanIncident(tx.queryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = ?`, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case !inc.Open():
			return ErrIncidentEnded
		case inc.Acked():
			return nil
		}
		inc.AckedBy, inc.AckedAt = by, at
		if _, err := tx.exec(ctx, `UPDATE incidents SET acked_by = ?, acked_at = ? WHERE id = ?`, by, nanos(at), id); err != nil {
			return err
		}
		// One a dispatcher holds (its lease running) is being sent: it
		// settles it as usual.
		_, err = tx.exec(ctx, `UPDATE outbox SET status = ?, last_error = ?
			WHERE incident_id = ? AND status = ? AND (key LIKE ? OR key LIKE ?) AND (lease_until IS NULL OR lease_until <= ?)`,
			string(alerting.NotificationFailed), "acknowledged by "+by, id, string(alerting.NotificationPending),
			id+"|"+notify.KindReminder+"|%", id+"|"+notify.KindEscalation+"|%", at.UnixNano())
		return err
	})
	if err != nil {
		return alerting.Incident{}, s.wrap("ack incident "+id, err)
	}
	return inc, nil
}

// IncidentAck says who acknowledged the incident and when (zero time: no
// one, or no such incident); it is alerting.AckReader.
func (s *Registry) IncidentAck(ctx context.Context, id string) (string, time.Time, error) {
	var by string
	var at sql.NullInt64
	err := s.queryRow(ctx, `SELECT acked_by, acked_at FROM incidents WHERE id = ?`, id).Scan(&by, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("registry store: incident ack %s: %w", id, err)
	}
	return by, fromNanos(at), nil
}

var _ alerting.AckReader = (*Registry)(nil)
