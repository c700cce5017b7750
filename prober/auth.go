package prober

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/icholy/digest"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/upwatch/upwatch/secret"
)

// oauthCache is what a Prober keeps between checks: OAuth2 access tokens,
// reused until they expire, and the HTTP transports (with the CA and client
// certificates they loaded), reused while keep-alives stay off. It is the
// Prober's one cache, hence both.
type oauthCache struct {
	transports httpTransports

	mu     sync.Mutex
	tokens map[string]*oauthEntry
}

// oauthMaxEntries bounds the token cache; beyond it expired tokens go.
const oauthMaxEntries = 4096

type oauthEntry struct {
	cfg   *clientcredentials.Config // keeps its detected auth style
	fetch chan struct{}             // one fetch at a time per entry, abandoned with ctx

	mu  sync.Mutex
	tok *oauth2.Token
}

func newOAuthCache() *oauthCache {
	return &oauthCache{tokens: make(map[string]*oauthEntry)}
}

func (c *oauthCache) transport(p *Prober, ipProtocol string, tc TLSClient) (*checkTransport, error) {
	return c.transports.get(p, ipProtocol, tc)
}

// oauthKey identifies a token: the target and every credential that
// obtains it, so neither another target nor changed credentials reuse it.
// The secret enters through the hash only.
func oauthKey(targetID string, a *Auth) string {
	h := sha256.New()
	for _, s := range []string{targetID, a.TokenURL, a.ClientID, a.ClientSecret.Reveal(), strings.Join(a.Scopes, " ")} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (c *oauthCache) entry(key string, a *Auth) *oauthEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.tokens[key]; ok {
		return e
	}
	if len(c.tokens) >= oauthMaxEntries {
		for k, e := range c.tokens {
			e.mu.Lock()
			stale := !e.tok.Valid()
			e.mu.Unlock()
			if stale {
				delete(c.tokens, k)
			}
		}
	}
	e := &oauthEntry{
		cfg: &clientcredentials.Config{
			ClientID:     a.ClientID,
			ClientSecret: a.ClientSecret.Reveal(),
			TokenURL:     a.TokenURL,
			Scopes:       a.Scopes,
		},
		fetch: make(chan struct{}, 1),
	}
	c.tokens[key] = e
	return e
}

// token returns a valid access token for target id's OAuth2 client
// credentials, fetching one through the SSRF-guarded dialer within ctx
// when none is cached or the cached one expired.
func (c *oauthCache) token(ctx context.Context, p *Prober, id string, h *HTTPSpec) (*oauth2.Token, error) {
	e := c.entry(oauthKey(id, h.Auth), h.Auth)
	e.mu.Lock()
	tok := e.tok
	e.mu.Unlock()
	if tok.Valid() {
		return tok, nil
	}
	select {
	case e.fetch <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-e.fetch }()
	e.mu.Lock()
	tok = e.tok
	e.mu.Unlock()
	if tok.Valid() { // fetched while we waited
		return tok, nil
	}
	// The token endpoint is another host: the target's server name
	// override does not apply to it, its trust settings do.
	tc := h.TLS
	tc.ServerName = ""
	tr, err := c.transports.get(p, h.IPProtocol, tc)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: tr})
	tok, err = e.cfg.Token(ctx)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.tok = tok
	e.mu.Unlock()
	return tok, nil
}

// forget drops the cached token of target id, after the target refused it.
func (c *oauthCache) forget(id string, a *Auth) {
	key := oauthKey(id, a)
	c.mu.Lock()
	e := c.tokens[key]
	c.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		e.tok = nil
		e.mu.Unlock()
	}
}

// httpAuthRoundTripper wraps base with the target's authentication. The
// credentials go only to the target's own scheme and host: a redirect
// elsewhere is followed without them. For oauth2 it fetches (or reuses) the
// token first and reports whether it used one.
func httpAuthRoundTripper(ctx context.Context, p *Prober, t *Target, base http.RoundTripper) (http.RoundTripper, bool, error) {
	h := t.HTTP
	a := h.Auth
	if a == nil {
		return base, false, nil
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return nil, false, err
	}
	rt := &authRoundTripper{base: base, authed: base, scheme: u.Scheme, host: u.Host}
	switch a.Type {
	case "basic":
		rt.set = func(r *http.Request) { r.SetBasicAuth(a.Username, a.Password.Reveal()) }
	case "bearer":
		rt.set = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+a.Token.Reveal()) }
	case "api_key":
		if a.Header != "" {
			rt.set = func(r *http.Request) { r.Header.Set(a.Header, a.Key.Reveal()) }
		} else {
			rt.set = func(r *http.Request) {
				q := r.URL.Query()
				q.Set(a.Query, a.Key.Reveal())
				r.URL.RawQuery = q.Encode()
			}
		}
	case "digest":
		// A new digest transport per check: the challenge is answered
		// afresh, never replayed from an earlier check.
		rt.authed = &digest.Transport{Username: a.Username, Password: a.Password.Reveal(), Transport: base, NoReuse: true}
	case "oauth2":
		tok, err := p.oauth.token(ctx, p, t.ID, h)
		if err != nil {
			return nil, false, err
		}
		rt.set = tok.SetAuthHeader
		return rt, true, nil
	}
	return rt, false, nil
}

// authRoundTripper adds credentials to requests for the target's origin.
type authRoundTripper struct {
	base, authed http.RoundTripper
	scheme, host string
	set          func(*http.Request) // nil when authed does the work
}

func (rt *authRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != rt.host || (r.URL.Scheme != rt.scheme && r.URL.Scheme != "https") {
		return rt.base.RoundTrip(r)
	}
	if rt.set != nil {
		r = r.Clone(r.Context())
		rt.set(r)
	}
	return rt.authed.RoundTrip(r)
}

// scrub replaces every credential of a (nil for none) in msg, as a last
// line of defence for messages built from server replies.
func (a *Auth) scrub(msg string) string {
	if a == nil {
		return msg
	}
	for _, s := range []secret.Secret{a.Password, a.Token, a.Key, a.ClientSecret} {
		if v := s.Reveal(); len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, secret.Redacted)
			// A query-string secret shows escaped in a URL.
			if esc := url.QueryEscape(v); esc != v {
				msg = strings.ReplaceAll(msg, esc, secret.Redacted)
			}
		}
	}
	return msg
}
