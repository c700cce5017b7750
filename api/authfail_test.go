package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFailedAuthenticationIsLimitedAndLogged: after Max failures in a
// window a source gets 429 with Retry-After, a valid key included, until
// the window (on the injected clock) ends; failures are logged at most once
// a minute per source, with the reason and never the key.
func TestFailedAuthenticationIsLimitedAndLogged(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.AuthFailures = AuthFailureLimit{Max: 3, Window: time.Minute} })
	good := h.key(tenantA, ScopeRead)
	unknown := KeyPrefix + strings.Repeat("A", keySecretLen)
	logLines := func() []string {
		var out []string
		for l := range strings.Lines(h.logs.String()) {
			if strings.Contains(l, "api authentication failed") {
				out = append(out, l)
			}
		}
		return out
	}

	require.Equal(t, http.StatusUnauthorized, h.do(http.MethodGet, Prefix+"/tenant", unknown, nil).Status)
	require.Equal(t, http.StatusUnauthorized, h.do(http.MethodGet, Prefix+"/tenant", "", nil).Status)
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/tenant", good, nil).Status, "two failures do not block")
	require.Equal(t, http.StatusUnauthorized, h.do(http.MethodGet, Prefix+"/status", "uw_short", nil).Status)

	r := h.do(http.MethodGet, Prefix+"/tenant", good, nil)
	require.Equal(t, http.StatusTooManyRequests, r.Status, "the third failure used up the window, for a valid key too")
	require.Equal(t, "60", r.Header.Get("Retry-After"))
	require.Contains(t, r.problem(t).Detail, "too many failed authentications")
	h.clock.Advance(45 * time.Second)
	r = h.do(http.MethodGet, Prefix+"/tenant", unknown, nil)
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	require.Equal(t, "15", r.Header.Get("Retry-After"))

	lines := logLines()
	require.Len(t, lines, 1, "one line per source per minute: %v", lines)
	require.Contains(t, lines[0], "source=127.0.0.1")
	require.Contains(t, lines[0], `reason="the API key is not known"`)
	require.NotContains(t, h.logs.String(), unknown)
	require.NotContains(t, h.logs.String(), good)

	h.clock.Advance(15 * time.Second) // the window has ended
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/tenant", good, nil).Status)
	require.Equal(t, http.StatusUnauthorized, h.do(http.MethodGet, Prefix+"/tenant", "", nil).Status)
	lines = logLines()
	require.Len(t, lines, 2, "a minute later the source is logged again")
	require.Contains(t, lines[1], "not_logged_since_last=2")
	require.Contains(t, lines[1], "failures_in_window=1")

	// Public routes are never limited.
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, Prefix+"/openapi.json", "", nil).Status)
}

func TestAuthFailuresSourcesAndMemoryBound(t *testing.T) {
	req := func(remote string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		return r
	}
	source := newAuthFailures(AuthFailureLimit{}, nil, time.Now, slog.New(slog.DiscardHandler)).source
	require.Equal(t, "192.0.2.7", source(req("192.0.2.7:4242")))
	require.Equal(t, "192.0.2.7", source(req("[::ffff:192.0.2.7]:4242")))
	require.Equal(t, "2001:db8:1:2::/64", source(req("[2001:db8:1:2:aaaa::1]:443")))
	require.Equal(t, source(req("[2001:db8:1:2::1]:1")), source(req("[2001:db8:1:2:ffff::9]:2")), "one /64 is one source")

	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := newAuthFailures(AuthFailureLimit{Max: 2, Window: time.Minute, MaxSources: 3}, nil, clock, slog.New(slog.DiscardHandler))
	for i := range 10 {
		a.fail(fmt.Sprintf("198.51.100.%d", i), "/", "test")
		now = now.Add(time.Second)
		require.LessOrEqual(t, a.size(), 3)
	}
	a.fail("198.51.100.9", "/", "test")
	_, blocked := a.blocked("198.51.100.9")
	require.True(t, blocked, "the newest sources are kept")
	_, blocked = a.blocked("198.51.100.0")
	require.False(t, blocked)

	// Bounds: zero uses the defaults, too much is clamped.
	require.Equal(t, DefaultAuthFailureLimit, AuthFailureLimit{}.withDefaults())
	require.Equal(t, MaxAuthFailureLimit, AuthFailureLimit{Max: 1 << 40, Window: 1000 * time.Hour, MaxSources: 1 << 40}.withDefaults())
}

// TestForwardedClient: X-Forwarded-For is believed only from a trusted
// proxy, and only as far as the entries trusted proxies wrote.
func TestForwardedClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	ip := netip.MustParseAddr
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"not a proxy: the header is the client's own word", "198.51.100.9", []string{"203.0.113.1"}, "198.51.100.9"},
		{"a proxy and no header", "10.0.0.2", nil, "10.0.0.2"},
		{"one proxy", "10.0.0.2", []string{"203.0.113.1"}, "203.0.113.1"},
		{"what the client wrote left of its address is ignored", "10.0.0.2", []string{"192.0.2.66, 203.0.113.1"}, "203.0.113.1"},
		{"two proxies", "10.0.0.2", []string{"203.0.113.1, 10.1.1.1"}, "203.0.113.1"},
		{"two headers are one list", "10.0.0.2", []string{"192.0.2.66, 203.0.113.1", "10.1.1.1"}, "203.0.113.1"},
		{"a mapped address", "10.0.0.2", []string{"::ffff:203.0.113.1"}, "203.0.113.1"},
		{"IPv6 behind an IPv6 proxy", "fd00::1", []string{"2001:db8::7"}, "2001:db8::7"},
		{"garbage ends the walk at the hop before it", "10.0.0.2", []string{"203.0.113.1, not-an-ip, 10.1.1.1"}, "10.1.1.1"},
		{"only proxies: the farthest one", "10.0.0.2", []string{"10.3.3.3, 10.1.1.1"}, "10.3.3.3"},
		{"too many hops", "10.0.0.2", []string{"203.0.113.1," + strings.Repeat(" 10.9.9.9,", 40) + " 10.1.1.1"}, "10.9.9.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, ip(tc.want), forwardedClient(ip(tc.peer), tc.xff, trusted))
		})
	}
}

// TestAuthFailuresBehindATrustedProxy: behind a reverse proxy each client
// has its own failures; without api.trusted_proxies they all share the
// proxy's, and a forged header changes nothing.
func TestAuthFailuresBehindATrustedProxy(t *testing.T) {
	unknown := KeyPrefix + strings.Repeat("A", keySecretLen)
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			h := newHarness(t, func(o *Options) {
				o.AuthFailures = AuthFailureLimit{Max: 2, Window: time.Minute}
				if trusted {
					o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}
			})
			good := h.key(tenantA, ScopeRead)
			for range 2 {
				require.Equal(t, http.StatusUnauthorized, h.do(http.MethodGet, Prefix+"/tenant", unknown, nil, "X-Forwarded-For", "203.0.113.1").Status)
			}
			require.Equal(t, http.StatusTooManyRequests, h.do(http.MethodGet, Prefix+"/tenant", good, nil, "X-Forwarded-For", "203.0.113.1").Status)
			other := h.do(http.MethodGet, Prefix+"/tenant", good, nil, "X-Forwarded-For", "203.0.113.2").Status
			if trusted {
				require.Equal(t, http.StatusOK, other, "another client behind the proxy is not blocked")
				require.Contains(t, h.logs.String(), "source=203.0.113.1")
			} else {
				require.Equal(t, http.StatusTooManyRequests, other, "the header of an untrusted peer is ignored")
				require.Contains(t, h.logs.String(), "source=127.0.0.1")
			}
		})
	}
}
