package config

import (
	"fmt"
	"net/url"
	"strings"

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
}

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
}

func (r *Registry) validate() []invalid.Field {
	switch r.Type {
	case "sqlite":
		return nil
	case "postgres":
		u := r.Postgres.URL.Reveal()
		if u == "" {
			return []invalid.Field{{Path: "registry.postgres.url", Msg: "is required with registry.type postgres"}}
		}
		if strings.Contains(u, "://") {
			if p, err := url.Parse(u); err != nil || (p.Scheme != "postgres" && p.Scheme != "postgresql") {
				// The URL may hold a password: never repeat it.
				return []invalid.Field{{Path: "registry.postgres.url", Msg: "must be a postgres:// URL or a key=value DSN"}}
			}
		}
		return nil
	}
	return []invalid.Field{{Path: "registry.type", Msg: fmt.Sprintf("unknown registry %q (want sqlite or postgres)", r.Type)}}
}
