package api

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/upwatch/upwatch/config"
)

// AuthFailureLimit bounds failed authentications (401s) per source: after
// Max failures within Window the source gets 429 with Retry-After on every
// authenticated route, with or without a valid key, until its window ends.
// An IPv6 source is its /64. The table keeps at most MaxSources sources;
// when full, ended windows go first, then the oldest.
type AuthFailureLimit struct {
	Max        int
	Window     time.Duration
	MaxSources int
}

// Defaults and bounds of AuthFailureLimit; New clamps to the bounds.
var (
	DefaultAuthFailureLimit = AuthFailureLimit{Max: 20, Window: time.Minute, MaxSources: 10000}
	MaxAuthFailureLimit     = AuthFailureLimit{Max: config.MaxAuthFailures, Window: config.MaxAuthFailureWindow, MaxSources: config.MaxAuthFailureSources}
)

// authFailLogEvery is how often a source's failures are logged at most.
const authFailLogEvery = time.Minute

func (l AuthFailureLimit) withDefaults() AuthFailureLimit {
	d, hi := DefaultAuthFailureLimit, MaxAuthFailureLimit
	if l.Max <= 0 {
		l.Max = d.Max
	}
	if l.Window <= 0 {
		l.Window = d.Window
	}
	if l.MaxSources <= 0 {
		l.MaxSources = d.MaxSources
	}
	l.Max, l.Window, l.MaxSources = min(l.Max, hi.Max), min(l.Window, hi.Window), min(l.MaxSources, hi.MaxSources)
	return l
}

// authFailures counts failures per source in fixed windows.
type authFailures struct {
	lim     AuthFailureLimit
	trusted []netip.Prefix // reverse proxies whose X-Forwarded-For is believed
	now     func() time.Time
	log     *slog.Logger

	mu  sync.Mutex
	src map[string]*failWindow
}

type failWindow struct {
	start   time.Time // when the window began (its first failure)
	count   int
	logged  time.Time // when a failure of this source was last logged
	dropped int       // failures not logged since
}

func newAuthFailures(lim AuthFailureLimit, trusted []netip.Prefix, now func() time.Time, log *slog.Logger) *authFailures {
	return &authFailures{lim: lim.withDefaults(), trusted: trusted, now: now, log: log, src: map[string]*failWindow{}}
}

// maxForwardedHops bounds how many X-Forwarded-For entries are looked at.
const maxForwardedHops = 32

// source is the key a request's failures count under: its client's IP, or
// the /64 of an IPv6 address (one host commonly holds a whole /64).
func (a *authFailures) source(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = forwardedClient(addr.Unmap(), r.Header.Values("X-Forwarded-For"), a.trusted)
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// forwardedClient is the client of a request whose TCP peer is peer. Only
// a trusted proxy's word is taken: each proxy appends the address it got
// the request from to X-Forwarded-For, so from the right, entries are
// written by trusted proxies up to and including the first address that
// is not one of them, the client; whatever lies left of it the client
// wrote itself. An entry that is not an address ends the walk at the hop
// before it.
func forwardedClient(peer netip.Addr, forwarded []string, trusted []netip.Prefix) netip.Addr {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !isTrusted(peer) {
		return peer
	}
	client := peer
	hops := 0
	for i := len(forwarded) - 1; i >= 0; i-- {
		entries := strings.Split(forwarded[i], ",")
		for j := len(entries) - 1; j >= 0; j-- {
			if hops++; hops > maxForwardedHops {
				return client
			}
			a, err := netip.ParseAddr(strings.TrimSpace(entries[j]))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !isTrusted(client) {
				return client
			}
		}
	}
	return client
}

// blocked says whether src has used up its failures, and for how long
// it stays blocked.
func (a *authFailures) blocked(src string) (time.Duration, bool) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	w, ok := a.src[src]
	if !ok || w.count < a.lim.Max {
		return 0, false
	}
	left := w.start.Add(a.lim.Window).Sub(now)
	if left <= 0 {
		return 0, false
	}
	return left, true
}

// fail counts one failure of src and logs it (never the key) unless this
// source was logged less than a minute ago.
func (a *authFailures) fail(src, path, reason string) {
	now := a.now()
	a.mu.Lock()
	w, ok := a.src[src]
	if !ok {
		a.makeRoom(now)
		w = &failWindow{start: now}
		a.src[src] = w
	} else if now.Sub(w.start) >= a.lim.Window || now.Before(w.start) {
		w.start, w.count = now, 0
	}
	w.count++
	count := w.count
	if !w.logged.IsZero() && now.Sub(w.logged) < authFailLogEvery && !now.Before(w.logged) {
		w.dropped++
		a.mu.Unlock()
		return
	}
	w.logged = now
	unlogged := w.dropped
	w.dropped = 0
	a.mu.Unlock()
	a.log.Warn("api authentication failed", "source", src, "path", path, "reason", reason,
		"failures_in_window", count, "not_logged_since_last", unlogged)
}

// makeRoom keeps the table under MaxSources: ended windows go, then the
// source whose window began first. Called with mu held.
func (a *authFailures) makeRoom(now time.Time) {
	if len(a.src) < a.lim.MaxSources {
		return
	}
	for k, w := range a.src {
		if now.Sub(w.start) >= a.lim.Window && now.Sub(w.logged) >= authFailLogEvery {
			delete(a.src, k)
		}
	}
	for len(a.src) >= a.lim.MaxSources {
		var oldest string
		var at time.Time
		for k, w := range a.src {
			if oldest == "" || w.start.Before(at) {
				oldest, at = k, w.start
			}
		}
		delete(a.src, oldest)
	}
}

// size is how many sources are tracked (for tests).
func (a *authFailures) size() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.src)
}
