package smtp_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a small scripted SMTP server on 127.0.0.1 for unit tests:
// EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
type fakeServer struct {
	Addr string

	tls       *tls.Config // server side, for STARTTLS and implicit TLS
	implicit  bool        // TLS from the first byte
	offerTLS  bool        // advertise STARTTLS
	authMechs string      // advertised AUTH mechanisms; "" = no AUTH
	user      string
	pass      string
	greeting  string            // first line; "" = "220 fake ESMTP", "hang" = say nothing
	replies   map[string]string // verb (or "DATAEND") → forced reply line
	echoAuth  bool              // 535 reply quoting what the client sent (a broken server)

	mu    sync.Mutex
	mails []received
	auths []string // AUTH commands seen (mechanism)
}

type received struct {
	From, To string
	Data     string
	TLS      bool
	User     string
}

func (s *fakeServer) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-done; _ = c.Close() }()
				s.serve(c, done)
			}()
		}
	}()
}

func (s *fakeServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.mails...)
}

func (s *fakeServer) authsSeen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

func (s *fakeServer) serve(c net.Conn, done chan struct{}) {
	secure := false
	if s.implicit {
		tc := tls.Server(c, s.tls)
		if tc.Handshake() != nil {
			return
		}
		c, secure = tc, true
	}
	tp := textproto.NewConn(c)
	reply := func(line string) { _ = tp.PrintfLine("%s", line) }
	switch s.greeting {
	case "hang":
		<-done
		return
	case "":
		reply("220 fake ESMTP")
	default:
		reply(s.greeting)
	}
	var cur received
	user := ""
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		if r, ok := s.replies[verb]; ok {
			reply(r)
			if strings.HasPrefix(r, "421") {
				return
			}
			continue
		}
		switch verb {
		case "EHLO":
			lines := []string{"fake greets " + arg}
			if s.offerTLS && !secure {
				lines = append(lines, "STARTTLS")
			}
			if s.authMechs != "" {
				lines = append(lines, "AUTH "+s.authMechs)
			}
			lines = append(lines, "8BITMIME")
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				reply("250" + sep + l)
			}
		case "HELO", "NOOP", "RSET":
			reply("250 ok")
		case "STARTTLS":
			reply("220 go ahead")
			tc := tls.Server(c, s.tls)
			if tc.Handshake() != nil {
				return
			}
			c, secure = tc, true
			tp = textproto.NewConn(c)
			reply = func(line string) { _ = tp.PrintfLine("%s", line) }
		case "AUTH":
			mech, initial, _ := strings.Cut(arg, " ")
			s.mu.Lock()
			s.auths = append(s.auths, strings.ToUpper(mech))
			s.mu.Unlock()
			var u, p string
			switch strings.ToUpper(mech) {
			case "PLAIN":
				b, _ := base64.StdEncoding.DecodeString(initial)
				parts := strings.Split(string(b), "\x00")
				if len(parts) == 3 {
					u, p = parts[1], parts[2]
				}
			case "LOGIN":
				reply("334 " + base64.StdEncoding.EncodeToString([]byte("Username:")))
				l1, _ := tp.ReadLine()
				reply("334 " + base64.StdEncoding.EncodeToString([]byte("Password:")))
				l2, _ := tp.ReadLine()
				bu, _ := base64.StdEncoding.DecodeString(l1)
				bp, _ := base64.StdEncoding.DecodeString(l2)
				u, p = string(bu), string(bp)
			default:
				reply("504 unrecognized authentication type")
				continue
			}
			switch {
			case s.echoAuth:
				reply("535 5.7.8 bad credentials " + initial + " user " + u + " pass " + p)
			case u == s.user && p == s.pass:
				user = u
				reply("235 2.7.0 authenticated")
			default:
				reply("535 5.7.8 authentication failed")
			}
		case "MAIL":
			cur = received{From: between(arg, "<", ">"), TLS: secure, User: user}
			reply("250 ok")
		case "RCPT":
			cur.To = between(arg, "<", ">")
			reply("250 ok")
		case "DATA":
			reply("354 end with <CRLF>.<CRLF>")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			if r, ok := s.replies["DATAEND"]; ok {
				reply(r)
				continue
			}
			cur.Data = string(b)
			s.mu.Lock()
			s.mails = append(s.mails, cur)
			s.mu.Unlock()
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 command not implemented")
		}
	}
}

func between(s, a, b string) string {
	_, s, _ = strings.Cut(s, a)
	s, _, _ = strings.Cut(s, b)
	return s
}

// testCert returns a server TLS config for 127.0.0.1 and a client pool
// trusting it.
func testCert(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}
