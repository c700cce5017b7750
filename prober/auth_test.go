package prober_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/probertest"
	"github.com/upwatch/upwatch/secret"
)

func htSecret(v string) secret.Secret { return secret.New(v) }

// htQuietLog keeps test servers' expected complaints (panics, TLS errors)
// out of the test output.
func htQuietLog() *log.Logger { return log.New(io.Discard, "", 0) }

func TestAuthStaticSchemes(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/basic", func(w http.ResponseWriter, r *http.Request) {
		u, pw, ok := r.BasicAuth()
		if !ok || u != "alice" || pw != "b4sic-pass" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("/bearer", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken-value" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("/apikey-header", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != "k3y-value" {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	mux.HandleFunc("/apikey-query", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("api_key") != "k3y value&more" || r.URL.Query().Get("page") != "2" {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	mux.HandleFunc("/custom-header", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") != "hdr-s3cret" {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	srv := htServer(t, mux)
	p := htProber()

	tests := []struct {
		name  string
		path  string
		auth  *prober.Auth
		hdrs  map[string]string
		class prober.ErrorClass
	}{
		{"basic", "/basic", &prober.Auth{Type: "basic", Username: "alice", Password: htSecret("b4sic-pass")}, nil, prober.ClassNone},
		{"basic wrong password", "/basic", &prober.Auth{Type: "basic", Username: "alice", Password: htSecret("nope")}, nil, prober.ClassStatus},
		{"basic missing", "/basic", nil, nil, prober.ClassStatus},
		{"bearer", "/bearer", &prober.Auth{Type: "bearer", Token: htSecret("t0ken-value")}, nil, prober.ClassNone},
		{"bearer wrong", "/bearer", &prober.Auth{Type: "bearer", Token: htSecret("other")}, nil, prober.ClassStatus},
		{"api key header", "/apikey-header", &prober.Auth{Type: "api_key", Key: htSecret("k3y-value"), Header: "X-Api-Key"}, nil, prober.ClassNone},
		{"api key query", "/apikey-query?page=2", &prober.Auth{Type: "api_key", Key: htSecret("k3y value&more"), Query: "api_key"}, nil, prober.ClassNone},
		{"api key wrong", "/apikey-header", &prober.Auth{Type: "api_key", Key: htSecret("bad"), Header: "X-Api-Key"}, nil, prober.ClassStatus},
		{"custom header", "/custom-header", nil, map[string]string{"X-Auth-Token": "hdr-s3cret"}, prober.ClassNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := htCheck(t, p, htTarget(t, srv.URL+tc.path, func(h *prober.HTTPSpec) {
				h.Auth = tc.auth
				h.Headers = tc.hdrs
			}))
			require.Equal(t, tc.class, res.ErrorClass, res.Error)
		})
	}
}

// digestServer enforces RFC 7616 digest authentication (MD5, qop=auth) the
// way a real server does: a fresh nonce per challenge, the client's
// response hash recomputed from the password it knows.
type digestServer struct {
	realm, user, pass string

	mu     sync.Mutex
	nonces map[string]bool
	ok     atomic.Int64
}

func htMD5(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

func (d *digestServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.verify(r) {
		d.ok.Add(1)
		io.WriteString(w, "welcome")
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	nonce := hex.EncodeToString(b)
	d.mu.Lock()
	d.nonces[nonce] = true
	d.mu.Unlock()
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth", algorithm=MD5, opaque="0paque"`, d.realm, nonce))
	w.WriteHeader(http.StatusUnauthorized)
}

func (d *digestServer) verify(r *http.Request) bool {
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Digest ")
	if !ok {
		return false
	}
	f := htParseDigest(h)
	d.mu.Lock()
	known := d.nonces[f["nonce"]]
	d.mu.Unlock()
	if !known || f["username"] != d.user || f["realm"] != d.realm || f["uri"] != r.URL.RequestURI() ||
		f["qop"] != "auth" || f["opaque"] != "0paque" || f["nc"] == "" || f["cnonce"] == "" {
		return false
	}
	ha1 := htMD5(d.user + ":" + d.realm + ":" + d.pass)
	ha2 := htMD5(r.Method + ":" + f["uri"])
	want := htMD5(strings.Join([]string{ha1, f["nonce"], f["nc"], f["cnonce"], f["qop"], ha2}, ":"))
	return subtle.ConstantTimeCompare([]byte(want), []byte(f["response"])) == 1
}

// htParseDigest splits the parameters of a Digest header, honouring quotes.
func htParseDigest(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		s = strings.TrimLeft(s, " ,")
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				break
			}
			v, s = rest[1:1+end], rest[2+end:]
		} else {
			v, s, _ = strings.Cut(rest, ",")
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out
}

func TestAuthDigest(t *testing.T) {
	ds := &digestServer{realm: "upwatch-test", user: "bob", pass: "d1gest-pass", nonces: map[string]bool{}}
	srv := htServer(t, ds)
	p := htProber()

	tests := []struct {
		name   string
		method string
		body   string
		pass   string
		class  prober.ErrorClass
	}{
		{"GET", "GET", "", "d1gest-pass", prober.ClassNone},
		{"POST with body", "POST", `{"a":1}`, "d1gest-pass", prober.ClassNone},
		{"wrong password", "GET", "", "wrong", prober.ClassStatus},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ds.ok.Load()
			res := htCheck(t, p, htTarget(t, srv.URL+"/private?x=1", func(h *prober.HTTPSpec) {
				h.Method, h.Body = tc.method, tc.body
				h.Auth = &prober.Auth{Type: "digest", Username: "bob", Password: htSecret(tc.pass)}
				h.BodyContains = []string{"welcome"}
			}))
			require.Equal(t, tc.class, res.ErrorClass, res.Error)
			if tc.class == prober.ClassNone {
				require.Equal(t, before+1, ds.ok.Load(), "the server verified the digest")
			} else {
				require.Equal(t, 401, res.StatusCode)
			}
		})
	}
	t.Run("every check answers a fresh challenge", func(t *testing.T) {
		tg := htTarget(t, srv.URL+"/", func(h *prober.HTTPSpec) {
			h.Auth = &prober.Auth{Type: "digest", Username: "bob", Password: htSecret("d1gest-pass")}
		})
		for range 3 {
			res := htCheck(t, p, tg)
			require.True(t, res.Success, res.Error)
		}
	})
}

// oauthServer is a client-credentials token endpoint plus a resource that
// accepts only the tokens it issued.
type oauthServer struct {
	clientID, clientSecret string
	expiresIn              int
	echoSecretOnError      bool

	calls  atomic.Int64
	mu     sync.Mutex
	issued map[string]string // token → client id
}

func newOAuthServer(id, secret string, expiresIn int) *oauthServer {
	return &oauthServer{clientID: id, clientSecret: secret, expiresIn: expiresIn, issued: map[string]string{}}
}

func (o *oauthServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/token":
		o.token(w, r)
	case "/resource":
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		o.mu.Lock()
		client, ok := o.issued[tok]
		o.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello %s", client)
	default:
		http.NotFound(w, r)
	}
}

func (o *oauthServer) token(w http.ResponseWriter, r *http.Request) {
	o.calls.Add(1)
	if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
		return
	}
	id, sec, ok := r.BasicAuth()
	if !ok {
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != o.clientID || sec != o.clientSecret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		msg := "invalid_client"
		if o.echoSecretOnError {
			msg += " (got secret " + sec + ")"
		}
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": msg})
		return
	}
	if r.PostForm.Get("scope") != "read:status" {
		http.Error(w, `{"error":"invalid_scope"}`, http.StatusBadRequest)
		return
	}
	b := make([]byte, 12)
	rand.Read(b)
	tok := "at-" + hex.EncodeToString(b)
	o.mu.Lock()
	o.issued[tok] = id
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": o.expiresIn})
}

func htOAuthTarget(t testing.TB, base, id, sec string) *prober.Target {
	t.Helper()
	return htTarget(t, base+"/resource", func(h *prober.HTTPSpec) {
		h.Auth = &prober.Auth{Type: "oauth2", TokenURL: base + "/token", ClientID: id, ClientSecret: htSecret(sec), Scopes: []string{"read:status"}}
		h.BodyContains = []string{"hello " + id}
	})
}

func TestAuthOAuth2(t *testing.T) {
	t.Run("token cached until it expires", func(t *testing.T) {
		o := newOAuthServer("client-a", "oauth-s3cret", 3600)
		srv := htServer(t, o)
		p := htProber()
		tg := htOAuthTarget(t, srv.URL, "client-a", "oauth-s3cret")
		for range 5 {
			res := htCheck(t, p, tg)
			require.True(t, res.Success, res.Error)
		}
		require.EqualValues(t, 1, o.calls.Load())
	})

	t.Run("expired token is fetched again", func(t *testing.T) {
		// expires_in 1s is inside the client's expiry margin: already stale.
		o := newOAuthServer("client-a", "oauth-s3cret", 1)
		srv := htServer(t, o)
		p := htProber()
		tg := htOAuthTarget(t, srv.URL, "client-a", "oauth-s3cret")
		for range 3 {
			res := htCheck(t, p, tg)
			require.True(t, res.Success, res.Error)
		}
		require.EqualValues(t, 3, o.calls.Load())
	})

	t.Run("targets and credentials do not share tokens", func(t *testing.T) {
		oa := newOAuthServer("client-a", "secret-a", 3600)
		ob := newOAuthServer("client-b", "secret-b", 3600)
		sa, sb := htServer(t, oa), htServer(t, ob)
		p := htProber()
		ta := htOAuthTarget(t, sa.URL, "client-a", "secret-a")
		tb := htOAuthTarget(t, sb.URL, "client-b", "secret-b")
		tb.ID = "other"
		ta2 := htOAuthTarget(t, sa.URL, "client-a", "secret-a")
		ta2.ID = "third"
		for range 3 {
			for _, tg := range []*prober.Target{ta, tb, ta2} {
				res := htCheck(t, p, tg)
				require.True(t, res.Success, "%s: %s", tg.ID, res.Error)
			}
		}
		require.EqualValues(t, 2, oa.calls.Load(), "one token per target")
		require.EqualValues(t, 1, ob.calls.Load())

		// Changed credentials on the same target do not reuse the old token.
		bad := htOAuthTarget(t, sa.URL, "client-a", "rotated-wrong")
		res := htCheck(t, p, bad)
		require.Equal(t, prober.ClassAuth, res.ErrorClass, res.Error)
	})

	t.Run("concurrent checks fetch once", func(t *testing.T) {
		o := newOAuthServer("client-a", "oauth-s3cret", 3600)
		srv := htServer(t, o)
		p := htProber()
		tg := htOAuthTarget(t, srv.URL, "client-a", "oauth-s3cret")
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				res := p.Check(context.Background(), tg)
				if !res.Success {
					t.Error(res.Error)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, o.calls.Load())
	})

	t.Run("revoked token is dropped", func(t *testing.T) {
		o := newOAuthServer("client-a", "oauth-s3cret", 3600)
		srv := htServer(t, o)
		p := htProber()
		tg := htOAuthTarget(t, srv.URL, "client-a", "oauth-s3cret")
		require.True(t, htCheck(t, p, tg).Success)
		o.mu.Lock()
		clear(o.issued)
		o.mu.Unlock()
		res := htCheck(t, p, tg)
		require.Equal(t, prober.ClassStatus, res.ErrorClass, res.Error)
		require.Equal(t, 401, res.StatusCode)
		res = htCheck(t, p, tg)
		require.True(t, res.Success, res.Error)
		require.EqualValues(t, 2, o.calls.Load())
	})

	t.Run("bad client secret", func(t *testing.T) {
		o := newOAuthServer("client-a", "oauth-s3cret", 3600)
		srv := htServer(t, o)
		res := htCheck(t, htProber(), htOAuthTarget(t, srv.URL, "client-a", "wrong-s3cret"))
		require.Equal(t, prober.ClassAuth, res.ErrorClass, res.Error)
		require.Contains(t, res.Error, "oauth2 token")
	})

	t.Run("token endpoint down", func(t *testing.T) {
		srv := htServer(t, http.NotFoundHandler())
		res := htCheck(t, htProber(), htOAuthTarget(t, srv.URL, "client-a", "oauth-s3cret"))
		require.Equal(t, prober.ClassAuth, res.ErrorClass, res.Error)
	})

	t.Run("slow token endpoint honours the timeout", func(t *testing.T) {
		srv := htServer(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // the server notices the client leave only once the body is read
			<-r.Context().Done()
		}))
		tg := htOAuthTarget(t, srv.URL, "client-a", "oauth-s3cret")
		tg.Timeout = 300 * time.Millisecond
		res := htCheck(t, htProber(), tg)
		require.Equal(t, prober.ClassTimeout, res.ErrorClass, res.Error)
	})
}

func TestAuthMutualTLS(t *testing.T) {
	ca := probertest.NewCA(t)
	srv := htTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "client=%s", r.TLS.PeerCertificates[0].Subject.CommonName)
	}), ca.Issue(t, probertest.CertOptions{}), ca.Pool())
	caFile := ca.WriteFile(t)
	certFile, keyFile := probertest.WriteKeyPair(t, ca.Issue(t, probertest.CertOptions{Client: true}))
	otherCA := probertest.NewCA(t)
	strangerCert, strangerKey := probertest.WriteKeyPair(t, otherCA.Issue(t, probertest.CertOptions{Client: true}))
	p := htProber()

	tests := []struct {
		name      string
		cert, key string
		class     prober.ErrorClass
	}{
		{"trusted client certificate", certFile, keyFile, prober.ClassNone},
		{"no client certificate", "", "", prober.ClassTLS},
		{"untrusted client certificate", strangerCert, strangerKey, prober.ClassTLS},
		{"unreadable key", certFile, "/nonexistent/key.pem", prober.ClassInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := htCheck(t, p, htTarget(t, srv.URL+"/", func(h *prober.HTTPSpec) {
				h.TLS = prober.TLSClient{CAFile: caFile, CertFile: tc.cert, KeyFile: tc.key}
				h.BodyContains = []string{"client=upwatch test"}
			}))
			require.Equal(t, tc.class, res.ErrorClass, res.Error)
		})
	}
}

// TestAuthNotSentToOtherHosts: a redirect to another origin is followed
// without the credentials.
func TestAuthNotSentToOtherHosts(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	other := htServer(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+"|"+r.Header.Get("X-Api-Key")+"|"+r.URL.RawQuery)
		mu.Unlock()
	}))
	origin := htServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
	}))
	p := htProber()
	for _, a := range []*prober.Auth{
		{Type: "basic", Username: "u", Password: htSecret("pw-value")},
		{Type: "bearer", Token: htSecret("tok-value")},
		{Type: "api_key", Key: htSecret("key-value"), Header: "X-Api-Key"},
		{Type: "api_key", Key: htSecret("key-value"), Query: "k"},
	} {
		res := htCheck(t, p, htTarget(t, origin.URL+"/", func(h *prober.HTTPSpec) { h.Auth = a }))
		require.True(t, res.Success, res.Error)
	}
	require.Equal(t, []string{"||", "||", "||", "||"}, seen)
}

// TestSecretsNeverLeak runs failing checks whose configuration holds
// credentials and asserts none reaches Result.Error or the log.
func TestSecretsNeverLeak(t *testing.T) {
	const (
		urlPass   = "url-pa55word"
		basicPass = "basic-pa55word"
		token     = "bearer-t0ken"
		apiKey    = "api-k3y-value"
		clientSec = "client-s3cret"
	)
	o := newOAuthServer("client-a", "the-real-one", 3600)
	o.echoSecretOnError = true
	osrv := htServer(t, o)
	srv := htServer(t, htApp())
	closed := htServer(t, http.NotFoundHandler())
	closed.Close()

	var logs bytes.Buffer
	p := prober.New(prober.Options{AllowPrivate: true, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	withUser := strings.Replace(srv.URL, "http://", "http://alice:"+urlPass+"@", 1)
	closedWithUser := strings.Replace(closed.URL, "http://", "http://alice:"+urlPass+"@", 1)
	targets := []*prober.Target{
		htTarget(t, withUser+"/status/500", nil),
		htTarget(t, closedWithUser+"/x", nil),
		htTarget(t, closed.URL+"/x", func(h *prober.HTTPSpec) {
			h.Auth = &prober.Auth{Type: "api_key", Key: htSecret(apiKey), Query: "key"}
		}),
		htTarget(t, srv.URL+"/status/401", func(h *prober.HTTPSpec) {
			h.Auth = &prober.Auth{Type: "api_key", Key: htSecret(apiKey), Query: "key"}
		}),
		htTarget(t, closed.URL+"/x", func(h *prober.HTTPSpec) {
			h.Auth = &prober.Auth{Type: "basic", Username: "alice", Password: htSecret(basicPass)}
		}),
		htTarget(t, srv.URL+"/ok", func(h *prober.HTTPSpec) {
			h.Auth = &prober.Auth{Type: "bearer", Token: htSecret(token)}
			h.BodyContains = []string{"nope"}
		}),
		htTarget(t, srv.URL+"/ok", func(h *prober.HTTPSpec) {
			h.Auth = &prober.Auth{Type: "digest", Username: "alice", Password: htSecret(basicPass)}
			h.ExpectStatus = []string{"401"}
		}),
		htOAuthTarget(t, osrv.URL, "client-a", clientSec),
		htTarget(t, srv.URL+"/x", func(h *prober.HTTPSpec) {
			h.Auth = &prober.Auth{Type: "oauth2", TokenURL: closed.URL + "/token?secret=" + clientSec, ClientID: "c", ClientSecret: htSecret(clientSec)}
		}),
	}
	texts := map[string]string{}
	for i, tg := range targets {
		res := htCheck(t, p, tg)
		require.False(t, res.Success, "target %d should fail", i)
		require.NotEmpty(t, res.Error)
		texts[fmt.Sprintf("target %d error", i)] = res.Error
		t.Logf("%d %s: %s", i, res.ErrorClass, res.Error)
		b, _ := json.Marshal(res)
		texts[fmt.Sprintf("target %d json", i)] = string(b)
	}
	require.Contains(t, texts["target 7 error"], "invalid_client", "the server's complaint is kept")
	texts["log"] = logs.String()
	require.NotEmpty(t, logs.String())
	probertest.AssertNoSecret(t, []string{urlPass, basicPass, token, apiKey, clientSec}, texts)
}
