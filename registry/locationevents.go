package registry

import (
	"context"
	"database/sql"
	"errors"

	"github.com/upwatch/upwatch/alerting"
)

// RecordLocationEvent stores one event about a probe location (the alert
// engine's: unavailable, available, suspect, trusted), for operators.
func (s *Registry) RecordLocationEvent(ctx context.Context, ev alerting.LocationEvent) error {
	if ev.Kind == "" {
		return errors.New("registry store: location event: kind is required")
	}
	_, err := s.exec(ctx, `INSERT INTO location_events (location, kind, at, detail) VALUES (?, ?, ?, ?)`,
		ev.Location, ev.Kind, nanos(ev.At), ev.Detail)
	return s.wrap("record location event", err)
}

// LocationEvents returns the newest location events first, at most limit
// (DefaultLimit when 0, at most MaxLimit).
func (s *Registry) LocationEvents(ctx context.Context, limit int) ([]alerting.LocationEvent, error) {
	rows, err := s.query(ctx, `SELECT location, kind, at, detail FROM location_events ORDER BY id DESC LIMIT ?`, clampLimit(limit))
	out, err := scanAll(rows, err, func(sc scanner) (ev alerting.LocationEvent, err error) {
		var at sql.NullInt64
		err = sc.Scan(&ev.Location, &ev.Kind, &at, &ev.Detail)
		ev.At = fromNanos(at)
		return ev, err
	})
	return out, s.wrap("location events", err)
}
