// Package prober runs one check of one target and says what happened. Each
// check kind is one function with one signature, registered in kinds; the
// Prober adds what every kind shares: the timeout, the SSRF-guarded dialer,
// panic recovery and the common fields of the Result. It knows nothing of
// storage, metrics or alerting.
package prober

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upwatch/upwatch/internal/clock"
	"github.com/upwatch/upwatch/internal/ssrf"
	"github.com/upwatch/upwatch/secret"
)

// Func checks t and returns the verdict. It must honour ctx (which carries
// the target's timeout) and set Success, the phases and, on failure, the
// class and message. The Prober fills in identity, location, start and total
// duration.
type Func func(ctx context.Context, p *Prober, t *Target) Result

// kinds is the one list of check kinds; config validation uses it too.
var kinds = map[string]Func{
	"http": probeHTTP,
	"tcp":  probeTCP,
	"dns":  probeDNS,
	"tls":  probeTLS,
	"push": probePush,
	"icmp": probeICMP,
	"grpc": probeGRPC,
}

// KindNames returns the known kinds, sorted.
func KindNames() []string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// Options configure a Prober.
type Options struct {
	// Location names where the checks run from; every Result carries it.
	Location string
	// AllowPrivate lets checks reach loopback, private, link-local and
	// every other special-purpose address, and the host's own addresses.
	// Off by default: see DESIGN §5 (SSRF guard).
	AllowPrivate bool
	Logger       *slog.Logger
	// Now stamps each Result's Start (default time.Now); durations are
	// measured on the monotonic clock whatever it says.
	Now func() time.Time
}

// Prober runs checks. It is safe for concurrent use.
type Prober struct {
	location string
	guard    *ssrf.Guard // nil when private targets are allowed
	log      *slog.Logger
	oauth    *oauthCache
	now      func() time.Time
	edges    edges // last verdicts, for capture: transitions
	runners  runners
}

// New returns a Prober.
func New(o Options) *Prober {
	if o.Location == "" {
		o.Location = "local"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Prober{location: o.Location, log: o.Logger, oauth: newOAuthCache(), now: clock.Or(o.Now), runners: newRunners()}
	if !o.AllowPrivate {
		p.guard = ssrf.New()
	}
	return p
}

// Location is where this prober runs from.
func (p *Prober) Location() string { return p.location }

// OverrunGrace is how long past its deadline Check waits for a check to
// return its own (more telling) timeout before it answers one itself.
const OverrunGrace = 100 * time.Millisecond

// overranMessage is the error of a check answered for by Check or Overran.
const overranMessage = "the check did not stop at its deadline"

// Check runs one check of t within t.Timeout: one deadline covers every
// phase (DNS, connect, TLS, request, redirects, body, OAuth2 token), and
// Check returns by the deadline plus OverrunGrace even if the check does
// not. A check that timed out records t.Timeout as its duration at most:
// time past it is the prober's own unwinding, not the target's. t must have
// been normalised and validated. A panicking check is recovered and
// reported as a failed Result of class internal: a target can never take
// the process down.
func (p *Prober) Check(ctx context.Context, t *Target) Result {
	return p.check(ctx, t, true)
}

// CheckInline is Check on the calling goroutine, for a caller that bounds
// overruns itself (the scheduler, answering with Overran): it returns when
// the check does. Every kind honours ctx, so that is by the deadline, but
// nothing but the kind makes it so. It saves Check's hand-over to another
// goroutine and back, which at thousands of checks a second is CPU spent
// waking threads.
func (p *Prober) CheckInline(ctx context.Context, t *Target) Result {
	return p.check(ctx, t, false)
}

// Overran is the result of a check of t, begun at start, that had not
// returned OverrunGrace after its deadline: a timeout, as Check reports one.
func (p *Prober) Overran(t *Target, start time.Time) Result {
	r := Result{TargetID: t.ID, Target: t.Name, Kind: t.Kind, Location: p.location, Start: start, Duration: t.Timeout}.
		Fail(ClassTimeout, overranMessage)
	p.log.Warn("check did not stop at its deadline", "target", t.ID, "kind", t.Kind)
	p.keep(t, &r)
	return r
}

func (p *Prober) check(ctx context.Context, t *Target, bounded bool) (res Result) {
	began := time.Now() // monotonic, for the duration
	start := p.now()
	base := Result{TargetID: t.ID, Target: t.Name, Kind: t.Kind, Location: p.location, Start: start}
	defer func() {
		if v := recover(); v != nil {
			res = p.panicked(base, t, v)
		}
		res.TargetID, res.Target, res.Kind, res.Location, res.Start = base.TargetID, base.Target, base.Kind, base.Location, start
		res.Duration = time.Since(began)
		if res.ErrorClass == ClassTimeout && res.Duration > t.Timeout {
			res.Duration = t.Timeout
		}
		if res.Success {
			res.ErrorClass, res.Error = ClassNone, ""
		}
		p.keep(t, &res)
	}()
	fn, ok := kinds[t.Kind]
	if !ok {
		return base.Fail(ClassInternal, fmt.Sprintf("unknown kind %q", t.Kind))
	}
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	if bounded {
		res = p.bounded(ctx, fn, t, base)
	} else {
		res = fn(ctx, p, t)
	}
	if !res.Success && res.ErrorClass == ClassNone {
		res.ErrorClass = ClassInternal
	}
	// A check that ended because its context ended reports that, whatever
	// the kind made of the error.
	if !res.Success && ctx.Err() != nil && res.ErrorClass != ClassBlocked {
		if errors.Is(context.Cause(ctx), context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			res.ErrorClass = ClassTimeout
			res.Error = fmt.Sprintf("timed out after %s: %s", t.Timeout, res.Error)
		} else {
			res.ErrorClass = ClassCanceled
		}
	}
	return res
}

// bounded runs fn on a goroutine of its own and returns its result, or a
// timeout once ctx has ended and fn has not returned within OverrunGrace
// (fn then finishes in the background, its result dropped).
func (p *Prober) bounded(ctx context.Context, fn Func, t *Target, base Result) Result {
	c := calls.Get().(*call)
	p.runners.run(func() {
		defer func() {
			if v := recover(); v != nil {
				c.res = p.panicked(base, t, v)
			}
			c.done <- struct{}{}
		}()
		c.res = fn(ctx, p, t)
	})
	select {
	case <-c.done:
		return c.finish()
	case <-ctx.Done():
	}
	grace := time.NewTimer(OverrunGrace)
	defer grace.Stop()
	select {
	case <-c.done:
		return c.finish()
	case <-grace.C:
		// c stays with the overrunning check: it is not reused.
		p.log.Warn("check did not stop at its deadline", "target", t.ID, "kind", t.Kind)
		return base.Fail(ClassTimeout, overranMessage)
	}
}

// call carries one check's result from its runner back to bounded. Calls
// are reused (a Result is most of what a check allocates itself), except
// one whose check overran: its runner may still write to it.
type call struct {
	res  Result
	done chan struct{}
}

var calls = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}

// finish returns c's result and c to the pool.
func (c *call) finish() Result {
	r := c.res
	c.res = Result{}
	calls.Put(c)
	return r
}

func (p *Prober) panicked(base Result, t *Target, v any) Result {
	p.log.Error("check panicked", "target", t.ID, "panic", v, "stack", string(debug.Stack()))
	return base.Fail(ClassInternal, fmt.Sprintf("check panicked: %v", v))
}

// ErrBlocked is returned (wrapped) when the SSRF guard refuses an address.
var ErrBlocked = ssrf.ErrBlocked

// Classify maps an error from dialing, TLS or HTTP to a failure class and a
// short message with credentials removed from any URL.
func Classify(err error) (ErrorClass, string) {
	msg := redactError(err)
	var dnsErr *net.DNSError
	var certInvalid x509.CertificateInvalidError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var alertErr tls.AlertError
	var opErr *net.OpError
	switch {
	case errors.Is(err, ErrBlocked):
		return ClassBlocked, msg
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ClassTimeout, msg
	case errors.Is(err, context.Canceled):
		return ClassCanceled, msg
	case errors.As(err, &dnsErr):
		if dnsErr.IsTimeout {
			return ClassTimeout, msg
		}
		return ClassDNS, msg
	case errors.As(err, &certInvalid), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &verifyErr), errors.As(err, &recErr), errors.As(err, &alertErr),
		strings.Contains(msg, "tls: "):
		return ClassTLS, msg
	case errors.As(err, &opErr) && opErr.Op == "dial":
		if opErr.Timeout() {
			return ClassTimeout, msg
		}
		return ClassConnect, msg
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ClassTimeout, msg
	}
	return ClassProtocol, msg
}

// redactError renders err with any URL's password and secret query values
// hidden.
func redactError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("%s %q: %s", ue.Op, secret.RedactURL(ue.URL, secret.URLCredentials), redactError(ue.Err))
	}
	return err.Error()
}
