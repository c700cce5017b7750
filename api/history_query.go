package api

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/upwatch/upwatch/prober"
)

// Query parameters shared by the history, SLA, export and report routes.

// queryIssues collects problems with query parameters; problem turns them
// into one 400 problem naming every parameter ("query.from").
type queryIssues []FieldIssue

func (q *queryIssues) add(param, format string, args ...any) {
	*q = append(*q, FieldIssue{Path: "query." + param, Message: fmt.Sprintf(format, args...)})
}

func (q queryIssues) problem() error {
	if len(q) == 0 {
		return nil
	}
	p := Problem(http.StatusBadRequest, "Invalid Query",
		fmt.Sprintf("the request has %d invalid query parameter(s)", len(q))).(*ProblemError)
	p.Type = ProblemType + "invalid-query"
	p.Errors = q
	return p
}

// queryTime reads an RFC 3339 time; ok is false when the parameter is
// absent.
func (q *queryIssues) time(v url.Values, name string) (t time.Time, ok bool) {
	s := v.Get(name)
	if s == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.add(name, "must be an RFC 3339 time such as 2026-10-01T00:00:00Z (got %q)", s)
		return time.Time{}, false
	}
	if t.Before(MinQueryTime) || t.After(MaxQueryTime) {
		q.add(name, "must be from %s to %s (got %q)", MinQueryTime.Format(time.RFC3339), MaxQueryTime.Format(time.RFC3339), s)
		return time.Time{}, false
	}
	return t, true
}

// MinQueryTime and MaxQueryTime bound every time parameter: the stores
// count time in int64 nanoseconds since 1970, which covers 1677-09-21 to
// 2262-04-11; the bounds keep a year's margin for default windows and
// time zones, so no window wraps around and silently matches nothing.
var (
	MinQueryTime = time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxQueryTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// queryInt reads an integer in [lo, hi]; def when absent.
func (q *queryIssues) int(v url.Values, name string, def, lo, hi int) int {
	s := v.Get(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		q.add(name, "must be an integer from %d to %d (got %q)", lo, hi, s)
		return def
	}
	return n
}

// queryBool reads true/false; def when absent.
func (q *queryIssues) bool(v url.Values, name string, def bool) bool {
	switch v.Get(name) {
	case "":
		return def
	case "true", "1":
		return true
	case "false", "0":
		return false
	}
	q.add(name, "must be true or false (got %q)", v.Get(name))
	return def
}

// oneOf reads a parameter that must be one of allowed; def when absent.
func (q *queryIssues) oneOf(v url.Values, name, def string, allowed ...string) string {
	s := v.Get(name)
	if s == "" {
		return def
	}
	if !slices.Contains(allowed, s) {
		q.add(name, "must be one of %s (got %q)", strings.Join(allowed, ", "), s)
		return def
	}
	return s
}

// Downsampling.

// Step limits: buckets are at least a minute and at most a day wide, and
// one answer holds at most MaxBuckets of them.
const (
	MinStep    = time.Minute
	MaxStep    = 24 * time.Hour
	MaxBuckets = 10000
)

// parseStep reads a bucket width: a Go duration ("1m", "5m", "1h", "90s")
// or "1d", between MinStep and MaxStep, dividing a day evenly so buckets
// line up with midnight UTC.
func parseStep(s string) (time.Duration, error) {
	var d time.Duration
	if s == "1d" {
		d = 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("must be a duration such as 1m, 5m, 1h or 1d (got %q)", s)
		}
	}
	if d < MinStep || d > MaxStep {
		return 0, fmt.Errorf("must be from %s to 1d (got %q)", MinStep, s)
	}
	if (24*time.Hour)%d != 0 {
		return 0, fmt.Errorf("must divide a day evenly, e.g. 1m, 5m, 15m, 1h, 6h, 1d (got %q)", s)
	}
	return d, nil
}

// sampleBucket is one downsampled step: the checks whose start lies in
// [start, end). Latencies are the total duration of each check, failed
// ones included (as in the hourly rollups).
type sampleBucket struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Checks   int64     `json:"checks"`
	Failures int64     `json:"failures"`
	// UpRatio is (checks − failures) / checks, from 0 to 1.
	UpRatio float64        `json:"up_ratio"`
	Latency latencySeconds `json:"latency_seconds"`
}

// latencySeconds summarises a bucket's latencies, in seconds. P95 is the
// nearest-rank 95th percentile of the bucket's own values (exact, not
// estimated from a histogram).
type latencySeconds struct {
	Avg float64 `json:"avg"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	P95 float64 `json:"p95"`
}

// downsampler folds samples, oldest first, into step-wide buckets aligned
// to multiples of step since the Unix epoch, and hands each non-empty
// bucket to emit as soon as it is complete. Memory is one bucket's
// latencies.
type downsampler struct {
	step time.Duration
	emit func(sampleBucket) error

	start    time.Time
	checks   int64
	failures int64
	lat      []time.Duration
}

func newDownsampler(step time.Duration, emit func(sampleBucket) error) *downsampler {
	return &downsampler{step: step, emit: emit}
}

// bucketStart returns the start of the step holding t, in UTC.
func bucketStart(t time.Time, step time.Duration) time.Time {
	return t.UTC().Truncate(step)
}

// add folds one sample in; samples must come oldest first.
func (d *downsampler) add(r prober.Result) error {
	b := bucketStart(r.Start, d.step)
	if d.checks > 0 && !b.Equal(d.start) {
		if err := d.flush(); err != nil {
			return err
		}
	}
	if d.checks == 0 {
		d.start = b
	}
	d.checks++
	if !r.Success {
		d.failures++
	}
	d.lat = append(d.lat, r.Duration)
	return nil
}

// flush emits the bucket in progress, if any.
func (d *downsampler) flush() error {
	if d.checks == 0 {
		return nil
	}
	slices.Sort(d.lat)
	var sum time.Duration
	for _, l := range d.lat {
		sum += l
	}
	n := len(d.lat)
	b := sampleBucket{
		Start: d.start, End: d.start.Add(d.step),
		Checks: d.checks, Failures: d.failures,
		UpRatio: float64(d.checks-d.failures) / float64(d.checks),
		Latency: latencySeconds{
			Avg: seconds(sum / time.Duration(n)),
			Min: seconds(d.lat[0]),
			Max: seconds(d.lat[n-1]),
			P95: seconds(nearestRank(d.lat, 0.95)),
		},
	}
	d.checks, d.failures, d.lat = 0, 0, d.lat[:0]
	return d.emit(b)
}

// nearestRank returns the q-quantile of sorted by the nearest-rank method:
// the value at rank ⌈q·n⌉.
func nearestRank(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// seconds is d in seconds, rounded to the nanosecond (so 40 ms is 0.04,
// not 0.04000000000000001).
func seconds(d time.Duration) float64 {
	return math.Round(d.Seconds()*1e9) / 1e9
}

// sampleDoc is one raw sample as the API shows it: durations in seconds,
// times in RFC 3339.
type sampleDoc struct {
	Time            time.Time     `json:"time"`
	TargetID        string        `json:"target_id"`
	Location        string        `json:"location,omitempty"`
	Success         bool          `json:"success"`
	DurationSeconds float64       `json:"duration_seconds"`
	Phases          phasesSeconds `json:"phases_seconds"`
	StatusCode      int           `json:"status_code,omitempty"`
	ErrorClass      string        `json:"error_class,omitempty"`
	Error           string        `json:"error,omitempty"`
	TLSExpiry       *time.Time    `json:"tls_expiry,omitempty"`
	BodyBytes       int64         `json:"body_bytes,omitempty"`
	RemoteAddr      string        `json:"remote_addr,omitempty"`
}

// phasesSeconds are a check's phase timings in seconds; 0 for a phase that
// did not happen.
type phasesSeconds struct {
	DNS      float64 `json:"dns"`
	Connect  float64 `json:"connect"`
	TLS      float64 `json:"tls"`
	TTFB     float64 `json:"ttfb"`
	Transfer float64 `json:"transfer"`
}

func newSampleDoc(r prober.Result) sampleDoc {
	d := sampleDoc{
		Time: r.Start.UTC(), TargetID: r.TargetID, Location: r.Location, Success: r.Success,
		DurationSeconds: seconds(r.Duration),
		Phases: phasesSeconds{
			DNS: seconds(r.Phases.DNS), Connect: seconds(r.Phases.Connect), TLS: seconds(r.Phases.TLS),
			TTFB: seconds(r.Phases.TTFB), Transfer: seconds(r.Phases.Transfer),
		},
		StatusCode: r.StatusCode, ErrorClass: string(r.ErrorClass), Error: r.Error,
		BodyBytes: r.BodyBytes, RemoteAddr: r.RemoteAddr,
	}
	if !r.TLSExpiry.IsZero() {
		t := r.TLSExpiry.UTC()
		d.TLSExpiry = &t
	}
	return d
}

// SampleDocument is a result as the API shows it: durations in seconds,
// times in RFC 3339, empty fields left out. `upwatch check -json` prints
// it, so the CLI and the API read alike.
func SampleDocument(r prober.Result) any { return newSampleDoc(r) }
