package app

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/upwatch/upwatch/config"
)

// protectMetrics requires the configured credentials on h (GET /metrics):
// the bearer token or the basic-auth user and password, either one when
// both are set. Off (h as is) when none is configured. Comparisons take
// constant time and hash first, so neither content nor length leaks.
func protectMetrics(c config.Metrics, h http.Handler) http.Handler {
	if !c.Enabled() {
		return h
	}
	token, user, pass := c.BearerToken.Reveal(), c.BasicAuth.Username, c.BasicAuth.Password.Reveal()
	challenge := `Bearer realm="upwatch metrics"`
	if user != "" {
		challenge = `Basic realm="upwatch metrics", charset="UTF-8"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := false
		if u, p, basic := r.BasicAuth(); basic && user != "" {
			ok = equal(u, user) && equal(p, pass)
		} else if scheme, got, found := strings.Cut(r.Header.Get("Authorization"), " "); found && token != "" && strings.EqualFold(scheme, "Bearer") {
			ok = equal(strings.TrimSpace(got), token)
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, "401 Unauthorized: /metrics needs the credentials of the metrics section of the config", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// equal compares two secrets in constant time, whatever their lengths.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
