package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/secret"
)

// API tunes the REST API's protections.
type API struct {
	AuthFailures AuthFailures `yaml:"auth_failures"`
	// TrustedProxies are the reverse proxies (addresses or CIDR prefixes)
	// whose X-Forwarded-For names the client, for the failed-
	// authentication limit: behind a proxy, every client would otherwise
	// share the proxy's address, and one of them could lock out the rest.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// MaxTrustedProxies bounds api.trusted_proxies: each request's peer is
// matched against every entry.
const MaxTrustedProxies = 100

// TrustedProxyPrefixes is api.trusted_proxies parsed; an address is its
// own /32 or /128. Entries that do not parse (Validate names them) are
// left out.
func (a API) TrustedProxyPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range a.TrustedProxies {
		if p, err := parsePrefixOrAddr(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("write an IPv4 prefix as IPv4")
	}
	return p.Masked(), nil
}

// AuthFailures limits failed authentications per source address (an IPv6
// source is its /64): after Max failures within Window the source is
// answered 429 until the window ends. Zero fields take the defaults.
type AuthFailures struct {
	Max    int           `yaml:"max"`    // default 20
	Window time.Duration `yaml:"window"` // default 1m
	// MaxSources caps how many sources are remembered (default 10000).
	MaxSources int `yaml:"max_sources"`
}

// Bounds of AuthFailures (the API clamps to them as well).
const (
	MaxAuthFailures       = 100000
	MaxAuthFailureWindow  = 24 * time.Hour
	MaxAuthFailureSources = 1000000
)

// Metrics protects GET /metrics (it lists every tenant's target ids).
// Off by default; with both set, either credential is accepted. /healthz
// and /readyz stay open.
type Metrics struct {
	// BearerToken, when set, is accepted as Authorization: Bearer <token>.
	BearerToken secret.Secret `yaml:"bearer_token"`
	BasicAuth   BasicAuth     `yaml:"basic_auth"`
	// PerTarget is which series each target exports: PerTargetCore (the
	// default) or PerTargetFull.
	PerTarget string `yaml:"per_target"`
}

// The values of metrics.per_target. Core keeps /metrics small at 100,000
// targets (about 5 series each); full adds the per-phase timings and
// per-target check counters (about 12 each).
const (
	PerTargetCore = "core"
	PerTargetFull = "full"
)

func (m *Metrics) normalize() {
	if m.PerTarget == "" {
		m.PerTarget = PerTargetCore
	}
}

// BasicAuth is one user name and password for HTTP basic authentication.
type BasicAuth struct {
	Username string        `yaml:"username"`
	Password secret.Secret `yaml:"password"`
}

// Enabled reports whether /metrics needs credentials.
func (m Metrics) Enabled() bool {
	return m.BearerToken.Reveal() != "" || m.BasicAuth.Username != ""
}

func (c *Config) validateAccess() []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	af := c.API.AuthFailures
	if af.Max < 0 || af.Max > MaxAuthFailures {
		add("api.auth_failures.max", "must be from 1 to %d (0 for the default, 20)", MaxAuthFailures)
	}
	if af.Window != 0 && (af.Window < time.Second || af.Window > MaxAuthFailureWindow) {
		add("api.auth_failures.window", "must be from 1s to %s (0 for the default, 1m)", MaxAuthFailureWindow)
	}
	if af.MaxSources < 0 || af.MaxSources > MaxAuthFailureSources {
		add("api.auth_failures.max_sources", "must be from 1 to %d (0 for the default, 10000)", MaxAuthFailureSources)
	}
	if n := len(c.API.TrustedProxies); n > MaxTrustedProxies {
		add("api.trusted_proxies", "has %d entries, at most %d", n, MaxTrustedProxies)
	}
	for i, s := range c.API.TrustedProxies {
		if _, err := parsePrefixOrAddr(s); err != nil {
			add(fmt.Sprintf("api.trusted_proxies[%d]", i), "%q is not an IP address or CIDR prefix (such as 10.0.0.0/8)", s)
		}
	}
	if !c.Metrics.BearerToken.IsZero() && c.Metrics.BearerToken.Reveal() == "" {
		add("metrics.bearer_token", "is empty")
	}
	if p := c.Metrics.PerTarget; p != PerTargetCore && p != PerTargetFull {
		add("metrics.per_target", "must be %s or %s, not %q", PerTargetCore, PerTargetFull, p)
	}
	b := c.Metrics.BasicAuth
	switch {
	case b.Username == "" && !b.Password.IsZero():
		add("metrics.basic_auth.username", "is required with a password")
	case b.Username != "" && b.Password.Reveal() == "":
		add("metrics.basic_auth.password", "is required with a username (a secret: env:NAME or file:/path)")
	case strings.Contains(b.Username, ":"):
		add("metrics.basic_auth.username", "must not contain ':'")
	}
	errs = append(errs, prober.CheckText("metrics.basic_auth.username", b.Username)...)
	return errs
}
