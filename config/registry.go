package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/secret"
)

// Registry chooses where tenants, keys, API objects, alert state,
// incidents and the notification outbox live.
type Registry struct {
	// Type is "sqlite" (<data_dir>/registry.db, the default) or "postgres"
	// (shared by several upwatch processes).
	Type     string   `yaml:"type"`
	Postgres Postgres `yaml:"postgres"`
	// Lease elects the one server (of several sharing a PostgreSQL
	// registry) that evaluates alerts, sends notifications and runs the
	// local checks.
	Lease Lease `yaml:"lease"`
}

// Lease times the alerting lease. A server that dies is replaced within
// about TTL + Renew.
type Lease struct {
	// TTL is how long an acquisition or renewal lasts (default 6s).
	TTL time.Duration `yaml:"ttl"`
	// Renew is how often the holder renews and the others try to take it
	// (default 2s).
	Renew time.Duration `yaml:"renew"`
}

// Lease defaults: a dead leader is replaced within 8 s.
const (
	DefaultLeaseTTL   = 6 * time.Second
	DefaultLeaseRenew = 2 * time.Second
)

// Postgres is the PostgreSQL registry's connection.
type Postgres struct {
	// URL is a postgres:// URL or key=value DSN; it usually holds a
	// password, so it is a secret (env:NAME or file:/path).
	URL secret.Secret `yaml:"url"`
}

func (r *Registry) normalize() {
	if r.Type == "" {
		r.Type = "sqlite"
	}
	if r.Lease.TTL == 0 {
		r.Lease.TTL = DefaultLeaseTTL
	}
	if r.Lease.Renew == 0 {
		r.Lease.Renew = DefaultLeaseRenew
	}
}

func (r *Registry) validate() []invalid.Field {
	switch r.Type {
	case "sqlite":
		return nil
	case "postgres":
		errs := r.Lease.validate()
		u := r.Postgres.URL.Reveal()
		if u == "" {
			return append(errs, invalid.Field{Path: "registry.postgres.url", Msg: "is required with registry.type postgres"})
		}
		if strings.Contains(u, "://") {
			if p, err := url.Parse(u); err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") {
				// The URL may hold a password: never repeat it.
				errs = append(errs, invalid.Field{Path: "registry.postgres.url", Msg: "must be a postgres:// URL or a key=value DSN"})
			}
		}
		return errs
	}
	return []invalid.Field{{Path: "registry.type", Msg: fmt.Sprintf("unknown registry %q (want sqlite or postgres)", r.Type)}}
}

func (l Lease) validate() []invalid.Field {
	var errs []invalid.Field
	if l.TTL < 100*time.Millisecond || l.TTL > 5*time.Minute {
		errs = append(errs, invalid.Field{Path: "registry.lease.ttl", Msg: "must be between 100ms and 5m"})
	}
	if l.Renew <= 0 || l.Renew*2 > l.TTL {
		errs = append(errs, invalid.Field{Path: "registry.lease.renew", Msg: fmt.Sprintf("must be more than 0 and at most half the TTL (%s)", l.TTL)})
	}
	return errs
}
