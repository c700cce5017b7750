package notify

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryAfterError carries a provider's Retry-After: the dispatcher should
// wait at least After before the next attempt.
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the Retry-After carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// RetryableStatus is the one status-code → retry policy every HTTP
// notifier uses: 5xx, 429 (too many requests) and 408 (request timeout)
// are worth retrying; any other 4xx is permanent, and so is a 3xx (a
// notifier does not follow redirects: the endpoint is misconfigured). 1xx
// and 2xx never reach it.
func RetryableStatus(code int) bool {
	switch {
	case code == http.StatusTooManyRequests, code == http.StatusRequestTimeout:
		return true
	case code >= 300 && code < 500:
		return false
	}
	return true
}

// MaxRetryAfter caps what a provider may ask us to wait.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter parses a Retry-After header, given as delay-seconds or an
// HTTP-date (RFC 9110 §10.2.3). A date in the past yields 0. The result is
// capped at MaxRetryAfter. ok is false when h is empty or unparsable.
func ParseRetryAfter(h string, now time.Time) (d time.Duration, ok bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	if d < 0 {
		d = 0
	}
	return min(d, MaxRetryAfter), true
}
