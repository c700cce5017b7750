package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/upwatch/upwatch/registry"
)

// Scope is what an API key may do.
type Scope string

// The scopes. admin implies write, read and reports; write implies read.
const (
	ScopePublic  Scope = "" // no key needed
	ScopeRead    Scope = "read"
	ScopeWrite   Scope = "write"
	ScopeAdmin   Scope = "admin"
	ScopeReports Scope = "reports"
	// ScopeAgent is a probe agent's: it fetches the targets of its key's
	// location and pushes their results, and nothing else (admin does not
	// imply it). Only tenant default issues agent keys.
	ScopeAgent Scope = "agent"
)

// Scopes lists the scopes a key can hold.
var Scopes = []Scope{ScopeRead, ScopeWrite, ScopeAdmin, ScopeReports, ScopeAgent}

// An agent key's location is kept with its scope, as "agent:LOCATION" in
// the registry's list of scopes: the one place it is written and read.
func agentScope(location string) string { return string(ScopeAgent) + ":" + location }

func parseAgentScope(s string) (location string, ok bool) {
	if s == string(ScopeAgent) {
		return "", true
	}
	return strings.CutPrefix(s, string(ScopeAgent)+":")
}

func validScope(s string) bool { return slices.Contains(Scopes, Scope(s)) }

// Principal is the authenticated caller.
type Principal struct {
	TenantID string
	KeyID    string
	Scopes   []Scope
	// Location is an agent key's location.
	Location string
}

// Has reports whether the caller holds need, directly or implied.
func (p Principal) Has(need Scope) bool {
	for _, s := range p.Scopes {
		switch {
		case s == need, s == ScopeAdmin && need != ScopeAgent:
			return true
		case s == ScopeWrite && need == ScopeRead:
			return true
		}
	}
	return false
}

// Key format: "uw_" + 43 base62 characters (256 random bits). The first
// keyPrefixLen characters (with "uw_") are stored to find the key and to
// show it; the registry keeps only the SHA-256 of the whole key.
const (
	KeyPrefix    = "uw_"
	keySecretLen = 43
	keyPrefixLen = len(KeyPrefix) + 8
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n base62 characters from crypto/rand.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	max := big.NewInt(int64(len(base62)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b[i] = base62[v.Int64()]
	}
	return string(b), nil
}

// NewKey returns a new API key, its display prefix and its hash.
func NewKey() (key, prefix string, hash []byte, err error) {
	secret, err := randomString(keySecretLen)
	if err != nil {
		return "", "", nil, err
	}
	key = KeyPrefix + secret
	return key, key[:keyPrefixLen], HashKey(key), nil
}

// HashKey is what the registry stores of a key.
func HashKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

// wellFormed reports whether key looks like one NewKey made.
func wellFormed(key string) bool {
	if !strings.HasPrefix(key, KeyPrefix) || len(key) != len(KeyPrefix)+keySecretLen {
		return false
	}
	for _, c := range key[len(KeyPrefix):] {
		if !strings.ContainsRune(base62, c) {
			return false
		}
	}
	return true
}

var errUnauthorized = errors.New("unauthorized")

func unauthorized(detail string) error {
	return Problem(http.StatusUnauthorized, "Unauthorized", detail)
}

// authenticate finds the caller's key. Every failure is a 401 that says
// what kind of problem it is, never the key.
func (s *Server) authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Principal{}, unauthorized("an API key is required: Authorization: Bearer uw_...")
	}
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, unauthorized("use Authorization: Bearer <API key>")
	}
	key = strings.TrimSpace(key)
	if !wellFormed(key) {
		return Principal{}, unauthorized("the API key is malformed")
	}
	k, err := s.lookupKey(r.Context(), key)
	if err != nil {
		return Principal{}, err
	}
	now := s.o.Now()
	switch {
	case !k.RevokedAt.IsZero():
		return Principal{}, unauthorized("the API key is revoked")
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return Principal{}, unauthorized("the API key has expired")
	}
	s.touch(r.Context(), k.ID, now)
	p := Principal{TenantID: k.TenantID, KeyID: k.ID}
	for _, sc := range k.Scopes {
		if loc, ok := parseAgentScope(sc); ok {
			sc, p.Location = string(ScopeAgent), loc
		}
		p.Scopes = append(p.Scopes, Scope(sc))
	}
	return p, nil
}

// lookupKey finds key by its prefix and compares hashes in constant time.
func (s *Server) lookupKey(ctx context.Context, key string) (registry.APIKey, error) {
	cands, err := s.o.KeyAuth.APIKeysByPrefix(ctx, key[:keyPrefixLen])
	if err != nil {
		return registry.APIKey{}, err
	}
	want := HashKey(key)
	var found *registry.APIKey
	for i := range cands {
		if subtle.ConstantTimeCompare(cands[i].Hash, want) == 1 {
			found = &cands[i]
		}
	}
	if found == nil {
		return registry.APIKey{}, unauthorized("the API key is not known")
	}
	return *found, nil
}

// touch records last use at most once a minute per key; a failure is logged
// (with the key id only) and does not fail the request.
func (s *Server) touch(ctx context.Context, keyID string, now time.Time) {
	s.mu.Lock()
	last, ok := s.touched[keyID]
	if ok && now.Sub(last) < time.Minute && !now.Before(last) {
		s.mu.Unlock()
		return
	}
	s.touched[keyID] = now
	s.mu.Unlock()
	if err := s.o.KeyAuth.TouchAPIKey(ctx, keyID, now); err != nil {
		s.log.Warn("api key last use not recorded", "key_id", keyID, "err", err)
	}
}

// limiter is a token bucket per key, from golang.org/x/time/rate (the
// maintained implementation, rather than our own arithmetic), driven by the
// server's clock so tests control time.
type limiter struct {
	rate  RateLimit
	now   func() time.Time
	mu    sync.Mutex
	keys  map[string]*keyLimit
	calls int
}

type keyLimit struct {
	bucket   *rate.Limiter
	lastUsed time.Time
}

func newLimiter(r RateLimit, now func() time.Time) *limiter {
	return &limiter{rate: r, now: now, keys: map[string]*keyLimit{}}
}

// allow takes a token for id; when none is left it says how long until one is.
func (l *limiter) allow(id string) (time.Duration, bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls%4096 == 0 { // forget idle keys now and then
		for k, kl := range l.keys {
			if now.Sub(kl.lastUsed) > time.Hour {
				delete(l.keys, k)
			}
		}
	}
	kl, ok := l.keys[id]
	if !ok {
		kl = &keyLimit{bucket: rate.NewLimiter(rate.Limit(l.rate.RPS), l.rate.Burst)}
		l.keys[id] = kl
	}
	kl.lastUsed = now
	r := kl.bucket.ReserveN(now, 1)
	if !r.OK() { // a burst of 0 never admits
		return time.Second, false
	}
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now) // a refused request does not spend a future token
		return wait, false
	}
	return 0, true
}
