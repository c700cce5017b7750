package config

import (
	"fmt"
	"strings"

	"github.com/upwatch/upwatch/internal/invalid"
)

// MaxReservedDomains bounds status_pages.reserved_domains.
const MaxReservedDomains = 100

// StatusPages configures the public status pages (read at start).
type StatusPages struct {
	// CustomDomains serves a page on the domain its editors gave it (GET /
	// and /feed.atom on that Host). Off by default: with it on, whoever may
	// edit a page decides what this server answers on that host name, so
	// list the server's own names in ReservedDomains first.
	CustomDomains bool `yaml:"custom_domains"`
	// ReservedDomains are host names no page may take (this server's own).
	ReservedDomains []string `yaml:"reserved_domains"`
}

// Reserved reports whether a page may not take domain (compared without
// case and trailing dot).
func (s StatusPages) Reserved(domain string) bool {
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	for _, r := range s.ReservedDomains {
		if strings.TrimSuffix(strings.ToLower(r), ".") == d {
			return true
		}
	}
	return false
}

func (s StatusPages) validate() []invalid.Field {
	var errs []invalid.Field
	if len(s.ReservedDomains) > MaxReservedDomains {
		errs = append(errs, invalid.Field{Path: "status_pages.reserved_domains", Msg: fmt.Sprintf("at most %d names", MaxReservedDomains)})
	}
	for i, d := range s.ReservedDomains {
		if d == "" || len(d) > 253 || strings.ContainsAny(d, ":/ @") {
			errs = append(errs, invalid.Field{Path: fmt.Sprintf("status_pages.reserved_domains[%d]", i), Msg: "must be a host name (no scheme, port or path)"})
		}
	}
	return errs
}
