package alerting

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
)

// Window is a maintenance window: while it is active for a target, that
// target's incidents are still recorded (and flagged) but nobody is notified.
// It is either one-off (Start, End) or recurring (Cron, Duration, TimeZone).
type Window struct {
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Targets lists target IDs; Labels selects targets whose labels include
	// all of these. A target matching either is covered; with both empty
	// the window covers every target.
	Targets []string          `yaml:"targets,omitempty" json:"targets,omitempty"`
	Labels  map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`

	// One-off: active from Start (inclusive) to End (exclusive).
	Start time.Time `yaml:"start,omitempty" json:"start,omitzero"`
	End   time.Time `yaml:"end,omitempty" json:"end,omitzero"`

	// Recurring: active for Duration from each time the five-field cron
	// expression fires ("0 2 * * SUN"; descriptors such as @daily work, @every
	// does not), read as wall-clock time in TimeZone (an IANA name, default
	// UTC). A start that falls in a spring-forward gap happens right after
	// the gap; one that occurs twice at fall-back happens at the first.
	// Duration is elapsed time, so a 2h window across a change lasts 2h.
	Cron     string        `yaml:"cron,omitempty" json:"cron,omitempty"`
	Duration time.Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	TimeZone string        `yaml:"time_zone,omitempty" json:"time_zone,omitempty"`

	sched cron.Schedule  // compiled Cron, evaluated in a wall-clock frame (UTC)
	loc   *time.Location // compiled TimeZone
}

// cronParser accepts the standard five fields and descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// neverRef is a fixed reference for checking that a schedule ever fires.
var neverRef = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Validate checks the window and compiles its schedule; path is the
// window's config path (e.g. "maintenance[1]") and every error names the
// field below it. The errors are invalid.Field values.
func (w *Window) Validate(path string) []error {
	var errs []error
	add := func(field, format string, args ...any) {
		p := path
		if field != "" {
			p += "." + field
		}
		errs = append(errs, invalid.Field{Path: p, Msg: fmt.Sprintf(format, args...)})
	}
	w.sched, w.loc = nil, nil

	oneOff := !w.Start.IsZero() || !w.End.IsZero()
	recurring := w.Cron != "" || w.Duration != 0 || w.TimeZone != ""
	switch {
	case oneOff && recurring:
		add("", "set either start and end (one-off) or cron and duration (recurring), not both")
	case !oneOff && !recurring:
		add("", "set start and end (one-off) or cron and duration (recurring)")
	}

	if oneOff {
		switch {
		case w.Start.IsZero():
			add("start", "required with end")
		case w.End.IsZero():
			add("end", "required with start")
		case !w.End.After(w.Start):
			add("end", "must be after start (%s)", w.Start.Format(time.RFC3339))
		}
	}

	if recurring {
		loc, err := time.LoadLocation(w.TimeZone)
		if err != nil {
			add("time_zone", "unknown time zone %q", w.TimeZone)
		}
		sched, err := parseCron(w.Cron)
		if err != nil {
			add("cron", "%v", err)
		}
		if w.Duration <= 0 {
			add("duration", "must be positive (got %s)", w.Duration)
		}
		if len(errs) == 0 {
			w.sched, w.loc = sched, loc
		}
	}

	for i, id := range w.Targets {
		if strings.TrimSpace(id) == "" {
			add(fmt.Sprintf("targets[%d]", i), "empty target id")
		}
	}
	for k := range w.Labels {
		if k == "" {
			add("labels", "empty label name")
		}
	}
	for _, e := range append(prober.CheckText(path+".name", w.Name), prober.CheckLabels(path+".labels", w.Labels)...) {
		errs = append(errs, e)
	}
	return errs
}

// parseCron parses a five-field expression into a schedule that reads
// times in UTC, which Active uses as a DST-free wall-clock frame.
func parseCron(expr string) (cron.Schedule, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return nil, errors.New("required for a recurring window")
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, errors.New("set the time zone with time_zone, not in the expression")
	}
	s, err := cronParser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("bad expression %q: %w", expr, err)
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("bad expression %q: @every is not a calendar schedule", expr)
	}
	spec.Location = time.UTC
	if spec.Next(neverRef).IsZero() {
		return nil, fmt.Errorf("expression %q never fires", expr)
	}
	return spec, nil
}

// Applies reports whether the window covers the target, ignoring time.
func (w *Window) Applies(targetID string, labels map[string]string) bool {
	if len(w.Targets) == 0 && len(w.Labels) == 0 {
		return true
	}
	for _, id := range w.Targets {
		if id == targetID {
			return true
		}
	}
	if len(w.Labels) == 0 {
		return false
	}
	for k, v := range w.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Active reports whether the window covers the target at now. Validate
// must have succeeded first; an invalid window is never active.
func (w *Window) Active(now time.Time, targetID string, labels map[string]string) bool {
	if !w.Applies(targetID, labels) {
		return false
	}
	if !w.Start.IsZero() && !now.Before(w.Start) && now.Before(w.End) {
		return true
	}
	return w.recurringActive(now)
}

// dstSlack widens the wall-clock search so that starts shifted by a zone
// offset change (at most a few hours anywhere) are still considered.
const dstSlack = 3 * time.Hour

// maxStarts bounds the search for very frequent schedules.
const maxStarts = 10000

// recurringActive reports whether some scheduled start s has s <= now <
// s+Duration. Schedules are evaluated on wall-clock times expressed in UTC
// (which has no DST) and each start is mapped back to a real instant in
// the window's zone, so DST neither skips nor doubles a window.
func (w *Window) recurringActive(now time.Time) bool {
	if w.sched == nil || w.loc == nil || w.Duration <= 0 {
		return false
	}
	from := wallClock(now.Add(-w.Duration), w.loc).Add(-dstSlack)
	until := wallClock(now, w.loc).Add(dstSlack)
	s := w.sched.Next(from)
	for i := 0; i < maxStarts && !s.IsZero() && !s.After(until); i++ {
		start := instant(s, w.loc)
		if !start.After(now) && now.Before(start.Add(w.Duration)) {
			return true
		}
		s = w.sched.Next(s)
	}
	return false
}

// wallClock returns the wall-clock reading of t in loc, as a UTC time.
func wallClock(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// instant maps a wall-clock reading (a UTC time) to the real instant in
// loc: a reading in a spring-forward gap moves forward past the gap (Go's
// time.Date does so), and a reading that occurs twice at fall-back is the
// first occurrence.
func instant(wall time.Time, loc *time.Location) time.Time {
	t := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), loc)
	_, off := t.Zone()
	_, offBefore := t.Add(-dstSlack).Zone()
	if offBefore != off {
		if alt := t.Add(time.Duration(off-offBefore) * time.Second); alt.Before(t) && wallClock(alt, loc).Equal(wall) {
			return alt
		}
	}
	return t
}
