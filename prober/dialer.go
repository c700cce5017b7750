package prober

import (
	"context"
	"net"
	"net/http/httptrace"
	"time"
)

// Dialer returns a dialer whose every connection is checked by the SSRF
// guard (internal/ssrf) in Control, after name resolution and just before
// connect, so a name that resolves (or re-resolves) to a refused address
// is refused: DNS rebinding cannot dodge it. Keep-alive is off: each check
// opens its own connection. Notifiers dial through it too, so webhooks and
// checks share one guard.
func (p *Prober) Dialer(timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: -1}
	if p.guard != nil {
		d.Control = p.guard.Control
	}
	return d
}

// DialContext dials network/address through the guarded dialer. network
// may be narrowed by ipProtocol ("ip4" or "ip6").
func (p *Prober) DialContext(ctx context.Context, network, address, ipProtocol string) (net.Conn, error) {
	d := p.Dialer(0)
	return d.DialContext(ctx, narrowNetwork(network, ipProtocol), address)
}

// narrowNetwork turns "tcp" into "tcp4" or "tcp6" for an IP preference.
func narrowNetwork(network, ipProtocol string) string {
	switch ipProtocol {
	case "ip4":
		return network + "4"
	case "ip6":
		return network + "6"
	}
	return network
}

// dialTimed is DialContext that also tells how long the name lookup took
// and how long the connect after it, so DNS is its own phase and the
// phases of a tcp or tls check add up to its duration.
func (p *Prober) dialTimed(ctx context.Context, address, ipProtocol string) (conn net.Conn, dns, connect time.Duration, err error) {
	var dnsStart, dnsDone time.Time
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { dnsStart = time.Now() },
		DNSDone:  func(httptrace.DNSDoneInfo) { dnsDone = time.Now() },
	})
	start := time.Now()
	conn, err = p.DialContext(ctx, "tcp", address, ipProtocol)
	total := time.Since(start)
	if !dnsStart.IsZero() && !dnsDone.IsZero() {
		dns = dnsDone.Sub(dnsStart)
	}
	return conn, dns, max(total-dns, 0), err
}
