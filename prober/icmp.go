package prober

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/upwatch/upwatch/internal/invalid"
)

// Bounds of an icmp check: a few packets, not a flood.
const (
	DefaultICMPCount     = 3
	MaxICMPCount         = 20
	DefaultICMPInterval  = time.Second
	MinICMPInterval      = 10 * time.Millisecond
	MaxICMPInterval      = 10 * time.Second
	DefaultICMPSize      = 56
	MaxICMPSize          = 1452
	minICMPSize          = 16 // room for the check's cookie
	defaultICMPMaxLoss   = 99 // fail only when every packet is lost
	icmpProtocolIPv4     = 1
	icmpProtocolIPv6     = 58
	icmpReadBufferLength = 1500
)

// ICMPSpec configures an icmp (ping) check: Count echo requests to Host,
// Interval apart, each answered or not by the check's timeout.
type ICMPSpec struct {
	Host string `yaml:"host" json:"host"` // a name or an IP address
	// Count is how many echo requests are sent (default 3, at most 20).
	Count int `yaml:"count,omitempty" json:"count,omitempty"`
	// Interval is the time between two requests (default 1s, 10ms-10s).
	Interval time.Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Size is the echo payload in bytes (default 56, 16-1452).
	Size int `yaml:"size,omitempty" json:"size,omitempty"`
	// MaxLossPercent fails the check when more packets than this share are
	// lost (default 99: only when none comes back).
	MaxLossPercent *int `yaml:"max_loss_percent,omitempty" json:"max_loss_percent,omitempty"`
	// MaxRTT fails the check when the average round trip is longer.
	MaxRTT     time.Duration `yaml:"max_rtt,omitempty" json:"max_rtt,omitempty"`
	IPProtocol string        `yaml:"ip_protocol,omitempty" json:"ip_protocol,omitempty"`
}

func (s *ICMPSpec) normalize() {
	if s == nil {
		return
	}
	if s.Count == 0 {
		s.Count = DefaultICMPCount
	}
	if s.Interval == 0 {
		s.Interval = DefaultICMPInterval
	}
	if s.Size == 0 {
		s.Size = DefaultICMPSize
	}
}

func (s *ICMPSpec) validate(p string, timeout time.Duration) []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: p + "." + path, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case s.Host == "":
		add("host", "is required")
	case len(s.Host) > 253:
		add("host", "must be at most 253 bytes")
	default:
		errs = append(errs, CheckText(p+".host", s.Host)...)
	}
	if s.Count < 1 || s.Count > MaxICMPCount {
		add("count", "must be between 1 and %d (got %d)", MaxICMPCount, s.Count)
	}
	if s.Interval < MinICMPInterval || s.Interval > MaxICMPInterval {
		add("interval", "must be between %s and %s (got %s)", MinICMPInterval, MaxICMPInterval, s.Interval)
	} else if s.Count >= 1 && s.Count <= MaxICMPCount && timeout > 0 && time.Duration(s.Count-1)*s.Interval >= timeout {
		add("interval", "count × interval (%s) leaves no time for the last reply within the timeout (%s)", time.Duration(s.Count-1)*s.Interval, timeout)
	}
	if s.Size < minICMPSize || s.Size > MaxICMPSize {
		add("size", "must be between %d and %d bytes (got %d)", minICMPSize, MaxICMPSize, s.Size)
	}
	if m := s.MaxLossPercent; m != nil && (*m < 0 || *m > 100) {
		add("max_loss_percent", "must be between 0 and 100 (got %d)", *m)
	}
	if s.MaxRTT < 0 {
		add("max_rtt", "must not be negative")
	}
	if err := validIPProtocol(s.IPProtocol); err != "" {
		add("ip_protocol", "%s", err)
	}
	return errs
}

// probeICMP sends t.ICMP.Count echo requests and waits for their replies
// until the check's deadline. It uses an unprivileged datagram ICMP socket
// where the kernel allows it (net.ipv4.ping_group_range), else a raw one
// (root or CAP_NET_RAW). Phases: dns is the name lookup, connect the
// average round trip; Result.ICMP has the counts and min/avg/max.
func probeICMP(ctx context.Context, p *Prober, t *Target) Result {
	var r Result
	s := t.ICMP
	if s == nil {
		return r.Fail(ClassInternal, "icmp check without an icmp block")
	}
	start := time.Now()
	ip, err := p.icmpResolve(ctx, s.Host, s.IPProtocol)
	r.Phases.DNS = time.Since(start)
	if err != nil {
		return r.Fail(Classify(err))
	}
	r.RemoteAddr = ip.String()
	conn, raw, err := icmpListen(ip.Is4())
	if err != nil {
		return r.Fail(ClassInternal, err.Error())
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	stats, err := icmpExchange(ctx, conn, raw, ip, s)
	r.ICMP = &stats
	r.Phases.Connect = stats.RTTAvg
	switch {
	case err != nil && stats.Sent == 0:
		return r.Fail(Classify(err))
	case stats.Received == 0:
		return r.Fail(ClassLoss, fmt.Sprintf("no reply to %d echo requests", stats.Sent))
	}
	maxLoss := defaultICMPMaxLoss
	if s.MaxLossPercent != nil {
		maxLoss = *s.MaxLossPercent
	}
	if stats.LossPercent > float64(maxLoss) {
		return r.Fail(ClassLoss, fmt.Sprintf("%.0f%% of %d packets lost, more than max_loss_percent %d", stats.LossPercent, stats.Sent, maxLoss))
	}
	if s.MaxRTT > 0 && stats.RTTAvg > s.MaxRTT {
		return r.Fail(ClassAssertion, fmt.Sprintf("average round trip %s exceeds max_rtt %s", stats.RTTAvg.Round(time.Microsecond), s.MaxRTT))
	}
	r.Success = true
	return r
}

// icmpResolve returns the first address of host in the wanted family that
// the SSRF guard allows, or why there is none.
func (p *Prober) icmpResolve(ctx context.Context, host, ipProtocol string) (netip.Addr, error) {
	network := narrowNetwork("ip", ipProtocol)
	ips, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, err
	}
	var blocked error
	for _, ip := range ips {
		ip = ip.Unmap()
		if p.guard != nil {
			if err := p.guard.Check(ip); err != nil {
				blocked = err
				continue
			}
		}
		return ip, nil
	}
	if blocked != nil {
		return netip.Addr{}, blocked
	}
	return netip.Addr{}, &net.DNSError{Err: "no address", Name: host, IsNotFound: true}
}

// icmpListen opens an unprivileged datagram ICMP socket, or a raw one when
// the kernel refuses that; raw says which.
func icmpListen(v4 bool) (conn *icmp.PacketConn, raw bool, err error) {
	dgram, rawNet, anyAddr := "udp6", "ip6:ipv6-icmp", "::"
	if v4 {
		dgram, rawNet, anyAddr = "udp4", "ip4:icmp", "0.0.0.0"
	}
	conn, err = icmp.ListenPacket(dgram, anyAddr)
	if err == nil {
		return conn, false, nil
	}
	conn, rawErr := icmp.ListenPacket(rawNet, anyAddr)
	if rawErr == nil {
		return conn, true, nil
	}
	if errors.Is(rawErr, syscall.EPERM) || errors.Is(rawErr, syscall.EACCES) {
		return nil, false, errors.New("icmp: no socket allowed: the process is outside net.ipv4.ping_group_range and has no CAP_NET_RAW")
	}
	return nil, false, fmt.Errorf("icmp socket: %v; raw: %v", err, rawErr)
}

// icmpExchange sends the echo requests and collects the replies until all
// came back or ctx ends. Replies are matched by sequence number and a
// random cookie in the payload (and, on a raw socket that sees every
// reply of the host, by identifier).
func icmpExchange(ctx context.Context, conn *icmp.PacketConn, raw bool, ip netip.Addr, s *ICMPSpec) (ICMPStats, error) {
	var st ICMPStats
	cookie := make([]byte, 8)
	if _, err := rand.Read(cookie); err != nil {
		return st, err
	}
	id := int(binary.BigEndian.Uint16(cookie))
	var dst net.Addr = &net.UDPAddr{IP: ip.AsSlice()}
	if raw {
		dst = &net.IPAddr{IP: ip.AsSlice()}
	}
	reqType, replyType, proto := icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply), icmpProtocolIPv4
	if ip.Is6() {
		reqType, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, icmpProtocolIPv6
	}

	var mu sync.Mutex
	sent := make([]time.Time, s.Count)
	rtts := make([]time.Duration, 0, s.Count)
	allIn := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, icmpReadBufferLength)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return // deadline, or closed
			}
			at := time.Now()
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil || m.Type != replyType {
				continue
			}
			echo, ok := m.Body.(*icmp.Echo)
			if !ok || (raw && echo.ID != id) || len(echo.Data) < len(cookie) || !bytes.Equal(echo.Data[:len(cookie)], cookie) {
				continue
			}
			mu.Lock()
			if echo.Seq >= 0 && echo.Seq < len(sent) && !sent[echo.Seq].IsZero() {
				rtts = append(rtts, at.Sub(sent[echo.Seq]))
				sent[echo.Seq] = time.Time{} // a duplicate reply counts once
				if len(rtts) == s.Count {
					close(allIn)
				}
			}
			mu.Unlock()
		}
	}()

	payload := make([]byte, s.Size)
	copy(payload, cookie)
	var sendErr error
	tick := time.NewTicker(s.Interval)
	defer tick.Stop()
send:
	for seq := range s.Count {
		if seq > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				break send
			}
		}
		msg, err := (&icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}).Marshal(nil)
		if err != nil {
			sendErr = err
			break
		}
		mu.Lock()
		sent[seq] = time.Now()
		mu.Unlock()
		if _, err := conn.WriteTo(msg, dst); err != nil {
			mu.Lock()
			sent[seq] = time.Time{}
			mu.Unlock()
			sendErr = err
			if st.Sent == 0 {
				break
			}
			continue
		}
		st.Sent++
	}
	if st.Sent > 0 {
		select {
		case <-allIn:
		case <-ctx.Done():
		}
	}
	_ = conn.SetReadDeadline(time.Now()) // ends the reader
	<-readDone

	mu.Lock()
	defer mu.Unlock()
	st.Received = len(rtts)
	if st.Sent > 0 {
		st.LossPercent = float64(st.Sent-st.Received) * 100 / float64(st.Sent)
	}
	var sum time.Duration
	for i, d := range rtts {
		if i == 0 || d < st.RTTMin {
			st.RTTMin = d
		}
		st.RTTMax = max(st.RTTMax, d)
		sum += d
	}
	if len(rtts) > 0 {
		st.RTTAvg = sum / time.Duration(len(rtts))
	}
	return st, sendErr
}
