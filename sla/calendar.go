package sla

import (
	"fmt"
	"time"
)

// MonthWindow returns the calendar month ("2026-10") in the IANA time zone
// tz ("" means UTC) as the window [from, to): local midnight on the 1st to
// local midnight on the 1st of the next month, both expressed in tz. Across
// a DST change the window is not a whole number of days: October 2026 in
// Europe/Berlin is 745 hours long, March 2026 there 743.
func MonthWindow(month, tz string) (from, to time.Time, err error) {
	loc, err := loadLocation(tz)
	if err != nil {
		return from, to, err
	}
	m, err := time.Parse("2006-01", month)
	if err != nil || m.Format("2006-01") != month {
		return from, to, fmt.Errorf("month %q: want YYYY-MM", month)
	}
	from = time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, loc)
	to = time.Date(m.Year(), m.Month()+1, 1, 0, 0, 0, 0, loc)
	return from, to, nil
}

func loadLocation(tz string) (*time.Location, error) {
	switch tz {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		// The server's own zone is no calendar a caller can rely on.
		return nil, fmt.Errorf("time zone %q: name an IANA zone", tz)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: unknown", tz)
	}
	return loc, nil
}
