package alerting

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/invalid"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// activeAt checks w at each instant: true entries must be active, false
// ones not.
func activeAt(t *testing.T, w *Window, cases map[string]bool) {
	t.Helper()
	for at, want := range cases {
		require.Equal(t, want, w.Active(utc(at), "web", nil), "at %s", at)
	}
}

func valid(t *testing.T, w Window) *Window {
	t.Helper()
	require.Empty(t, w.Validate("maintenance[0]"))
	return &w
}

func TestWindowOneOff(t *testing.T) {
	w := valid(t, Window{Start: utc("2024-05-06T22:00:00Z"), End: utc("2024-05-07T01:30:00Z")})
	activeAt(t, w, map[string]bool{
		"2024-05-06T21:59:59Z": false,
		"2024-05-06T22:00:00Z": true, // start is inclusive
		"2024-05-07T00:00:00Z": true,
		"2024-05-07T01:29:59Z": true,
		"2024-05-07T01:30:00Z": false, // end is exclusive
		"2024-05-08T00:00:00Z": false,
	})
	// Offsets in the times are honoured.
	require.True(t, w.Active(time.Date(2024, 5, 7, 2, 0, 0, 0, time.FixedZone("CEST", 2*3600)), "web", nil))
}

func TestWindowRecurringUTC(t *testing.T) {
	w := valid(t, Window{Cron: "0 23 * * *", Duration: 3 * time.Hour}) // no zone: UTC
	activeAt(t, w, map[string]bool{
		"2024-05-06T22:59:59Z": false,
		"2024-05-06T23:00:00Z": true,
		"2024-05-07T01:59:59Z": true, // across midnight
		"2024-05-07T02:00:00Z": false,
		"2024-05-07T12:00:00Z": false,
	})
}

func TestWindowRecurringDailyBerlinAcrossDST(t *testing.T) {
	// 02:00-04:00 Berlin time every day: 01:00-03:00 UTC in winter (CET),
	// 00:00-02:00 UTC in summer (CEST).
	w := valid(t, Window{Cron: "0 2 * * *", Duration: 2 * time.Hour, TimeZone: "Europe/Berlin"})
	activeAt(t, w, map[string]bool{
		// Saturday before the spring change: CET.
		"2024-03-30T00:59:59Z": false,
		"2024-03-30T01:00:00Z": true,
		"2024-03-30T02:59:59Z": true,
		"2024-03-30T03:00:00Z": false,
		// The change: 02:00 CET does not exist (clocks jump to 03:00 CEST
		// = 01:00 UTC); the window still happens, starting right after the
		// gap and lasting two real hours.
		"2024-03-31T00:00:00Z": false,
		"2024-03-31T00:59:59Z": false,
		"2024-03-31T01:00:00Z": true,
		"2024-03-31T02:59:59Z": true,
		"2024-03-31T03:00:00Z": false,
		// The day after: CEST.
		"2024-04-01T23:59:59Z": false,
		"2024-04-01T00:00:00Z": true,
		"2024-04-01T01:59:59Z": true,
		"2024-04-01T02:00:00Z": false,
		// Autumn: 02:00-03:00 happens twice on 27 Oct; the window starts at
		// the first 02:00 (CEST, 00:00 UTC) and lasts two real hours.
		"2024-10-26T00:00:00Z": true,
		"2024-10-26T02:00:00Z": false,
		"2024-10-26T23:59:59Z": false,
		"2024-10-27T00:00:00Z": true,
		"2024-10-27T01:59:59Z": true,
		"2024-10-27T02:00:00Z": false, // 03:00 CET, only once
		"2024-10-27T02:30:00Z": false,
		"2024-10-28T00:59:59Z": false,
		"2024-10-28T01:00:00Z": true, // 02:00 CET
		"2024-10-28T02:59:59Z": true,
		"2024-10-28T03:00:00Z": false,
	})
}

func TestWindowRecurringWeeklyBerlinAcrossDST(t *testing.T) {
	w := valid(t, Window{Name: "sunday patching", Cron: "0 2 * * SUN", Duration: 2 * time.Hour, TimeZone: "Europe/Berlin"})
	activeAt(t, w, map[string]bool{
		"2024-03-24T01:00:00Z": true, // Sunday, CET
		"2024-03-24T03:00:00Z": false,
		"2024-03-25T01:00:00Z": false, // Monday
		"2024-03-30T01:00:00Z": false, // Saturday
		"2024-03-31T00:30:00Z": false, // the change: starts after the gap
		"2024-03-31T01:00:00Z": true,
		"2024-03-31T02:59:00Z": true,
		"2024-04-07T00:00:00Z": true, // Sunday, CEST
		"2024-04-07T01:59:59Z": true,
		"2024-04-07T02:00:00Z": false,
		"2024-10-27T00:00:00Z": true, // fall-back Sunday: first 02:00
		"2024-10-27T02:00:00Z": false,
		"2024-11-03T00:30:00Z": false, // Sunday, CET again
		"2024-11-03T01:00:00Z": true,
	})
}

func TestWindowShortRecurringAtFallBackOnce(t *testing.T) {
	// 02:30 happens twice on 27 Oct 2024 in Berlin (00:30 and 01:30 UTC).
	w := valid(t, Window{Cron: "30 2 * * *", Duration: 30 * time.Minute, TimeZone: "Europe/Berlin"})
	activeAt(t, w, map[string]bool{
		"2024-10-27T00:29:59Z": false,
		"2024-10-27T00:30:00Z": true,
		"2024-10-27T00:59:59Z": true,
		"2024-10-27T01:00:00Z": false,
		"2024-10-27T01:30:00Z": false, // the second 02:30 does not start another
		"2024-10-27T01:45:00Z": false,
	})
}

func TestWindowFrequentSchedule(t *testing.T) {
	// Every 15 minutes for 5 minutes; long windows over frequent schedules
	// stay cheap because the first start found decides.
	w := valid(t, Window{Cron: "*/15 * * * *", Duration: 5 * time.Minute})
	activeAt(t, w, map[string]bool{
		"2024-05-06T10:00:00Z": true,
		"2024-05-06T10:04:59Z": true,
		"2024-05-06T10:05:00Z": false,
		"2024-05-06T10:14:59Z": false,
		"2024-05-06T10:15:00Z": true,
	})
	always := valid(t, Window{Cron: "* * * * *", Duration: 7 * 24 * time.Hour})
	require.True(t, always.Active(utc("2024-05-06T10:00:30Z"), "web", nil))
}

func TestWindowDescriptor(t *testing.T) {
	w := valid(t, Window{Cron: "@daily", Duration: time.Hour, TimeZone: "America/New_York"})
	activeAt(t, w, map[string]bool{
		"2024-01-15T05:30:00Z": true, // 00:30 EST
		"2024-07-15T04:30:00Z": true, // 00:30 EDT
		"2024-07-15T05:30:00Z": false,
	})
}

func TestWindowSelection(t *testing.T) {
	start, end := utc("2024-05-06T00:00:00Z"), utc("2024-05-07T00:00:00Z")
	now := utc("2024-05-06T12:00:00Z")
	prod := map[string]string{"env": "prod", "team": "core"}
	staging := map[string]string{"env": "staging", "team": "core"}
	tests := []struct {
		name   string
		w      Window
		target string
		labels map[string]string
		want   bool
	}{
		{"all targets", Window{}, "web", prod, true},
		{"all targets, no labels", Window{}, "web", nil, true},
		{"listed target", Window{Targets: []string{"api", "web"}}, "web", nil, true},
		{"unlisted target", Window{Targets: []string{"api"}}, "web", prod, false},
		{"one label", Window{Labels: map[string]string{"env": "prod"}}, "web", prod, true},
		{"all labels must match", Window{Labels: map[string]string{"env": "prod", "team": "core"}}, "web", prod, true},
		{"a label differs", Window{Labels: map[string]string{"env": "prod", "team": "core"}}, "web", staging, false},
		{"a label is missing", Window{Labels: map[string]string{"region": "eu"}}, "web", prod, false},
		{"labels, target has none", Window{Labels: map[string]string{"env": "prod"}}, "web", nil, false},
		{"listed or labelled: listed", Window{Targets: []string{"web"}, Labels: map[string]string{"env": "prod"}}, "web", staging, true},
		{"listed or labelled: labelled", Window{Targets: []string{"api"}, Labels: map[string]string{"env": "prod"}}, "web", prod, true},
		{"listed or labelled: neither", Window{Targets: []string{"api"}, Labels: map[string]string{"env": "prod"}}, "web", staging, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.w.Start, tt.w.End = start, end
			w := valid(t, tt.w)
			require.Equal(t, tt.want, w.Applies(tt.target, tt.labels))
			require.Equal(t, tt.want, w.Active(now, tt.target, tt.labels))
			require.False(t, w.Active(end, tt.target, tt.labels), "never active outside its time")
		})
	}
}

func TestWindowValidate(t *testing.T) {
	start, end := utc("2024-05-06T00:00:00Z"), utc("2024-05-07T00:00:00Z")
	tests := []struct {
		name string
		w    Window
		want []string // "path: message" prefixes, in order
	}{
		{"one-off", Window{Start: start, End: end}, nil},
		{"recurring", Window{Cron: "0 2 * * SUN", Duration: 2 * time.Hour, TimeZone: "Europe/Berlin"}, nil},
		{"neither", Window{Name: "x"}, []string{"maintenance[1]: set start and end"}},
		{"both", Window{Start: start, End: end, Cron: "0 2 * * *", Duration: time.Hour}, []string{"maintenance[1]: set either"}},
		{"end before start", Window{Start: end, End: start}, []string{"maintenance[1].end: must be after start"}},
		{"end equals start", Window{Start: start, End: start}, []string{"maintenance[1].end: must be after start"}},
		{"start without end", Window{Start: start}, []string{"maintenance[1].end: required with start"}},
		{"end without start", Window{End: end}, []string{"maintenance[1].start: required with end"}},
		{"bad cron", Window{Cron: "0 25 * * *", Duration: time.Hour}, []string{`maintenance[1].cron: bad expression "0 25 * * *"`}},
		{"cron with too many fields", Window{Cron: "0 0 2 * * SUN", Duration: time.Hour}, []string{"maintenance[1].cron: bad expression"}},
		{"garbage cron", Window{Cron: "sometimes", Duration: time.Hour}, []string{"maintenance[1].cron: bad expression"}},
		{"@every", Window{Cron: "@every 1h", Duration: time.Hour}, []string{"maintenance[1].cron: bad expression \"@every 1h\": @every"}},
		{"zone inside cron", Window{Cron: "CRON_TZ=Europe/Berlin 0 2 * * *", Duration: time.Hour}, []string{"maintenance[1].cron: set the time zone with time_zone"}},
		{"never fires", Window{Cron: "0 0 30 2 *", Duration: time.Hour}, []string{`maintenance[1].cron: expression "0 0 30 2 *" never fires`}},
		{"duration without cron", Window{Duration: time.Hour}, []string{"maintenance[1].cron: required"}},
		{"cron without duration", Window{Cron: "0 2 * * *"}, []string{"maintenance[1].duration: must be positive"}},
		{"negative duration", Window{Cron: "0 2 * * *", Duration: -time.Hour}, []string{"maintenance[1].duration: must be positive"}},
		{"bad time zone", Window{Cron: "0 2 * * *", Duration: time.Hour, TimeZone: "Europe/Atlantis"}, []string{`maintenance[1].time_zone: unknown time zone "Europe/Atlantis"`}},
		{"several at once", Window{Cron: "61 * * * *", TimeZone: "Mars/Olympus"}, []string{
			"maintenance[1].time_zone: unknown", "maintenance[1].cron: bad expression", "maintenance[1].duration: must be positive",
		}},
		{"empty target id", Window{Start: start, End: end, Targets: []string{"web", " "}}, []string{"maintenance[1].targets[1]: empty target id"}},
		{"empty label name", Window{Start: start, End: end, Labels: map[string]string{"": "x"}}, []string{"maintenance[1].labels: empty label name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.w.Validate("maintenance[1]")
			require.Len(t, errs, len(tt.want), "%v", errs)
			for i, err := range errs {
				require.Truef(t, strings.HasPrefix(err.Error(), tt.want[i]), "error %q should start with %q", err, tt.want[i])
				var fe invalid.Field
				require.True(t, errors.As(err, &fe), "errors are invalid.Field")
			}
			if len(errs) > 0 && tt.w.Cron != "" && tt.w.Start.IsZero() {
				require.False(t, tt.w.Active(utc("2024-05-06T02:30:00Z"), "web", nil), "an invalid recurring window is never active")
			}
		})
	}
}

func TestWindowNotValidatedIsNeverActiveWhenRecurring(t *testing.T) {
	w := Window{Cron: "* * * * *", Duration: time.Hour}
	require.False(t, w.Active(utc("2024-05-06T02:30:00Z"), "web", nil))
	require.Empty(t, w.Validate("m"))
	require.True(t, w.Active(utc("2024-05-06T02:30:00Z"), "web", nil))
}

func TestInstant(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	wall := func(s string) time.Time { return utc(s) } // a wall-clock reading written as UTC
	require.Equal(t, utc("2024-03-31T01:30:00Z"), instant(wall("2024-03-31T02:30:00Z"), berlin).UTC(), "gap: moved past it")
	require.Equal(t, utc("2024-10-27T00:30:00Z"), instant(wall("2024-10-27T02:30:00Z"), berlin).UTC(), "twice: the first")
	require.Equal(t, utc("2024-10-27T02:30:00Z"), instant(wall("2024-10-27T03:30:00Z"), berlin).UTC())
	require.Equal(t, utc("2024-07-01T10:00:00Z"), instant(wall("2024-07-01T12:00:00Z"), berlin).UTC())
}
