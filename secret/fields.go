package secret

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// This file is the one list of secret-bearing fields outside the typed
// Secret values: which request headers and URL query parameters hold
// credentials, and the one URL redactor. Sealing at rest, API responses and
// logs all ask here; CONFIGURATION.md ("Secret headers and URLs") documents
// the same list.

// secretHeaders are request headers that always hold credentials.
var secretHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie", "X-Api-Key", "X-Auth-Token",
	"X-Access-Token", "X-Csrf-Token", "X-Xsrf-Token", "X-Amz-Security-Token",
}

// secretParams are query parameter names that hold credentials though the
// pattern below misses them.
var secretParams = []string{"sig", "pass", "pwd", "pw"}

// secretName matches any header or query parameter name that holds a
// credential: token, secret, key, password, auth, cookie, session,
// credential, signature anywhere in the name, in any case.
var secretName = regexp.MustCompile(`(?i)token|secret|key|passw|auth|cookie|session|credential|signature`)

// SensitiveHeader reports whether a request header's value is a credential:
// its name is in the list or matches the pattern, or the target marks it
// secret (names compare case-insensitively).
func SensitiveHeader(name string, marked []string) bool {
	eq := func(s string) bool { return strings.EqualFold(s, name) }
	return slices.ContainsFunc(secretHeaders, eq) || slices.ContainsFunc(marked, eq) || secretName.MatchString(name)
}

// SensitiveParam reports whether a URL query parameter's value is a
// credential (token, access_token, api_key, apikey, key, secret, password,
// sig, signature, ...).
func SensitiveParam(name string) bool {
	return slices.ContainsFunc(secretParams, func(s string) bool { return strings.EqualFold(s, name) }) || secretName.MatchString(name)
}

// URLMask stands for a credential inside a redacted URL (as in the
// standard library's URL.Redacted).
const URLMask = "xxxxx"

// URLSecrecy says which part of a URL is the credential.
type URLSecrecy int

const (
	// URLCredentials: the userinfo password and the values of sensitive
	// query parameters; the rest of the URL is shown (a target's URL).
	URLCredentials URLSecrecy = iota
	// URLWhole: the URL is a credential as a whole (a webhook, whose path
	// or query is the token); only its scheme and host are shown.
	URLWhole
)

// RedactURL returns raw fit for a log, an error or an API response.
//
// With URLCredentials the password and sensitive query values become
// xxxxx, everything else as it was (UnredactURL reverses it with the stored
// URL). With URLWhole only scheme://host remains, then "/…#" and the first
// 8 hex digits of raw's SHA-256 when raw has more: different webhooks on
// one host stay apart, and nothing of the secret can be read back.
// Unparseable input gives "<url>".
func RedactURL(raw string, what URLSecrecy) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<url>"
	}
	if what == URLWhole {
		if u.Host == "" {
			return "<url>"
		}
		s := u.Scheme + "://" + u.Host
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			s += "/…#" + URLHash(raw)
		}
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), URLMask)
	}
	u.RawQuery = mapQuery(u.RawQuery, func(name, value string, _ int) string {
		if SensitiveParam(name) {
			return URLMask
		}
		return value
	})
	return u.String()
}

// IsRedactedURL reports whether raw is a URL as RedactURL(..., URLWhole)
// shows it: a redacted webhook sent back without its stored original.
func IsRedactedURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Path != "/…" || len(u.Fragment) != 8 {
		return false
	}
	_, err = hex.DecodeString(u.Fragment)
	return err == nil
}

// URLHash is a short digest of a secret URL: enough to tell two apart in a
// log, far too little to recover either.
func URLHash(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:4])
}

// UnredactURL puts stored's credentials back where shown (a URL read from
// the API, edited or not) has URLMask: the password, and each sensitive
// query value by its name and occurrence. A mask stored cannot fill is left
// as is (see HasMask).
func UnredactURL(shown, stored string) string {
	su, err := url.Parse(shown)
	if err != nil {
		return shown
	}
	cu, err := url.Parse(stored)
	if err != nil {
		return shown
	}
	if p, has := su.User.Password(); has && p == URLMask {
		if cp, ok := cu.User.Password(); ok {
			su.User = url.UserPassword(su.User.Username(), cp)
		}
	}
	storedQ := map[string][]string{}
	mapQuery(cu.RawQuery, func(name, value string, _ int) string {
		storedQ[name] = append(storedQ[name], value)
		return value
	})
	su.RawQuery = mapQuery(su.RawQuery, func(name, value string, n int) string {
		if value == URLMask && SensitiveParam(name) && n < len(storedQ[name]) {
			return storedQ[name][n]
		}
		return value
	})
	return su.String()
}

// HasMask reports whether a URL still holds URLMask in a secret part: a
// redacted URL sent back without its stored original.
func HasMask(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if p, has := u.User.Password(); has && p == URLMask {
		return true
	}
	found := false
	mapQuery(u.RawQuery, func(name, value string, _ int) string {
		found = found || (value == URLMask && SensitiveParam(name))
		return value
	})
	return found
}

// mapQuery rewrites the values of a raw query through f (name and value
// unescaped, n the occurrence of the name so far), keeping the order,
// separators and encoding of everything f leaves alone.
func mapQuery(raw string, f func(name, value string, n int) string) string {
	if raw == "" {
		return raw
	}
	seen := map[string]int{}
	parts := strings.Split(raw, "&")
	for i, part := range parts {
		k, v, hasV := strings.Cut(part, "=")
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			name, value = k, v
		}
		n := seen[name]
		seen[name]++
		if nv := f(name, value, n); nv != value {
			parts[i] = k + "=" + url.QueryEscape(nv)
		} else if !hasV {
			parts[i] = k
		}
	}
	return strings.Join(parts, "&")
}
