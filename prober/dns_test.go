package prober

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/require"
)

// dnsCheckZone is what the test server knows, in zone-file syntax.
var dnsCheckZone = []string{
	"a.test. 300 IN A 192.0.2.1",
	"a.test. 300 IN A 192.0.2.2",
	"aaaa.test. 300 IN AAAA 2001:db8::1",
	"www.test. 300 IN CNAME target.test.",
	"target.test. 300 IN A 192.0.2.10",
	"mx.test. 300 IN MX 10 mx1.test.",
	"mx.test. 300 IN MX 20 mx2.test.",
	`txt.test. 300 IN TXT "v=spf1 -all"`,
	`txt.test. 300 IN TXT "hello " "world"`,
	"ns.test. 300 IN NS ns1.test.",
	"ns.test. 300 IN NS ns2.test.",
	"tc.test. 300 IN A 192.0.2.53",
	"empty.test. 300 IN TXT \"only a txt record\"",
}

// dnsCheckHandler answers from dnsCheckZone, following one CNAME. Names
// nx.test and fail.test answer NXDOMAIN and SERVFAIL; tc.test answers
// over udp with the truncated bit only.
func dnsCheckHandler(t testing.TB) dns.HandlerFunc {
	var rrs []dns.RR
	for _, s := range dnsCheckZone {
		rr, err := dns.NewRR(s)
		require.NoError(t, err)
		rrs = append(rrs, rr)
	}
	lookup := func(name string, qtype uint16) []dns.RR {
		var out []dns.RR
		for _, rr := range rrs {
			if rr.Header().Name == name && rr.Header().Rrtype == qtype {
				out = append(out, rr)
			}
		}
		return out
	}
	return func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		switch {
		case name == "nx.test.":
			m.Rcode = dns.RcodeNameError
		case name == "fail.test.":
			m.Rcode = dns.RcodeServerFailure
		case name == "tc.test." && w.LocalAddr().Network() == "udp":
			m.Truncated = true
		default:
			m.Answer = lookup(name, q.Qtype)
			if len(m.Answer) == 0 && q.Qtype != dns.TypeCNAME {
				if cn := lookup(name, dns.TypeCNAME); len(cn) > 0 {
					m.Answer = append(cn, lookup(cn[0].(*dns.CNAME).Target, q.Qtype)...)
				}
			}
		}
		_ = w.WriteMsg(m)
	}
}

// dnsCheckServer serves h over udp and tcp on one 127.0.0.1 port and
// returns the address.
func dnsCheckServer(t testing.TB, h dns.Handler) string {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for range 20 {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	require.NotNil(t, ln, "no port free for both udp and tcp")
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// dnsCheckRawUDP answers each datagram with reply(query); a nil reply is
// no answer at all.
func dnsCheckRawUDP(t testing.TB, reply func(query []byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if b := reply(append([]byte(nil), buf[:n]...)); b != nil {
				_, _ = pc.WriteTo(b, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// dnsCheckReply is a well-formed answer to query, changed by edit.
func dnsCheckReply(t testing.TB, query []byte, edit func(*dns.Msg)) []byte {
	q := new(dns.Msg)
	if err := q.Unpack(query); err != nil {
		return nil
	}
	m := new(dns.Msg)
	m.SetReply(q)
	rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN A 192.0.2.1")
	m.Answer = []dns.RR{rr}
	if edit != nil {
		edit(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Errorf("pack: %v", err)
		return nil
	}
	return b
}

func TestDNSCheck(t *testing.T) {
	server := dnsCheckServer(t, dnsCheckHandler(t))
	tests := []struct {
		name      string
		spec      DNSSpec
		wantOK    bool
		wantClass ErrorClass
		wantMsg   string
	}{
		{name: "A", spec: DNSSpec{Name: "a.test", Expect: []string{"192.0.2.1", "192.0.2.2"}}, wantOK: true},
		{name: "A, type defaults", spec: DNSSpec{Name: "a.test."}, wantOK: true},
		{name: "A, any case", spec: DNSSpec{Name: "A.Test", Type: "a", Expect: []string{"192.0.2.2"}}, wantOK: true},
		{name: "A missing", spec: DNSSpec{Name: "a.test", Expect: []string{"192.0.2.1", "192.0.2.9"}},
			wantClass: ClassAssertion, wantMsg: "missing 192.0.2.9 in answer (got A 192.0.2.1, A 192.0.2.2)"},
		{name: "A through CNAME", spec: DNSSpec{Name: "www.test", Expect: []string{"192.0.2.10", "target.test"}}, wantOK: true},
		{name: "AAAA", spec: DNSSpec{Name: "aaaa.test", Type: "AAAA", Expect: []string{"2001:db8::1"}}, wantOK: true},
		{name: "AAAA, other spelling", spec: DNSSpec{Name: "aaaa.test", Type: "AAAA", Expect: []string{"2001:0db8:0::1"}}, wantOK: true},
		{name: "AAAA missing", spec: DNSSpec{Name: "aaaa.test", Type: "AAAA", Expect: []string{"2001:db8::2"}},
			wantClass: ClassAssertion, wantMsg: "got AAAA 2001:db8::1"},
		{name: "CNAME", spec: DNSSpec{Name: "www.test", Type: "CNAME", Expect: []string{"target.test"}}, wantOK: true},
		{name: "CNAME, trailing dot", spec: DNSSpec{Name: "www.test", Type: "CNAME", Expect: []string{"TARGET.test."}}, wantOK: true},
		{name: "CNAME missing", spec: DNSSpec{Name: "www.test", Type: "CNAME", Expect: []string{"elsewhere.test"}},
			wantClass: ClassAssertion, wantMsg: "got CNAME target.test."},
		{name: "MX", spec: DNSSpec{Name: "mx.test", Type: "MX", Expect: []string{"10 mx1.test.", "mx2.test"}}, wantOK: true},
		{name: "MX wrong preference", spec: DNSSpec{Name: "mx.test", Type: "MX", Expect: []string{"20 mx1.test"}},
			wantClass: ClassAssertion, wantMsg: "missing 20 mx1.test in answer (got MX 10 mx1.test., MX 20 mx2.test.)"},
		{name: "TXT", spec: DNSSpec{Name: "txt.test", Type: "TXT", Expect: []string{"v=spf1 -all", "hello world"}}, wantOK: true},
		{name: "TXT missing", spec: DNSSpec{Name: "txt.test", Type: "TXT", Expect: []string{"v=spf1 ~all"}},
			wantClass: ClassAssertion, wantMsg: `got TXT "v=spf1 -all", TXT "hello world"`},
		{name: "NS", spec: DNSSpec{Name: "ns.test", Type: "NS", Expect: []string{"ns1.test", "ns2.test."}}, wantOK: true},
		{name: "NS missing", spec: DNSSpec{Name: "ns.test", Type: "NS", Expect: []string{"ns3.test"}},
			wantClass: ClassAssertion, wantMsg: "missing ns3.test"},
		{name: "no records of the type", spec: DNSSpec{Name: "empty.test"},
			wantClass: ClassDNS, wantMsg: "empty.test A: no records"},
		{name: "NXDOMAIN", spec: DNSSpec{Name: "nx.test"}, wantClass: ClassDNS, wantMsg: "nx.test A: NXDOMAIN"},
		{name: "SERVFAIL", spec: DNSSpec{Name: "fail.test", Type: "MX"}, wantClass: ClassDNS, wantMsg: "SERVFAIL"},
		{name: "truncated over udp, retried over tcp", spec: DNSSpec{Name: "tc.test", Expect: []string{"192.0.2.53"}}, wantOK: true},
	}
	p := New(Options{AllowPrivate: true})
	for _, transport := range []string{"udp", "tcp"} {
		for _, tc := range tests {
			t.Run(transport+"/"+tc.name, func(t *testing.T) {
				spec := tc.spec
				spec.Server, spec.Transport = server, transport
				res := runCheckTarget(t, p, Target{Name: "dns", Kind: "dns", Timeout: 5 * time.Second, DNS: &spec})
				require.Equal(t, tc.wantOK, res.Success, "error: %s %s", res.ErrorClass, res.Error)
				require.Equal(t, tc.wantClass, res.ErrorClass, res.Error)
				require.Contains(t, res.Error, tc.wantMsg)
				require.Equal(t, server, res.RemoteAddr)
				require.NotZero(t, res.Phases.DNS)
				if transport == "tcp" {
					require.NotZero(t, res.Phases.Connect)
				}
			})
		}
	}
}

func TestDNSCheckBadServers(t *testing.T) {
	garbage := func([]byte) []byte { return []byte("\x13\x37this is not a DNS message at all") }
	short := func([]byte) []byte { return []byte{0x12, 0x34, 0x81} }
	cut := func(q []byte) []byte {
		b := dnsCheckReply(t, q, nil)
		return b[:len(b)-3]
	}
	otherID := func(q []byte) []byte { return dnsCheckReply(t, q, func(m *dns.Msg) { m.Id ^= 0xffff }) }
	notResponse := func(q []byte) []byte { return q }
	otherQuestion := func(q []byte) []byte {
		return dnsCheckReply(t, q, func(m *dns.Msg) { m.Question[0].Name = "elsewhere.test." })
	}
	silent := func([]byte) []byte { return nil }

	tcpClose := tcpCheckServer(t, func(c net.Conn) { _, _ = c.Read(make([]byte, 512)) })
	tcpGarbage := tcpCheckServer(t, func(c net.Conn) {
		_, _ = c.Read(make([]byte, 512))
		_, _ = c.Write([]byte("\x00\x20not DNS either, but 32 bytes.."))
	})
	tcpSilent := tcpCheckServer(t, tcpCheckHang)

	tests := []struct {
		name      string
		server    string
		transport string
		wantClass ErrorClass
		wantMsg   string
	}{
		{"garbage bytes", dnsCheckRawUDP(t, garbage), "udp", ClassProtocol, "bad reply"},
		{"shorter than a header", dnsCheckRawUDP(t, short), "udp", ClassProtocol, "bad reply"},
		{"cut short", dnsCheckRawUDP(t, cut), "udp", ClassProtocol, "bad reply"},
		{"mismatched id", dnsCheckRawUDP(t, otherID), "udp", ClassProtocol, "does not match query id"},
		{"query echoed back", dnsCheckRawUDP(t, notResponse), "udp", ClassProtocol, "not a response"},
		{"answers another question", dnsCheckRawUDP(t, otherQuestion), "udp", ClassProtocol, "another question"},
		{"never answers, udp", dnsCheckRawUDP(t, silent), "udp", ClassTimeout, ""},
		{"closes, tcp", tcpClose, "tcp", ClassProtocol, "bad reply"},
		{"garbage, tcp", tcpGarbage, "tcp", ClassProtocol, "bad reply"},
		{"never answers, tcp", tcpSilent, "tcp", ClassTimeout, ""},
		{"refused, tcp", closedCheckAddr(t), "tcp", ClassConnect, "refused"},
	}
	p := New(Options{AllowPrivate: true})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := DNSSpec{Name: "a.test", Server: tc.server, Transport: tc.transport}
			res := runCheckTarget(t, p, Target{Name: "dns", Kind: "dns", Timeout: 300 * time.Millisecond, DNS: &spec})
			require.False(t, res.Success)
			require.Equal(t, tc.wantClass, res.ErrorClass, res.Error)
			require.Contains(t, res.Error, tc.wantMsg)
		})
	}
}

// A udp query to a port nothing listens on fails at once on Linux (ICMP
// port unreachable) or times out elsewhere; either way it fails cleanly.
func TestDNSCheckRefusedUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := pc.LocalAddr().String()
	require.NoError(t, pc.Close())
	p := New(Options{AllowPrivate: true})
	spec := DNSSpec{Name: "a.test", Server: addr}
	res := runCheckTarget(t, p, Target{Name: "dns", Kind: "dns", Timeout: 300 * time.Millisecond, DNS: &spec})
	require.False(t, res.Success)
	require.Contains(t, []ErrorClass{ClassConnect, ClassTimeout}, res.ErrorClass, res.Error)
}

func TestDNSCheckBlocked(t *testing.T) {
	server := dnsCheckServer(t, dnsCheckHandler(t))
	p := New(Options{})
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			spec := DNSSpec{Name: "a.test", Server: server, Transport: transport}
			res := runCheckTarget(t, p, Target{Name: "dns", Kind: "dns", Timeout: 2 * time.Second, DNS: &spec})
			require.False(t, res.Success)
			require.Equal(t, ClassBlocked, res.ErrorClass, res.Error)
		})
	}
}

func TestDNSAnswerMatches(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		require.NoError(t, err)
		return r
	}
	tests := []struct {
		rr   string
		want string
		ok   bool
	}{
		{"x. 1 IN A 192.0.2.1", "192.0.2.1", true},
		{"x. 1 IN A 192.0.2.1", " 192.0.2.1 ", true},
		{"x. 1 IN A 192.0.2.1", "::ffff:192.0.2.1", true},
		{"x. 1 IN A 192.0.2.1", "192.0.2.10", false},
		{"x. 1 IN A 192.0.2.1", "not an ip", false},
		{"x. 1 IN AAAA 2001:db8::1", "2001:DB8:0:0::1", true},
		{"x. 1 IN AAAA 2001:db8::1", "192.0.2.1", false},
		{"x. 1 IN CNAME y.example.", "Y.example", true},
		{"x. 1 IN CNAME y.example.", "y.example.com", false},
		{"x. 1 IN NS ns.example.", "ns.example.", true},
		{"x. 1 IN MX 10 mx.example.", "10 mx.example.", true},
		{"x. 1 IN MX 10 mx.example.", "10   mx.example", true},
		{"x. 1 IN MX 10 mx.example.", "mx.example", true},
		{"x. 1 IN MX 10 mx.example.", "5 mx.example", false},
		{"x. 1 IN MX 10 mx.example.", "ten mx.example", false},
		{`x. 1 IN TXT "a b" "c"`, "a bc", true},
		{`x. 1 IN TXT "a b" "c"`, "c", true},
		{`x. 1 IN TXT "a b" "c"`, "a", false},
		{"x. 1 IN SOA ns. host. 1 2 3 4 5", "ns.", false},
	}
	for _, tc := range tests {
		require.Equal(t, tc.ok, dnsAnswerMatches(rr(tc.rr), tc.want), "%s ~ %q", tc.rr, tc.want)
	}
}
