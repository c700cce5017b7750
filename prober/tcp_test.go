package prober

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tcpCheckPingPong answers each line "PING" with "PONG" and anything else
// with "ERR".
func tcpCheckPingPong(c net.Conn) {
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		reply := "ERR\r\n"
		if strings.TrimSpace(sc.Text()) == "PING" {
			reply = "PONG\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// tcpCheckHang reads until the peer (or the test's end) closes the
// connection, and never says a word.
func tcpCheckHang(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

func TestTCPCheck(t *testing.T) {
	ca := genTLSCheckCert(t, tlsCheckCertOpts{cn: "upwatch test CA", isCA: true})
	caFile := tlsCheckPEMFile(t, ca)
	leaf := tlsCheckLeaf(t, ca, time.Time{}, time.Time{})
	selfSigned := genTLSCheckCert(t, tlsCheckCertOpts{cn: "localhost", dnsNames: []string{"localhost"}, ips: []net.IP{net.IPv4(127, 0, 0, 1)}})

	banner := tcpCheckServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "SSH-2.0-upwatch_test\r\n")
		tcpCheckHang(c)
	})
	pingPong := tcpCheckServer(t, tcpCheckPingPong)
	split := tcpCheckServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "+OK upw")
		time.Sleep(20 * time.Millisecond)
		_, _ = io.WriteString(c, "atch ready\r\n")
		tcpCheckHang(c)
	})
	wrongAndClose := tcpCheckServer(t, func(c net.Conn) { _, _ = io.WriteString(c, "-ERR go away\r\n") })
	wrongAndHang := tcpCheckServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, "-ERR go away\r\n")
		tcpCheckHang(c)
	})
	closeAtOnce := tcpCheckServer(t, func(net.Conn) {})
	silent := tcpCheckServer(t, tcpCheckHang)
	selfSignedTLS := tlsCheckServer(t, tcpCheckPingPong, selfSigned)
	caTLS := tlsCheckServer(t, tcpCheckPingPong, leaf)

	tests := []struct {
		name       string
		spec       TCPSpec
		timeout    time.Duration // default 5s
		wantOK     bool
		wantClass  ErrorClass
		wantMsg    string
		wantExpiry time.Time
	}{
		{name: "connect", spec: TCPSpec{Address: closeAtOnce}, wantOK: true},
		{name: "connect ip4", spec: TCPSpec{Address: closeAtOnce, IPProtocol: "ip4"}, wantOK: true},
		{name: "connect ip6 to an ip4 address", spec: TCPSpec{Address: closeAtOnce, IPProtocol: "ip6"}, wantClass: ClassConnect},
		{name: "refused", spec: TCPSpec{Address: closedCheckAddr(t)}, wantClass: ClassConnect, wantMsg: "refused"},
		{name: "send without expect", spec: TCPSpec{Address: pingPong, Send: "PING\r\n"}, wantOK: true},
		{name: "send and expect", spec: TCPSpec{Address: pingPong, Send: "PING\r\n", Expect: `^PONG\r\n$`}, wantOK: true},
		{name: "banner", spec: TCPSpec{Address: banner, Expect: `^SSH-2\.0-`}, wantOK: true},
		{name: "reply in two parts", spec: TCPSpec{Address: split, Expect: `^\+OK upwatch ready`}, wantOK: true},
		{name: "mismatch, server hangs up", spec: TCPSpec{Address: wrongAndClose, Expect: `^\+OK`},
			wantClass: ClassAssertion, wantMsg: `reply "-ERR go away\r\n" does not match expect "^\\+OK"`},
		{name: "mismatch, server stays", spec: TCPSpec{Address: wrongAndHang, Expect: `^\+OK`},
			wantClass: ClassAssertion, wantMsg: "does not match"},
		{name: "wrong answer to send", spec: TCPSpec{Address: pingPong, Send: "HELLO\r\n", Expect: `^PONG`},
			wantClass: ClassAssertion, wantMsg: `"ERR\r\n"`},
		{name: "closed before reply", spec: TCPSpec{Address: closeAtOnce, Expect: `.`},
			wantClass: ClassProtocol, wantMsg: "closed before any reply"},
		{name: "never replies", spec: TCPSpec{Address: silent, Send: "PING\r\n", Expect: `PONG`},
			timeout: 300 * time.Millisecond, wantClass: ClassTimeout},
		{name: "tls self-signed", spec: TCPSpec{Address: selfSignedTLS, TLS: true},
			wantClass: ClassTLS, wantMsg: "certificate", wantExpiry: selfSigned.cert.NotAfter},
		{name: "tls self-signed, insecure_skip_verify", spec: TCPSpec{Address: selfSignedTLS, TLS: true,
			TLSConfig: TLSClient{InsecureSkipVerify: true}, Send: "PING\n", Expect: "PONG"},
			wantOK: true, wantExpiry: selfSigned.cert.NotAfter},
		{name: "tls with ca_file", spec: TCPSpec{Address: caTLS, TLS: true, TLSConfig: TLSClient{CAFile: caFile}, Send: "PING\n", Expect: "PONG"},
			wantOK: true, wantExpiry: leaf.cert.NotAfter},
		{name: "tls with ca_file and server_name", spec: TCPSpec{Address: caTLS, TLS: true, TLSConfig: TLSClient{CAFile: caFile, ServerName: "localhost"}},
			wantOK: true, wantExpiry: leaf.cert.NotAfter},
		{name: "tls wrong server_name", spec: TCPSpec{Address: caTLS, TLS: true, TLSConfig: TLSClient{CAFile: caFile, ServerName: "other.example"}},
			wantClass: ClassTLS, wantMsg: "other.example", wantExpiry: leaf.cert.NotAfter},
		{name: "tls to a plain server", spec: TCPSpec{Address: banner, TLS: true, TLSConfig: TLSClient{InsecureSkipVerify: true}},
			wantClass: ClassTLS},
		{name: "tls missing ca_file", spec: TCPSpec{Address: caTLS, TLS: true, TLSConfig: TLSClient{CAFile: "/nonexistent/ca.pem"}},
			wantClass: ClassInternal, wantMsg: "ca_file"},
		{name: "tls cert_file without key_file", spec: TCPSpec{Address: caTLS, TLS: true, TLSConfig: TLSClient{CertFile: caFile}},
			wantClass: ClassInternal, wantMsg: "cert_file and key_file"},
	}
	p := New(Options{AllowPrivate: true})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			spec := tc.spec
			res := runCheckTarget(t, p, Target{Name: "tcp", Kind: "tcp", Timeout: timeout, TCP: &spec})
			require.Equal(t, tc.wantOK, res.Success, "error: %s %s", res.ErrorClass, res.Error)
			require.Equal(t, tc.wantClass, res.ErrorClass, res.Error)
			require.Contains(t, res.Error, tc.wantMsg)
			require.True(t, tc.wantExpiry.Equal(res.TLSExpiry), "TLSExpiry %s, want %s", res.TLSExpiry, tc.wantExpiry)
			if tc.wantOK {
				require.Equal(t, spec.Address, res.RemoteAddr)
			}
			if tc.wantOK && spec.TLS {
				require.NotZero(t, res.Phases.TLS)
			}
		})
	}
}

// A tcp check must end with its context even while a reply that never
// matches keeps trickling in.
func TestTCPCheckTrickleTimesOut(t *testing.T) {
	addr := tcpCheckServer(t, func(c net.Conn) {
		for {
			if _, err := io.WriteString(c, "."); err != nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	p := New(Options{AllowPrivate: true})
	res := runCheckTarget(t, p, Target{Name: "tcp", Kind: "tcp", Timeout: 300 * time.Millisecond, TCP: &TCPSpec{Address: addr, Expect: "^never"}})
	require.False(t, res.Success)
	// Timeout, unless a loaded machine stalled the trickle long enough for
	// the line to count as quiet.
	require.Contains(t, []ErrorClass{ClassTimeout, ClassAssertion}, res.ErrorClass, res.Error)
}

// A reply longer than the read bound is judged on what was read.
func TestTCPCheckReplyBounded(t *testing.T) {
	addr := tcpCheckServer(t, func(c net.Conn) {
		_, _ = io.WriteString(c, strings.Repeat("x", 3*tcpMaxReply)+"END")
		tcpCheckHang(c)
	})
	p := New(Options{AllowPrivate: true})
	res := runCheckTarget(t, p, Target{Name: "tcp", Kind: "tcp", Timeout: 5 * time.Second, TCP: &TCPSpec{Address: addr, Expect: "END"}})
	require.False(t, res.Success)
	require.Equal(t, ClassAssertion, res.ErrorClass, res.Error)
	require.Less(t, len(res.Error), 600)
}

func TestTCPCheckBlocked(t *testing.T) {
	addr := tcpCheckServer(t, tcpCheckPingPong)
	p := New(Options{})
	res := runCheckTarget(t, p, Target{Name: "tcp", Kind: "tcp", Timeout: 2 * time.Second, TCP: &TCPSpec{Address: addr}})
	require.False(t, res.Success)
	require.Equal(t, ClassBlocked, res.ErrorClass, res.Error)
	require.Contains(t, res.Error, "127.0.0.1")
}
