package prober

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// probeTLS checks the certificate served at t.TLS.Address: that it chains to
// a trusted root (the system's or t.TLS.CAFile), matches the server name and
// does not expire within MinDaysLeft days. It handshakes without
// verification and verifies by hand, so the Result carries the expiry even
// of a certificate it rejects, and the message says precisely why.
func probeTLS(ctx context.Context, p *Prober, t *Target) (r Result) {
	s := t.TLS
	if s == nil {
		return r.Fail(ClassInternal, "tls check without a tls block")
	}
	serverName := s.ServerName
	if serverName == "" {
		host, _, err := net.SplitHostPort(s.Address)
		if err != nil {
			return r.Fail(ClassInternal, fmt.Sprintf("address %q: %v", s.Address, err))
		}
		serverName = host
	}
	var roots *x509.CertPool // nil: the system roots
	if s.CAFile != "" {
		var err error
		if roots, err = tlsLoadCAPool(s.CAFile); err != nil {
			return r.Fail(ClassInternal, err.Error())
		}
	}

	conn, dns, connect, err := p.dialTimed(ctx, s.Address, "")
	r.Phases.DNS, r.Phases.Connect = dns, connect
	if err != nil {
		return r.Fail(Classify(err))
	}
	defer conn.Close()
	r.RemoteAddr = conn.RemoteAddr().String()
	stop := probeConnBindCtx(ctx, conn)
	defer stop()

	// Verification is done below, by hand, on what the server sent.
	tc := tls.Client(conn, &tls.Config{ServerName: serverName, InsecureSkipVerify: true}) //nolint:gosec
	// The tls phase is the handshake and the verification after it, so
	// the phases add up to the check's duration.
	start := time.Now()
	defer func() { r.Phases.TLS = time.Since(start) }()
	err = tc.HandshakeContext(ctx)
	if err != nil {
		class, msg := Classify(err)
		return r.Fail(class, "handshake: "+msg)
	}
	state := tc.ConnectionState()
	r.TLSVersion = tlsVersionName(state.Version)
	certs := state.PeerCertificates
	if len(certs) == 0 {
		return r.Fail(ClassTLS, "server sent no certificate")
	}
	r.TLSExpiry = tlsChainExpiry(certs)

	if msg := tlsVerifyPeerChain(certs, roots, serverName, time.Now()); msg != "" {
		return r.Fail(ClassCertError, msg)
	}
	leaf := certs[0]
	if s.MinDaysLeft >= 0 {
		left := time.Until(leaf.NotAfter)
		if left < time.Duration(s.MinDaysLeft)*24*time.Hour {
			return r.Fail(ClassCertError, fmt.Sprintf("certificate expires in %.1f days (%s), less than min_days_left %d",
				left.Hours()/24, leaf.NotAfter.UTC().Format(time.DateTime), s.MinDaysLeft))
		}
	}
	r.Success = true
	return r
}

// tlsVerifyPeerChain verifies the chain a server sent (leaf first) against
// roots (nil: the system's) and serverName at now, and says what is wrong
// in a few words, or "" when nothing is.
func tlsVerifyPeerChain(certs []*x509.Certificate, roots *x509.CertPool, serverName string, now time.Time) string {
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now})
	var invalid x509.CertificateInvalidError
	var unknown x509.UnknownAuthorityError
	switch {
	case err == nil:
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		if now.Before(invalid.Cert.NotBefore) {
			return fmt.Sprintf("certificate %s not valid before %s", tlsCertName(invalid.Cert), invalid.Cert.NotBefore.UTC().Format(time.DateTime))
		}
		return fmt.Sprintf("certificate %s expired on %s", tlsCertName(invalid.Cert), invalid.Cert.NotAfter.UTC().Format(time.DateTime))
	case errors.As(err, &unknown):
		issuer := leaf.Issuer.CommonName
		if issuer == "" {
			issuer = leaf.Issuer.String()
		}
		if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) && leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
			return fmt.Sprintf("certificate signed by unknown authority (self-signed %q)", issuer)
		}
		return fmt.Sprintf("certificate signed by unknown authority (issuer %q)", issuer)
	default:
		return "certificate invalid: " + err.Error()
	}
	if err := leaf.VerifyHostname(serverName); err != nil {
		names := append([]string(nil), leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		if len(names) == 0 {
			return fmt.Sprintf("certificate has no names, not valid for %s", serverName)
		}
		if len(names) > 5 {
			names = append(names[:5], "…")
		}
		return fmt.Sprintf("certificate for %s, not %s", strings.Join(names, ", "), serverName)
	}
	return ""
}

// tlsCertName names a certificate in a message: its subject's common name, or
// its first DNS name.
func tlsCertName(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return fmt.Sprintf("%q", c.Subject.CommonName)
	case len(c.DNSNames) > 0:
		return fmt.Sprintf("%q", c.DNSNames[0])
	}
	return "of the chain"
}

// tlsChainExpiry is the earliest NotAfter of certs; zero when there are none.
func tlsChainExpiry(certs []*x509.Certificate) time.Time {
	var first time.Time
	for _, c := range certs {
		if first.IsZero() || c.NotAfter.Before(first) {
			first = c.NotAfter
		}
	}
	return first
}

// tlsVersionName names a TLS version as blackbox_exporter's
// probe_tls_version_info does.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLS 1.0"
	case tls.VersionTLS11:
		return "TLS 1.1"
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	}
	return "unknown"
}

// tlsLastChainExpiry is when the verified chain that lasts longest expires,
// a chain expiring with its earliest certificate; zero without chains.
func tlsLastChainExpiry(chains [][]*x509.Certificate) time.Time {
	var last time.Time
	for _, chain := range chains {
		if e := tlsChainExpiry(chain); e.After(last) {
			last = e
		}
	}
	return last
}

// probeConnBindCtx makes conn's reads and writes end with ctx: it sets ctx's
// deadline on conn and, should ctx be cancelled earlier, expires it then.
// Call the returned stop when done with conn.
func probeConnBindCtx(ctx context.Context, conn net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
}
