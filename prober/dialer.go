package prober

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// blockedPrefixes are refused by the SSRF guard on top of what netip's
// predicates catch: carrier-grade NAT, "this network", and the cloud
// metadata address on IPv6.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("fd00:ec2::254/128"),
}

// IsBlockedAddr reports whether the SSRF guard refuses ip: loopback,
// private, link-local (which holds 169.254.169.254, the metadata service),
// unspecified, multicast and the special ranges above.
func IsBlockedAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsValid() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Dialer returns a dialer whose every connection is checked by the SSRF
// guard. The check runs in Control, after name resolution and just before
// connect, so a name that resolves (or re-resolves) to a private address is
// refused: DNS rebinding cannot dodge it. Keep-alive is off: each check
// opens its own connection.
func (p *Prober) Dialer(timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout, KeepAlive: -1}
	if !p.allowPrivate {
		d.Control = guardControl
	}
	return d
}

func guardControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrBlocked, address)
	}
	if IsBlockedAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s is a loopback, private, link-local or reserved address (set allow_private_targets to permit)", ErrBlocked, ap.Addr())
	}
	return nil
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
