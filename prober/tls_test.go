package prober

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tlsCheckCert is a certificate made for the tls, tcp and dns check tests,
// with its key and the parsed form.
type tlsCheckCert struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

// tlsCheckCertOpts say what genTLSCheckCert makes.
type tlsCheckCertOpts struct {
	cn        string
	dnsNames  []string
	ips       []net.IP
	isCA      bool
	notBefore time.Time // default: an hour ago
	notAfter  time.Time // default: in 90 days
	parent    *tlsCheckCert
}

// genTLSCheckCert makes a certificate signed by o.parent, or self-signed
// when o.parent is nil.
func genTLSCheckCert(t testing.TB, o tlsCheckCertOpts) *tlsCheckCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(90 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: o.cn, Organization: []string{"upwatch test"}},
		DNSNames:              o.dnsNames,
		IPAddresses:           o.ips,
		NotBefore:             o.notBefore,
		NotAfter:              o.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  o.isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature,
	}
	if o.isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	parentCert, parentKey := tmpl, key
	if o.parent != nil {
		parentCert, parentKey = o.parent.cert, o.parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, &key.PublicKey, parentKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &tlsCheckCert{cert: cert, key: key, der: der}
}

// tlsCheckLeaf is a server certificate for localhost and 127.0.0.1.
func tlsCheckLeaf(t testing.TB, parent *tlsCheckCert, notBefore, notAfter time.Time) *tlsCheckCert {
	return genTLSCheckCert(t, tlsCheckCertOpts{
		cn: "localhost", dnsNames: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)},
		notBefore: notBefore, notAfter: notAfter, parent: parent,
	})
}

// tlsCheckPEMFile writes certs as a PEM bundle and returns its path.
func tlsCheckPEMFile(t testing.TB, certs ...*tlsCheckCert) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})...)
	}
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// tlsCheckServer serves TLS on 127.0.0.1 with leaf (and the chain after
// it): each connection handshakes, then handle (if any) talks on it. It
// returns the address.
func tlsCheckServer(t testing.TB, handle func(net.Conn), leaf *tlsCheckCert, chain ...*tlsCheckCert) string {
	t.Helper()
	cert := tls.Certificate{Certificate: [][]byte{leaf.der}, PrivateKey: leaf.key}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.der)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return tcpCheckServer(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		if handle != nil {
			handle(tc)
		}
	})
}

// tcpCheckServer serves TCP on 127.0.0.1, calling handle for each
// connection and closing it after; everything stops at the end of the
// test. It returns the address.
func tcpCheckServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
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
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// closedCheckAddr returns a 127.0.0.1 address nothing listens on.
func closedCheckAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// runCheckTarget normalises, validates and checks tgt.
func runCheckTarget(t testing.TB, p *Prober, tgt Target) Result {
	t.Helper()
	tgt.Normalize()
	require.Empty(t, tgt.Validate("t"))
	return p.Check(context.Background(), &tgt)
}

func TestTLSCheck(t *testing.T) {
	now := time.Now()
	ca := genTLSCheckCert(t, tlsCheckCertOpts{cn: "upwatch test CA", isCA: true})
	caFile := tlsCheckPEMFile(t, ca)
	otherCA := genTLSCheckCert(t, tlsCheckCertOpts{cn: "another CA", isCA: true})
	otherCAFile := tlsCheckPEMFile(t, otherCA)

	valid := tlsCheckLeaf(t, ca, time.Time{}, time.Time{})
	expired := tlsCheckLeaf(t, ca, now.Add(-60*24*time.Hour), now.Add(-24*time.Hour))
	notYet := tlsCheckLeaf(t, ca, now.Add(24*time.Hour), now.Add(60*24*time.Hour))
	soon := tlsCheckLeaf(t, ca, time.Time{}, now.Add(5*24*time.Hour))
	selfSigned := genTLSCheckCert(t, tlsCheckCertOpts{cn: "localhost", dnsNames: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
	// A chain through an intermediate that expires before the leaf: the
	// expiry reported is the intermediate's.
	inter := genTLSCheckCert(t, tlsCheckCertOpts{cn: "upwatch intermediate", isCA: true, parent: ca, notAfter: now.Add(30 * 24 * time.Hour)})
	viaInter := tlsCheckLeaf(t, inter, time.Time{}, now.Add(60*24*time.Hour))

	plain := tcpCheckServer(t, func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n")) })

	tests := []struct {
		name       string
		addr       string
		spec       TLSSpec // Address filled from addr
		wantOK     bool
		wantClass  ErrorClass
		wantMsg    string    // substring of Error
		wantExpiry time.Time // zero: no expiry expected
	}{
		{name: "valid, CA from ca_file", addr: tlsCheckServer(t, nil, valid), spec: TLSSpec{CAFile: caFile},
			wantOK: true, wantExpiry: valid.cert.NotAfter},
		{name: "valid, server_name", addr: tlsCheckServer(t, nil, valid), spec: TLSSpec{CAFile: caFile, ServerName: "localhost"},
			wantOK: true, wantExpiry: valid.cert.NotAfter},
		{name: "chain with intermediate", addr: tlsCheckServer(t, nil, viaInter, inter), spec: TLSSpec{CAFile: caFile},
			wantOK: true, wantExpiry: inter.cert.NotAfter},
		{name: "chain missing intermediate", addr: tlsCheckServer(t, nil, viaInter), spec: TLSSpec{CAFile: caFile},
			wantClass: ClassCertError, wantMsg: "unknown authority", wantExpiry: viaInter.cert.NotAfter},
		{name: "unknown CA (system roots)", addr: tlsCheckServer(t, nil, valid), spec: TLSSpec{},
			// The message depends on whether the host has system roots.
			wantClass: ClassCertError, wantMsg: "certificate", wantExpiry: valid.cert.NotAfter},
		{name: "other CA", addr: tlsCheckServer(t, nil, valid), spec: TLSSpec{CAFile: otherCAFile},
			wantClass: ClassCertError, wantMsg: `unknown authority (issuer "upwatch test CA")`, wantExpiry: valid.cert.NotAfter},
		{name: "self-signed", addr: tlsCheckServer(t, nil, selfSigned), spec: TLSSpec{CAFile: caFile},
			wantClass: ClassCertError, wantMsg: "self-signed", wantExpiry: selfSigned.cert.NotAfter},
		{name: "expired", addr: tlsCheckServer(t, nil, expired), spec: TLSSpec{CAFile: caFile},
			wantClass: ClassCertError, wantMsg: "certificate \"localhost\" expired on", wantExpiry: expired.cert.NotAfter},
		{name: "not yet valid", addr: tlsCheckServer(t, nil, notYet), spec: TLSSpec{CAFile: caFile},
			wantClass: ClassCertError, wantMsg: "not valid before", wantExpiry: notYet.cert.NotAfter},
		{name: "hostname mismatch", addr: tlsCheckServer(t, nil, valid), spec: TLSSpec{CAFile: caFile, ServerName: "other.example"},
			wantClass: ClassCertError, wantMsg: "certificate for localhost, 127.0.0.1, not other.example", wantExpiry: valid.cert.NotAfter},
		{name: "expires in 5 days, default min 14", addr: tlsCheckServer(t, nil, soon), spec: TLSSpec{CAFile: caFile},
			wantClass: ClassCertError, wantMsg: "expires in 5.0 days", wantExpiry: soon.cert.NotAfter},
		{name: "expires in 5 days, min 3", addr: tlsCheckServer(t, nil, soon), spec: TLSSpec{CAFile: caFile, MinDaysLeft: 3},
			wantOK: true, wantExpiry: soon.cert.NotAfter},
		{name: "expires in 5 days, check disabled", addr: tlsCheckServer(t, nil, soon), spec: TLSSpec{CAFile: caFile, MinDaysLeft: -1},
			wantOK: true, wantExpiry: soon.cert.NotAfter},
		{name: "not TLS", addr: plain, spec: TLSSpec{CAFile: caFile},
			wantClass: ClassTLS, wantMsg: "handshake"},
		{name: "refused", addr: closedCheckAddr(t), spec: TLSSpec{CAFile: caFile},
			wantClass: ClassConnect},
		{name: "missing ca_file", addr: tlsCheckServer(t, nil, valid), spec: TLSSpec{CAFile: filepath.Join(t.TempDir(), "nope.pem")},
			wantClass: ClassInternal, wantMsg: "ca_file"},
	}
	p := New(Options{AllowPrivate: true})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Address = tc.addr
			res := runCheckTarget(t, p, Target{Name: "tls", Kind: "tls", Timeout: 5 * time.Second, TLS: &spec})
			require.Equal(t, tc.wantOK, res.Success, "error: %s %s", res.ErrorClass, res.Error)
			require.Equal(t, tc.wantClass, res.ErrorClass, res.Error)
			require.Contains(t, res.Error, tc.wantMsg)
			require.True(t, tc.wantExpiry.Equal(res.TLSExpiry), "TLSExpiry %s, want %s", res.TLSExpiry, tc.wantExpiry)
			if tc.wantClass != ClassConnect && tc.wantClass != ClassInternal {
				require.Equal(t, tc.addr, res.RemoteAddr)
			}
			if !tc.wantExpiry.IsZero() {
				require.NotZero(t, res.Phases.TLS)
			}
		})
	}
}

func TestTLSCheckTimeout(t *testing.T) {
	// A server that accepts and never speaks TLS.
	addr := tcpCheckServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	p := New(Options{AllowPrivate: true})
	res := runCheckTarget(t, p, Target{Name: "tls", Kind: "tls", Timeout: 300 * time.Millisecond, TLS: &TLSSpec{Address: addr}})
	require.False(t, res.Success)
	require.Equal(t, ClassTimeout, res.ErrorClass, res.Error)
	require.True(t, res.TLSExpiry.IsZero())
}

func TestTLSCheckBlocked(t *testing.T) {
	ca := genTLSCheckCert(t, tlsCheckCertOpts{cn: "upwatch test CA", isCA: true})
	addr := tlsCheckServer(t, nil, tlsCheckLeaf(t, ca, time.Time{}, time.Time{}))
	p := New(Options{})
	res := runCheckTarget(t, p, Target{Name: "tls", Kind: "tls", Timeout: 2 * time.Second, TLS: &TLSSpec{Address: addr}})
	require.False(t, res.Success)
	require.Equal(t, ClassBlocked, res.ErrorClass, res.Error)
}

// TestTLSCheckPhasesAddUp: a tls check by host name times the lookup as
// its own phase (it used to hide in connect), and the phases are parts of
// the check's duration, verification included in tls.
func TestTLSCheckPhasesAddUp(t *testing.T) {
	ca := genTLSCheckCert(t, tlsCheckCertOpts{cn: "upwatch test CA", isCA: true})
	valid := tlsCheckLeaf(t, ca, time.Time{}, time.Time{})
	_, port, err := net.SplitHostPort(tlsCheckServer(t, nil, valid))
	require.NoError(t, err)
	p := New(Options{AllowPrivate: true})
	for _, kind := range []string{"tls", "tcp"} {
		tgt := Target{Name: kind, Kind: kind, Timeout: 5 * time.Second}
		if kind == "tls" {
			tgt.TLS = &TLSSpec{Address: net.JoinHostPort("localhost", port), CAFile: tlsCheckPEMFile(t, ca)}
		} else {
			tgt.TCP = &TCPSpec{Address: net.JoinHostPort("localhost", port)}
		}
		res := runCheckTarget(t, p, tgt)
		require.True(t, res.Success, "%s: %s %s", kind, res.ErrorClass, res.Error)
		ph := res.Phases
		require.NotZero(t, ph.DNS, "%s: the lookup of localhost is its own phase", kind)
		require.NotZero(t, ph.Connect, kind)
		require.LessOrEqual(t, ph.DNS+ph.Connect+ph.TLS, res.Duration, "%s: phases are parts of the duration", kind)
	}
}

// A tls check records the negotiated version as blackbox names it
// (probe_tls_version_info), also when the certificate then fails.
func TestTLSCheckRecordsVersion(t *testing.T) {
	ca := genTLSCheckCert(t, tlsCheckCertOpts{cn: "upwatch test CA", isCA: true})
	valid := tlsCheckLeaf(t, ca, time.Time{}, time.Time{})
	cert := tls.Certificate{Certificate: [][]byte{valid.der}, PrivateKey: valid.key}
	p := New(Options{AllowPrivate: true})
	for _, tc := range []struct {
		max    uint16
		caFile string
		want   string
	}{
		{tls.VersionTLS12, tlsCheckPEMFile(t, ca), "TLS 1.2"},
		{tls.VersionTLS13, tlsCheckPEMFile(t, ca), "TLS 1.3"},
		{tls.VersionTLS13, "", "TLS 1.3"}, // unknown authority
	} {
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tc.max}
		addr := tcpCheckServer(t, func(c net.Conn) { _ = tls.Server(c, cfg).Handshake() })
		res := runCheckTarget(t, p, Target{Name: "tls", Kind: "tls", Timeout: 5 * time.Second, TLS: &TLSSpec{Address: addr, CAFile: tc.caFile}})
		require.Equal(t, tc.caFile != "", res.Success, "%s %s", res.ErrorClass, res.Error)
		require.Equal(t, tc.want, res.TLSVersion)
	}
	require.Equal(t, "unknown", tlsVersionName(0x0300)) // SSL 3.0
}
