package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/registry"
)

// Cookie names. The session cookie holds a random token; the registry
// keeps only its SHA-256. The sign-in cookie is a double-submit token for
// the sign-in form, which has no session yet.
const (
	sessionCookie = "upwatch_session"
	signInCookie  = "upwatch_signin"
	csrfField     = "csrf"
)

// session is a signed-in user.
type session struct {
	TenantID, User string
	Role           Role
	CSRF           string
	hash           []byte
}

// principal is the API caller the user acts as: the audit log records
// "user:<name>" as the key.
func (s *session) principal() api.Principal {
	return api.Principal{TenantID: s.TenantID, KeyID: "user:" + s.User, Scopes: s.Role.Scopes()}
}

func (s *session) validCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func tokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// session returns the request's session: nil without a valid one (none,
// unknown, expired, or its user gone). The user's current role counts, so
// a changed role applies at once.
func (s *Server) session(r *http.Request) (*session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 64 {
		return nil, nil
	}
	ctx := r.Context()
	h := tokenHash(c.Value)
	ws, err := s.o.Sessions.WebSession(ctx, h)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if !s.o.Now().Before(ws.ExpiresAt) {
		return nil, s.o.Sessions.DeleteWebSession(ctx, h)
	}
	u, err := s.o.Users.WebUser(ctx, ws.TenantID, ws.UserName)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, s.o.Sessions.DeleteWebSession(ctx, h)
	} else if err != nil {
		return nil, err
	}
	return &session{TenantID: ws.TenantID, User: ws.UserName, Role: Role(u.Role), CSRF: ws.CSRF, hash: h}, nil
}

// cookie is a cookie of ours: HttpOnly, SameSite=Lax (links from mail
// open signed in; cross-site POSTs carry no cookie), Secure on TLS or
// behind an https public URL.
func (s *Server) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: Prefix + "/", MaxAge: maxAge, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.secure || r.TLS != nil}
}

type signInPage struct {
	Token, Tenant, Name, Next, Error string
	Demo                             bool
}

func (s *Server) getSignIn(w http.ResponseWriter, r *http.Request) {
	s.showSignIn(w, r, http.StatusOK, signInPage{Tenant: r.URL.Query().Get("tenant"), Next: r.URL.Query().Get("next")})
}

func (s *Server) showSignIn(w http.ResponseWriter, r *http.Request, status int, p signInPage) {
	tok, err := randomToken()
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	http.SetCookie(w, s.cookie(r, signInCookie, tok, 3600))
	p.Token, p.Demo = tok, s.o.Demo
	if p.Tenant == "" {
		p.Tenant = registry.DefaultTenant
	}
	w.Header().Set("Cache-Control", "no-store")
	s.renderPage(w, r, nil, status, "signin", p)
}

// safeNext keeps a redirect after sign-in on this site's pages.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "/"
	}
	return next
}

// postSignIn checks the password (the same work whether or not the user
// exists), counts failures in the API's failed-authentication limiter and
// starts a session.
func (s *Server) postSignIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	tenant, name, pw := strings.TrimSpace(r.PostFormValue("tenant")), strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password")
	back := signInPage{Tenant: tenant, Name: name, Next: r.PostFormValue("next")}
	c, err := r.Cookie(signInCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(csrfField))) != 1 {
		back.Error = "The sign-in form expired; please try again."
		s.showSignIn(w, r, http.StatusForbidden, back)
		return
	}
	if s.o.SignIn != nil {
		if wait, blocked := s.o.SignIn.Blocked(r); blocked {
			secs := max(1, int(math.Ceil(wait.Seconds())))
			w.Header().Set("Retry-After", fmt.Sprint(secs))
			back.Error = fmt.Sprintf("Too many failed sign-ins from your address; try again in %d s.", secs)
			s.showSignIn(w, r, http.StatusTooManyRequests, back)
			return
		}
	}
	ok, err := s.checkUser(r, tenant, name, pw)
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	if !ok {
		if s.o.SignIn != nil {
			s.o.SignIn.Fail(r, "web sign-in: wrong tenant, user or password")
		}
		back.Error = "Wrong tenant, user name or password."
		s.showSignIn(w, r, http.StatusUnauthorized, back)
		return
	}
	tok, err := randomToken()
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	csrf, err := randomToken()
	if err != nil {
		s.fail(w, r, nil, err)
		return
	}
	now := s.o.Now()
	ttl := s.o.Web.SessionTTL
	if err := s.o.Sessions.CreateWebSession(r.Context(), registry.WebSession{Hash: tokenHash(tok), TenantID: tenant, UserName: name,
		CSRF: csrf, CreatedAt: now, ExpiresAt: now.Add(ttl)}); err != nil {
		s.fail(w, r, nil, err)
		return
	}
	// Sign-ins are rare: a good moment to forget the sessions that ended.
	if _, err := s.o.Sessions.DeleteExpiredWebSessions(r.Context(), now); err != nil {
		s.log.Warn("expired web sessions not deleted", "err", err)
	}
	http.SetCookie(w, s.cookie(r, sessionCookie, tok, int(ttl.Seconds())))
	http.SetCookie(w, s.cookie(r, signInCookie, "", -1))
	http.Redirect(w, r, safeNext(back.Next), http.StatusSeeOther)
}

// dummyHash is checked against when the user does not exist, so a wrong
// name costs as long as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := hashPassword("no such user", defaultParams)
	return h
})

func (s *Server) checkUser(r *http.Request, tenant, name, pw string) (bool, error) {
	if tenant == "" || name == "" || pw == "" || len(pw) > MaxPasswordLen {
		return false, nil
	}
	u, err := s.o.Users.WebUser(r.Context(), tenant, name)
	hash := u.PasswordHash
	switch {
	case errors.Is(err, registry.ErrNotFound):
		hash = dummyHash()
	case err != nil:
		return false, err
	}
	ok, err := checkPassword(pw, hash)
	if err != nil {
		s.log.Error("stored password hash unreadable", "tenant", tenant, "user", name, "err", err)
		return false, nil
	}
	return ok && u.Name != "", nil
}

func (s *Server) postSignOut(w http.ResponseWriter, r *http.Request, sess *session) error {
	if err := s.o.Sessions.DeleteWebSession(r.Context(), sess.hash); err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(r, sessionCookie, "", -1))
	return seeOther(w, r, Prefix+"/signin")
}

func (s *Server) postSignOutEverywhere(w http.ResponseWriter, r *http.Request, sess *session) error {
	if err := s.o.Sessions.DeleteWebSessions(r.Context(), sess.TenantID, sess.User); err != nil {
		return err
	}
	http.SetCookie(w, s.cookie(r, sessionCookie, "", -1))
	return seeOther(w, r, Prefix+"/signin")
}
