package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// dnsResolvConfPath is where the system resolver is configured.
const dnsResolvConfPath = "/etc/resolv.conf"

// dnsUDPSize is the EDNS0 buffer size the dns check advertises (the DNS
// flag day 2020 value) and dnsReadSize the buffer it reads into.
const (
	dnsUDPSize  = 1232
	dnsReadSize = 4096
)

// probeDNS queries t.DNS.Name of type t.DNS.Type at t.DNS.Server (or the
// system resolver) and checks the answer: the rcode must be NOERROR, the
// answer must not be empty and every t.DNS.Expect must be among it.
func probeDNS(ctx context.Context, p *Prober, t *Target) Result {
	var r Result
	s := t.DNS
	if s == nil {
		return r.Fail(ClassInternal, "dns check without a dns block")
	}
	qtype, ok := dns.StringToType[s.Type]
	if !ok {
		return r.Fail(ClassInternal, fmt.Sprintf("unsupported record type %q", s.Type))
	}
	name := dns.Fqdn(s.Name)
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(dnsUDPSize, false)

	var resp *dns.Msg
	var err error
	switch {
	case s.Server != "":
		// A server named in the target goes through the SSRF guard.
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			return p.DialContext(ctx, network, addr, "")
		}
		resp, err = dnsQuery(ctx, dial, s.Transport, s.Server, q, &r)
	default:
		// The system resolver is the operator's, not the target's: no guard.
		cfg, cerr := dns.ClientConfigFromFile(dnsResolvConfPath)
		if cerr != nil || len(cfg.Servers) == 0 {
			return dnsViaResolver(ctx, name, s, r)
		}
		var d net.Dialer
		for _, srv := range cfg.Servers {
			resp, err = dnsQuery(ctx, d.DialContext, s.Transport, net.JoinHostPort(srv, cfg.Port), q, &r)
			if err == nil || ctx.Err() != nil || isDNSTimeout(err) {
				break
			}
		}
	}
	if err != nil {
		class, msg := Classify(err)
		if errors.Is(err, syscall.ECONNREFUSED) {
			class = ClassConnect // a udp "read: connection refused" included
		}
		return r.Fail(class, msg)
	}
	if resp.Rcode != dns.RcodeSuccess {
		r = r.Fail(ClassDNS, fmt.Sprintf("%s %s: %s", strings.TrimSuffix(name, "."), s.Type, dnsRcodeName(resp.Rcode)))
	} else {
		r = judgeDNSAnswer(r, name, s, resp.Answer)
	}
	if t.wantsEvidence(r.Success) {
		// The whole reply as dig shows it: header, question and answer.
		text := resp.String()
		r.Evidence = t.captured(r.Success, nil, []byte(text), int64(len(text)))
	}
	return r
}

// judgeDNSAnswer passes r when answer is not empty and holds every expected
// answer of s.
func judgeDNSAnswer(r Result, name string, s *DNSSpec, answer []dns.RR) Result {
	if len(answer) == 0 {
		return r.Fail(ClassDNS, fmt.Sprintf("%s %s: no records", strings.TrimSuffix(name, "."), s.Type))
	}
	var missing []string
	for _, want := range s.Expect {
		if !slices.ContainsFunc(answer, func(rr dns.RR) bool { return dnsAnswerMatches(rr, want) }) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		return r.Fail(ClassAssertion, fmt.Sprintf("missing %s in answer (got %s)",
			strings.Join(missing, ", "), summarizeAnswer(answer)))
	}
	r.Success = true
	return r
}

// dnsDialFunc opens a connection to a DNS server.
type dnsDialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// dnsQuery sends q to server over transport and returns the reply. It sets
// the DNS (and, over tcp, Connect) phase and RemoteAddr of r. A truncated
// udp reply is asked again over tcp.
func dnsQuery(ctx context.Context, dial dnsDialFunc, transport, server string, q *dns.Msg, r *Result) (*dns.Msg, error) {
	resp, err := dnsExchange(ctx, dial, transport, server, q, r)
	if err == nil && resp.Truncated && transport == "udp" {
		return dnsExchange(ctx, dial, "tcp", server, q, r)
	}
	return resp, err
}

// dnsExchange sends q to server over one new connection and reads the reply.
func dnsExchange(ctx context.Context, dial dnsDialFunc, network, server string, q *dns.Msg, r *Result) (*dns.Msg, error) {
	start := time.Now()
	conn, err := dial(ctx, network, server)
	if network == "tcp" {
		r.Phases.Connect += time.Since(start)
	}
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r.RemoteAddr = conn.RemoteAddr().String()
	stop := probeConnBindCtx(ctx, conn)
	defer stop()

	co := &dns.Conn{Conn: conn, UDPSize: dnsReadSize}
	start = time.Now()
	defer func() { r.Phases.DNS += time.Since(start) }()
	if err := co.WriteMsg(q); err != nil {
		return nil, fmt.Errorf("sending query: %w", err)
	}
	resp, err := co.ReadMsg()
	if err != nil {
		if isDNSTimeout(err) || errors.Is(err, context.Canceled) {
			return nil, err
		}
		var ne net.Error
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("reading reply: %w", err)
		}
		// Anything else is a reply we could not make sense of: say so,
		// but not as a network error.
		return nil, fmt.Errorf("bad reply from %s: %s", server, err.Error())
	}
	switch {
	case resp.Id != q.Id:
		return nil, fmt.Errorf("bad reply from %s: id %d does not match query id %d", server, resp.Id, q.Id)
	case !resp.Response:
		return nil, fmt.Errorf("bad reply from %s: not a response", server)
	case len(resp.Question) > 0 && !dnsSameQuestion(resp.Question[0], q.Question[0]):
		return nil, fmt.Errorf("bad reply from %s: answers another question (%s)", server, strings.TrimSpace(resp.Question[0].String()))
	}
	return resp, nil
}

func dnsSameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

func isDNSTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func dnsRcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(rc)
}

// dnsViaResolver answers the dns check through the Go resolver, for hosts
// whose resolv.conf cannot be read. Its results are turned into records so
// the answer is judged as a server's would be.
func dnsViaResolver(ctx context.Context, name string, s *DNSSpec, r Result) Result {
	var res net.Resolver
	var answer []dns.RR
	hdr := func(t uint16) dns.RR_Header { return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET} }
	start := time.Now()
	var err error
	switch s.Type {
	case "A", "AAAA":
		network, t := "ip4", dns.TypeA
		if s.Type == "AAAA" {
			network, t = "ip6", dns.TypeAAAA
		}
		var ips []netip.Addr
		ips, err = res.LookupNetIP(ctx, network, name)
		for _, ip := range ips {
			if t == dns.TypeA {
				answer = append(answer, &dns.A{Hdr: hdr(t), A: ip.Unmap().AsSlice()})
			} else {
				answer = append(answer, &dns.AAAA{Hdr: hdr(t), AAAA: ip.AsSlice()})
			}
		}
	case "CNAME":
		var cname string
		cname, err = res.LookupCNAME(ctx, name)
		if err == nil && !strings.EqualFold(dns.Fqdn(cname), name) {
			answer = append(answer, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: dns.Fqdn(cname)})
		}
	case "MX":
		var mxs []*net.MX
		mxs, err = res.LookupMX(ctx, name)
		for _, mx := range mxs {
			answer = append(answer, &dns.MX{Hdr: hdr(dns.TypeMX), Preference: mx.Pref, Mx: dns.Fqdn(mx.Host)})
		}
	case "TXT":
		var txts []string
		txts, err = res.LookupTXT(ctx, name)
		for _, txt := range txts {
			answer = append(answer, &dns.TXT{Hdr: hdr(dns.TypeTXT), Txt: []string{txt}})
		}
	case "NS":
		var nss []*net.NS
		nss, err = res.LookupNS(ctx, name)
		for _, ns := range nss {
			answer = append(answer, &dns.NS{Hdr: hdr(dns.TypeNS), Ns: dns.Fqdn(ns.Host)})
		}
	default:
		return r.Fail(ClassInternal, fmt.Sprintf("unsupported record type %q", s.Type))
	}
	r.Phases.DNS = time.Since(start)
	if err != nil {
		return r.Fail(Classify(err))
	}
	return judgeDNSAnswer(r, name, s, answer)
}

// dnsAnswerMatches reports whether rr is the answer want: an address for A
// and AAAA, a name (with or without the final dot, any case) for CNAME and
// NS, "pref host" or just the host for MX, the text for TXT (whole, or one
// of its strings).
func dnsAnswerMatches(rr dns.RR, want string) bool {
	want = strings.TrimSpace(want)
	sameName := func(a, b string) bool { return strings.EqualFold(dns.Fqdn(a), dns.Fqdn(b)) }
	switch rr := rr.(type) {
	case *dns.A:
		ip, err := netip.ParseAddr(want)
		got, ok := netip.AddrFromSlice(rr.A)
		return err == nil && ok && ip.Unmap() == got.Unmap()
	case *dns.AAAA:
		ip, err := netip.ParseAddr(want)
		got, ok := netip.AddrFromSlice(rr.AAAA)
		return err == nil && ok && ip == got
	case *dns.CNAME:
		return sameName(rr.Target, want)
	case *dns.NS:
		return sameName(rr.Ns, want)
	case *dns.MX:
		if pref, host, ok := strings.Cut(want, " "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(pref), 10, 16)
			return err == nil && uint16(n) == rr.Preference && sameName(rr.Mx, strings.TrimSpace(host))
		}
		return sameName(rr.Mx, want)
	case *dns.TXT:
		return strings.Join(rr.Txt, "") == want || slices.Contains(rr.Txt, want)
	}
	return false
}

// summarizeAnswer renders the first few records of answer as "TYPE value".
func summarizeAnswer(answer []dns.RR) string {
	const show = 5
	parts := make([]string, 0, min(len(answer), show)+1)
	for i, rr := range answer {
		if i == show {
			parts = append(parts, fmt.Sprintf("and %d more", len(answer)-show))
			break
		}
		parts = append(parts, dns.TypeToString[rr.Header().Rrtype]+" "+truncate(dnsValue(rr), 64))
	}
	return strings.Join(parts, ", ")
}

// dnsValue is the data of rr as text: the record without its header.
func dnsValue(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.A:
		return rr.A.String()
	case *dns.AAAA:
		return rr.AAAA.String()
	case *dns.CNAME:
		return rr.Target
	case *dns.NS:
		return rr.Ns
	case *dns.MX:
		return fmt.Sprintf("%d %s", rr.Preference, rr.Mx)
	case *dns.TXT:
		return strconv.Quote(strings.Join(rr.Txt, ""))
	}
	return strings.TrimSpace(strings.TrimPrefix(rr.String(), rr.Header().String()))
}
