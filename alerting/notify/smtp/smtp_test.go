package smtp_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/notifytest"
	"github.com/upwatch/upwatch/alerting/notify/smtp"
	"github.com/upwatch/upwatch/secret"
)

const (
	user = "mailer"
	pass = "smtp-password-never-leak"
)

func message() notify.Message {
	return notify.Message{
		Key: "inc-5/down/ada/email", Kind: notify.KindDown, IncidentID: "inc-5",
		Subject: "[upwatch] DOWN: Café API",
		Text:    "DOWN: Café API since 2024-01-02 03:04:05 UTC.\nCause: connection refused\n",
		HTML:    "<p>DOWN: <b>Café API</b></p>",
		To:      notify.Recipient{Name: "Ada Lovelace", Email: "ada@example.com"},
	}
}

// config points at srv with TLS trusted through pool.
func config(srv *fakeServer) smtp.Config {
	host, port, _ := net.SplitHostPort(srv.Addr)
	p, _ := strconv.Atoi(port)
	return smtp.Config{Host: host, Port: p, From: "alerts@upwatch.test", FromName: "upwatch"}
}

func withAuth(c smtp.Config) smtp.Config {
	c.Username, c.Password = user, secret.New(pass)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSendWithSTARTTLSAndAuth(t *testing.T) {
	for _, mechs := range []string{"PLAIN LOGIN", "LOGIN"} {
		t.Run(mechs, func(t *testing.T) {
			srvTLS, pool := testCert(t)
			srv := &fakeServer{tls: srvTLS, offerTLS: true, authMechs: mechs, user: user, pass: pass}
			srv.start(t)
			n := smtp.New(withAuth(config(srv)), &tls.Config{RootCAs: pool})
			if retry, err := n.Notify(ctx(t), message()); err != nil {
				t.Fatalf("Notify: %v (retry %v)", err, retry)
			}
			got := srv.received()
			if len(got) != 1 {
				t.Fatalf("%d mails, want 1", len(got))
			}
			if !got[0].TLS || got[0].User != user {
				t.Errorf("TLS %v, user %q; want TLS and %q", got[0].TLS, got[0].User, user)
			}
			if want := strings.Fields(mechs)[0]; len(srv.authsSeen()) != 1 || srv.authsSeen()[0] != want {
				t.Errorf("AUTH used %v, want %s", srv.authsSeen(), want)
			}
			checkMessage(t, got[0])
		})
	}
}

// checkMessage parses the mail as a receiver would.
func checkMessage(t *testing.T, r received) {
	t.Helper()
	if r.From != "alerts@upwatch.test" || r.To != "ada@example.com" {
		t.Errorf("envelope %q → %q", r.From, r.To)
	}
	msg, err := mail.ReadMessage(strings.NewReader(r.Data))
	if err != nil {
		t.Fatalf("not a mail message: %v\n%s", err, r.Data)
	}
	h := msg.Header
	if from, err := mail.ParseAddress(h.Get("From")); err != nil || from.Address != "alerts@upwatch.test" || from.Name != "upwatch" {
		t.Errorf("From = %q", h.Get("From"))
	}
	if to, err := mail.ParseAddress(h.Get("To")); err != nil || to.Address != "ada@example.com" || to.Name != "Ada Lovelace" {
		t.Errorf("To = %q", h.Get("To"))
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subj != "[upwatch] DOWN: Café API" {
		t.Errorf("Subject = %q (%v)", h.Get("Subject"), err)
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date = %q: %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); id != smtp.MessageID("inc-5/down/ada/email", "upwatch.test") || !strings.HasSuffix(id, "@upwatch.test>") {
		t.Errorf("Message-ID = %q", id)
	}
	if k := h.Get("X-Upwatch-Key"); k != "inc-5/down/ada/email" {
		t.Errorf("X-Upwatch-Key = %q", k)
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type = %q", h.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types, bodies []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Errorf("part encoding %q", p.Header.Get("Content-Transfer-Encoding"))
		}
		b, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, p.Header.Get("Content-Type"))
		bodies = append(bodies, string(b))
	}
	if len(types) != 2 || !strings.HasPrefix(types[0], "text/plain") || !strings.HasPrefix(types[1], "text/html") {
		t.Fatalf("parts %v, want text/plain then text/html", types)
	}
	// The fake server's dot reader turns CRLF into LF, as the text had it.
	if want := message().Text; bodies[0] != want {
		t.Errorf("text part %q, want %q", bodies[0], want)
	}
	if bodies[1] != message().HTML {
		t.Errorf("html part %q", bodies[1])
	}
}

func TestImplicitTLS(t *testing.T) {
	srvTLS, pool := testCert(t)
	srv := &fakeServer{tls: srvTLS, implicit: true, authMechs: "PLAIN", user: user, pass: pass}
	srv.start(t)
	c := withAuth(config(srv))
	c.ImplicitTLS = true
	if _, err := smtp.New(c, &tls.Config{RootCAs: pool}).Notify(ctx(t), message()); err != nil {
		t.Fatal(err)
	}
	if got := srv.received(); len(got) != 1 || !got[0].TLS || got[0].User != user {
		t.Errorf("received %+v", got)
	}
}

func TestTLSPolicy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mode      string
		auth      bool
		insecure  bool
		wantSent  bool
		wantRetry bool
	}{
		{"always refuses a server without STARTTLS", smtp.StartTLSAlways, false, false, false, false},
		{"opportunistic sends in plaintext without auth", smtp.StartTLSOpportunistic, false, false, true, false},
		{"opportunistic never authenticates in plaintext", smtp.StartTLSOpportunistic, true, false, false, false},
		{"never sends in plaintext", smtp.StartTLSNever, false, false, true, false},
		{"never with allow_insecure_auth authenticates", smtp.StartTLSNever, true, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &fakeServer{authMechs: "PLAIN", user: user, pass: pass}
			srv.start(t)
			c := config(srv)
			c.StartTLS = tc.mode
			if tc.auth {
				c = withAuth(c)
			}
			c.AllowInsecureAuth = tc.insecure
			retry, err := smtp.New(c, nil).Notify(ctx(t), message())
			sent := len(srv.received()) == 1
			if sent != tc.wantSent || (err == nil) != tc.wantSent {
				t.Fatalf("sent %v, err %v; want sent %v", sent, err, tc.wantSent)
			}
			if err != nil && retry != tc.wantRetry {
				t.Errorf("retry %v, want %v", retry, tc.wantRetry)
			}
			if tc.auth && !tc.insecure && len(srv.authsSeen()) != 0 {
				t.Errorf("credentials were offered over plaintext: %v", srv.authsSeen())
			}
		})
	}
}

func TestStartTLSUsedWhenOfferedOpportunistically(t *testing.T) {
	srvTLS, pool := testCert(t)
	srv := &fakeServer{tls: srvTLS, offerTLS: true}
	srv.start(t)
	c := config(srv)
	c.StartTLS = smtp.StartTLSOpportunistic
	if _, err := smtp.New(c, &tls.Config{RootCAs: pool}).Notify(ctx(t), message()); err != nil {
		t.Fatal(err)
	}
	if got := srv.received(); len(got) != 1 || !got[0].TLS {
		t.Errorf("received %+v, want one mail over TLS", got)
	}
}

func TestUntrustedCertificateFails(t *testing.T) {
	srvTLS, _ := testCert(t)
	srv := &fakeServer{tls: srvTLS, offerTLS: true}
	srv.start(t)
	_, pool := testCert(t) // trusts another certificate
	retry, err := smtp.New(config(srv), &tls.Config{RootCAs: pool}).Notify(ctx(t), message())
	var uae x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &uae) {
		t.Fatalf("err %v, want an unknown-authority error", err)
	}
	if !retry {
		t.Error("want retry (a certificate can be fixed)")
	}
	if len(srv.received()) != 0 {
		t.Error("mail sent over an untrusted connection")
	}
}

func TestServerReplies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		greeting  string
		replies   map[string]string
		wantRetry bool
		wantCode  int
	}{
		{"greeting 554", "554 no service for you", nil, false, 554},
		{"greeting 421", "421 too busy", nil, true, 421},
		{"ehlo 500, helo fallback 500", "", map[string]string{"EHLO": "500 what", "HELO": "500 what"}, false, 500},
		{"mail 451", "", map[string]string{"MAIL": "451 4.3.0 try later"}, true, 451},
		{"mail 421 and hang up", "", map[string]string{"MAIL": "421 4.3.2 shutting down"}, true, 421},
		{"rcpt 550", "", map[string]string{"RCPT": "550 5.1.1 no such user"}, false, 550},
		{"rcpt 452", "", map[string]string{"RCPT": "452 4.2.2 mailbox full"}, true, 452},
		{"data 554", "", map[string]string{"DATA": "554 5.3.4 no"}, false, 554},
		{"data end 552", "", map[string]string{"DATAEND": "552 5.3.4 message too big"}, false, 552},
		{"data end 451", "", map[string]string{"DATAEND": "451 4.3.0 queue full"}, true, 451},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &fakeServer{greeting: tc.greeting, replies: tc.replies}
			srv.start(t)
			c := config(srv)
			c.StartTLS = smtp.StartTLSOpportunistic
			retry, err := smtp.New(c, nil).Notify(ctx(t), message())
			if err == nil {
				t.Fatal("want an error")
			}
			if retry != tc.wantRetry {
				t.Errorf("retry %v, want %v (err %v)", retry, tc.wantRetry, err)
			}
			var se *smtp.Error
			if !errors.As(err, &se) || se.Code != tc.wantCode {
				t.Errorf("err %v, want *smtp.Error with code %d", err, tc.wantCode)
			}
		})
	}
}

func TestAuthFailures(t *testing.T) {
	srvTLS, pool := testCert(t)
	for _, tc := range []struct {
		name      string
		srv       *fakeServer
		wantRetry bool
	}{
		{"wrong password", &fakeServer{authMechs: "PLAIN", user: user, pass: "other"}, false},
		{"server echoes credentials", &fakeServer{authMechs: "PLAIN", echoAuth: true}, false},
		{"server echoes LOGIN credentials", &fakeServer{authMechs: "LOGIN", echoAuth: true}, false},
		{"temporary auth failure", &fakeServer{authMechs: "PLAIN", replies: map[string]string{"AUTH": "454 4.7.0 temporary failure"}}, true},
		{"no AUTH offered", &fakeServer{}, false},
		{"only CRAM-MD5 offered", &fakeServer{authMechs: "CRAM-MD5"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.srv
			srv.tls, srv.offerTLS = srvTLS, true
			srv.start(t)
			n := smtp.New(withAuth(config(srv)), &tls.Config{RootCAs: pool})
			retry, err := n.Notify(ctx(t), message())
			if err == nil {
				t.Fatal("want an error")
			}
			if retry != tc.wantRetry {
				t.Errorf("retry %v, want %v (err %v)", retry, tc.wantRetry, err)
			}
			notifytest.AssertNoSecret(t, err, pass)
			if len(srv.received()) != 0 {
				t.Error("mail sent without authentication")
			}
		})
	}
}

func TestBrokenServers(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  *fakeServer
	}{
		{"never greets", &fakeServer{greeting: "hang"}},
		{"garbage greeting", &fakeServer{greeting: "\x00\xffhello there"}},
		{"garbage reply code", &fakeServer{replies: map[string]string{"MAIL": "abc"}}},
		{"hangs up", &fakeServer{replies: map[string]string{"RCPT": "421 bye"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.srv
			srv.start(t)
			c := config(srv)
			c.StartTLS = smtp.StartTLSOpportunistic
			cx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			retry, err := smtp.New(c, nil).Notify(cx, message())
			if err == nil || !retry {
				t.Errorf("retry %v, err %v; want a retryable error", retry, err)
			}
		})
	}
}

func TestUnreachableServerIsRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	_ = ln.Close()
	c := smtp.Config{Host: "127.0.0.1", Port: addr.Port, From: "a@b.test", StartTLS: smtp.StartTLSNever}
	retry, err := smtp.New(c, nil).Notify(ctx(t), message())
	if err == nil || !retry {
		t.Errorf("retry %v, err %v; want a retryable error", retry, err)
	}
}

func TestBadRecipientIsPermanent(t *testing.T) {
	srv := &fakeServer{}
	srv.start(t)
	c := config(srv)
	c.StartTLS = smtp.StartTLSNever
	for _, to := range []string{"", "nobody", "a@b.c\r\nBcc: evil@x.y", "Ada <ada@example.com>"} {
		m := message()
		m.To.Email = to
		if retry, err := smtp.New(c, nil).Notify(ctx(t), m); err == nil || retry {
			t.Errorf("To %q: retry %v, err %v; want a permanent error", to, retry, err)
		}
	}
	if len(srv.received()) != 0 {
		t.Error("mail sent to a bad recipient")
	}
}

// Values from targets and recipients cannot add headers.
func TestHeaderInjection(t *testing.T) {
	srv := &fakeServer{}
	srv.start(t)
	c := config(srv)
	c.StartTLS = smtp.StartTLSNever
	m := message()
	m.Subject = "DOWN\r\nBcc: evil@attacker.test"
	m.To.Name = "Ada\r\nBcc: evil@attacker.test"
	m.Key = "k\r\nBcc: evil@attacker.test"
	m.HTML = ""
	if _, err := smtp.New(c, nil).Notify(ctx(t), m); err != nil {
		t.Fatal(err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatal("no mail")
	}
	msg, err := mail.ReadMessage(strings.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if b := msg.Header.Get("Bcc"); b != "" {
		t.Errorf("injected Bcc header: %q", b)
	}
	if ct := msg.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("text-only message has Content-Type %q", ct)
	}
}

func TestConfigValidate(t *testing.T) {
	good := smtp.Config{Host: "mail.example.com", From: "a@example.com", Username: "u", Password: secret.New(pass)}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*smtp.Config)
		want []string
	}{
		{"empty", func(c *smtp.Config) { *c = smtp.Config{} }, []string{"host: required", "from: required"}},
		{"host with port", func(c *smtp.Config) { c.Host = "mail.example.com:25" }, []string{"host: "}},
		{"port", func(c *smtp.Config) { c.Port = 70000 }, []string{"port: "}},
		{"from", func(c *smtp.Config) { c.From = "nope" }, []string{"from: "}},
		{"starttls", func(c *smtp.Config) { c.StartTLS = "sometimes" }, []string{"starttls: "}},
		{"password without user", func(c *smtp.Config) { c.Username = "" }, []string{"username: required"}},
		{"plaintext auth", func(c *smtp.Config) { c.StartTLS = smtp.StartTLSNever }, []string{"allow_insecure_auth: "}},
		{"opportunistic auth", func(c *smtp.Config) { c.StartTLS = smtp.StartTLSOpportunistic }, []string{"allow_insecure_auth: "}},
		{"hello", func(c *smtp.Config) { c.Hello = "a b" }, []string{"hello: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	ok := good
	ok.StartTLS, ok.AllowInsecureAuth = smtp.StartTLSNever, true
	if err := ok.Validate(); err != nil {
		t.Errorf("allow_insecure_auth: %v", err)
	}
	ok = good
	ok.Port, ok.StartTLS = 465, smtp.StartTLSNever
	if err := ok.Validate(); err != nil {
		t.Errorf("port 465 is implicit TLS: %v", err)
	}
	notifytest.AssertNoSecret(t, good, pass)
}
