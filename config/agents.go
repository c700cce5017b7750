package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/upwatch/upwatch/internal/invalid"
)

// Defaults and bounds of the probe-agent settings.
const (
	DefaultAgentTTL = 15 * time.Second
	MinAgentTTL     = time.Second
	MaxAgentTTL     = 15 * time.Second
	DefaultMaxBatch = 1000
	MaxMaxBatch     = 10000
)

// Server tunes what serve does besides answering the API.
type Server struct {
	// CheckLocally makes serve check, as its own location, the targets
	// whose locations include it (or that list none). Default true; false
	// leaves every check to probe agents.
	CheckLocally *bool `yaml:"check_locally"`
	// TLS serves HTTPS, and with a client CA asks agents for mTLS.
	TLS ServerTLS `yaml:"tls"`
	// AdvertiseURL is where the other servers sharing the registry reach
	// this one (scheme, host and port; a path prefix if behind one), so a
	// server that does not hold the alerting lease can hand the holder what
	// only it handles (probe agents' results). Default: http:// and the
	// listen address, with the host name for an unspecified host.
	AdvertiseURL string `yaml:"advertise_url"`
}

// validate checks advertise_url: an absolute http or https URL with a
// host, no credentials, query or fragment.
func (s Server) validate() []invalid.Field {
	if s.AdvertiseURL == "" {
		return nil
	}
	const path = "server.advertise_url"
	u, err := url.Parse(s.AdvertiseURL)
	switch {
	case err != nil:
		return []invalid.Field{{Path: path, Msg: "not a URL: " + err.Error()}}
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return []invalid.Field{{Path: path, Msg: fmt.Sprintf("must be an http or https URL with a host, as the other servers reach this one (got %q)", u.Redacted())}}
	case u.User != nil, u.RawQuery != "", u.Fragment != "", strings.HasSuffix(s.AdvertiseURL, "?"):
		return []invalid.Field{{Path: path, Msg: "must not carry credentials, a query or a fragment"}}
	}
	return nil
}

// ChecksLocally is CheckLocally with its default.
func (s Server) ChecksLocally() bool { return s.CheckLocally == nil || *s.CheckLocally }

// Agents tunes how serve deals with probe agents (upwatch agent).
type Agents struct {
	// TTL is how long an agent counts as alive after its last heartbeat
	// (default and maximum 15s). A dead agent's targets move to the other
	// agents of its location within 2 TTLs.
	TTL time.Duration `yaml:"ttl"`
	// MaxBatch bounds the results of one push (default 1000, at most 10000).
	MaxBatch int `yaml:"max_batch"`
}

func (a *Agents) normalize() {
	if a.TTL == 0 {
		a.TTL = DefaultAgentTTL
	}
	if a.MaxBatch == 0 {
		a.MaxBatch = DefaultMaxBatch
	}
}

func (a Agents) validate() []invalid.Field {
	var errs []invalid.Field
	if a.TTL < MinAgentTTL || a.TTL > MaxAgentTTL {
		errs = append(errs, invalid.Field{Path: "agents.ttl", Msg: fmt.Sprintf("must be between %s and %s (got %s)", MinAgentTTL, MaxAgentTTL, a.TTL)})
	}
	if a.MaxBatch < 1 || a.MaxBatch > MaxMaxBatch {
		errs = append(errs, invalid.Field{Path: "agents.max_batch", Msg: fmt.Sprintf("must be between 1 and %d (got %d)", MaxMaxBatch, a.MaxBatch)})
	}
	return errs
}
