package config

import (
	"fmt"
	"net/url"
	"time"

	"github.com/upwatch/upwatch/internal/invalid"
)

// Web tunes the signed-in web interface at / and /ui/.
type Web struct {
	// PublicURL is where users reach upwatch (e.g. https://upwatch.example.com)
	// when a proxy terminates TLS in front of it: with an https URL the
	// session cookie is marked Secure. Empty: Secure only on a TLS request.
	PublicURL string `yaml:"public_url"`
	// SessionTTL is how long a sign-in lasts (default 12h, at most 30 days).
	SessionTTL time.Duration `yaml:"session_ttl"`
}

// Defaults and bounds of Web.
const (
	DefaultSessionTTL = 12 * time.Hour
	MaxSessionTTL     = 30 * 24 * time.Hour
)

func (w *Web) normalize() {
	if w.SessionTTL == 0 {
		w.SessionTTL = DefaultSessionTTL
	}
}

func (w Web) validate() []invalid.Field {
	var errs []invalid.Field
	if w.PublicURL != "" {
		u, err := url.Parse(w.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, invalid.Field{Path: "web.public_url", Msg: fmt.Sprintf("must be an absolute http or https URL (got %q)", w.PublicURL)})
		}
	}
	if w.SessionTTL < time.Minute || w.SessionTTL > MaxSessionTTL {
		errs = append(errs, invalid.Field{Path: "web.session_ttl", Msg: "must be from 1m to 720h"})
	}
	return errs
}
