package prober

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"time"
)

// Bounds of the tcp check's reply read.
const (
	// tcpMaxReply caps how much of the reply is read and matched.
	tcpMaxReply = 64 << 10
	// tcpReplyQuiet is how long the check waits for more of a reply that
	// does not match yet once some of it has arrived: a reply split over
	// several segments still matches, and a server that answered wrongly
	// and keeps the connection open fails as a mismatch, not as a timeout.
	tcpReplyQuiet = 500 * time.Millisecond
)

// probeTCP connects to t.TCP.Address, optionally over TLS, optionally
// sends t.TCP.Send and matches the first reply against t.TCP.Expect.
func probeTCP(ctx context.Context, p *Prober, t *Target) (r Result) {
	s := t.TCP
	if s == nil {
		return r.Fail(ClassInternal, "tcp check without a tcp block")
	}
	var tlsCfg *tls.Config
	if s.TLS {
		var err error
		if tlsCfg, err = tcpTLSConfig(s.TLSConfig, s.Address); err != nil {
			return r.Fail(ClassInternal, err.Error())
		}
	}

	conn, dns, connect, err := p.dialTimed(ctx, s.Address, s.IPProtocol)
	r.Phases.DNS, r.Phases.Connect = dns, connect
	if err != nil {
		return r.Fail(Classify(err))
	}
	defer conn.Close()
	r.RemoteAddr = conn.RemoteAddr().String()
	stop := probeConnBindCtx(ctx, conn)
	defer stop()

	if tlsCfg != nil {
		tc := tls.Client(conn, tlsCfg)
		start := time.Now()
		err := tc.HandshakeContext(ctx)
		r.Phases.TLS = time.Since(start)
		if err != nil {
			var verr *tls.CertificateVerificationError
			if errors.As(err, &verr) {
				r.TLSExpiry = tlsChainExpiry(verr.UnverifiedCertificates)
			}
			return r.Fail(Classify(err))
		}
		r.TLSExpiry = tlsChainExpiry(tc.ConnectionState().PeerCertificates)
		conn = tc
	}

	if s.Send != "" {
		if _, err := io.WriteString(conn, s.Send); err != nil {
			class, msg := Classify(err)
			return r.Fail(class, "send: "+msg)
		}
	}
	if s.compiledExpect == nil {
		r.Success = true
		return r
	}
	reply, err := tcpReadReply(ctx, conn, s.compiledExpect)
	defer func() { r.Evidence = t.captured(r.Success, nil, reply, int64(len(reply))) }()
	switch {
	case s.compiledExpect.Match(reply):
		r.Success = true
		return r
	case len(reply) == 0 && err != nil && !errors.Is(err, io.EOF):
		class, msg := Classify(err)
		return r.Fail(class, "waiting for reply: "+msg)
	case len(reply) == 0:
		return r.Fail(ClassProtocol, "connection closed before any reply")
	}
	return r.Fail(ClassAssertion, fmt.Sprintf("reply %q does not match expect %q", truncate(string(reply), 80), s.Expect))
}

// tcpReadReply reads from conn until re matches what was read, the peer closes,
// tcpMaxReply bytes arrived, ctx ends or, once something arrived, the line
// went quiet for tcpReplyQuiet. It returns what it read and the error that
// ended the read, if any (a quiet line is not an error).
func tcpReadReply(ctx context.Context, conn net.Conn, re *regexp.Regexp) ([]byte, error) {
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	for buf.Len() < tcpMaxReply {
		n, err := conn.Read(chunk[:min(len(chunk), tcpMaxReply-buf.Len())])
		buf.Write(chunk[:n])
		if re.Match(buf.Bytes()) {
			return buf.Bytes(), nil
		}
		if err != nil {
			if buf.Len() > 0 && errors.Is(err, os.ErrDeadlineExceeded) && !tcpCtxExpired(ctx) {
				return buf.Bytes(), nil // quiet line
			}
			return buf.Bytes(), err
		}
		if buf.Len() > 0 && !tcpCtxExpired(ctx) {
			// Something arrived: wait only a short while for the rest,
			// never past the check's own deadline.
			quiet := time.Now().Add(tcpReplyQuiet)
			if d, ok := ctx.Deadline(); ok && d.Before(quiet) {
				quiet = d
			}
			_ = conn.SetReadDeadline(quiet)
		}
	}
	return buf.Bytes(), nil
}

// tcpCtxExpired reports whether ctx has ended or reached its deadline (a
// connection deadline set from it may fire before ctx notices).
func tcpCtxExpired(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ctx.Err() != nil || (ok && !time.Now().Before(d))
}

// tcpTLSConfig builds the client TLS configuration of a tcp check to
// address from c.
func tcpTLSConfig(c TLSClient, address string) (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify, ServerName: c.ServerName}
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("address %q: %v", address, err)
		}
		cfg.ServerName = host
	}
	if c.CAFile != "" {
		pool, err := tlsLoadCAPool(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("tls_config: cert_file and key_file go together")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config: client certificate: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// tlsLoadCAPool reads a PEM bundle of CA certificates.
func tlsLoadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s: no PEM certificate found", path)
	}
	return pool, nil
}
