// Package ssrf is the one SSRF guard of upwatch: it decides which addresses
// an outbound connection made on a user's behalf (a check, an OAuth2 token
// fetch, a webhook) may reach. It refuses every block of the IANA IPv4 and
// IPv6 special-purpose registries, multicast, IPv6 outside global unicast,
// and this host's own interface addresses; IPv6 forms that carry an IPv4
// address (mapped, NAT64, 6to4, Teredo) are judged by that address too.
//
// The guard runs as a net.Dialer Control function, after name resolution
// and just before connect, so DNS rebinding cannot dodge it.
package ssrf

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// ErrBlocked is returned (wrapped) when the guard refuses an address.
var ErrBlocked = errors.New("address not allowed")

type block struct {
	prefix netip.Prefix
	name   string
}

func blocks(pairs ...string) []block {
	out := make([]block, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, block{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

// special4 is the IANA IPv4 Special-Purpose Address Registry, whole
// (globally reachable anycast blocks included: none is a monitoring
// target), plus multicast. The first match names the reason.
var special4 = blocks(
	"0.0.0.0/8", "this network",
	"10.0.0.0/8", "private",
	"100.64.0.0/10", "shared address space",
	"127.0.0.0/8", "loopback",
	"169.254.0.0/16", "link-local, cloud metadata",
	"172.16.0.0/12", "private",
	"192.0.0.0/24", "IETF protocol assignments",
	"192.0.2.0/24", "documentation",
	"192.31.196.0/24", "AS112",
	"192.52.193.0/24", "AMT",
	"192.88.99.0/24", "6to4 relay anycast",
	"192.168.0.0/16", "private",
	"192.175.48.0/24", "AS112 direct delegation",
	"198.18.0.0/15", "benchmarking",
	"198.51.100.0/24", "documentation",
	"203.0.113.0/24", "documentation",
	"224.0.0.0/4", "multicast",
	"255.255.255.255/32", "limited broadcast",
	"240.0.0.0/4", "reserved",
)

// special6 is the IANA IPv6 Special-Purpose Address Registry plus
// multicast and deprecated site-local; anything else outside 2000::/3 is
// refused too (IANA allocates unicast only there). IPv4-mapped and NAT64
// 64:ff9b::/96 are absent: they are judged by the IPv4 address they carry.
var special6 = blocks(
	"::/128", "unspecified",
	"::1/128", "loopback",
	"64:ff9b:1::/48", "local-use IPv4/IPv6 translation",
	"100::/64", "discard-only",
	"100:0:0:1::/64", "dummy prefix",
	"2001::/32", "Teredo",
	"2001::/23", "IETF protocol assignments",
	"2001:db8::/32", "documentation",
	"2002::/16", "6to4",
	"2620:4f:8000::/48", "AS112 direct delegation",
	"3fff::/20", "documentation",
	"5f00::/16", "segment routing SIDs",
	"fc00::/7", "unique local",
	"fe80::/10", "link-local",
	"fec0::/10", "site-local",
	"ff00::/8", "multicast",
)

var (
	globalUnicast = netip.MustParsePrefix("2000::/3")
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour     = netip.MustParsePrefix("2002::/16")
	teredo        = netip.MustParsePrefix("2001::/32")
)

// Embedded returns the IPv4 address an IPv6 address carries and the name
// of the form: IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d), 6to4
// (2002:AABB:CCDD::/48) or Teredo (the client address, the last 32 bits
// inverted).
func Embedded(ip netip.Addr) (netip.Addr, string, bool) {
	if !ip.Is6() {
		return netip.Addr{}, "", false
	}
	b := ip.As16()
	switch {
	case ip.Is4In6():
		return netip.AddrFrom4([4]byte(b[12:16])), "IPv4-mapped", true
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), "NAT64", true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), "6to4", true
	case teredo.Contains(ip):
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), "Teredo", true
	}
	return netip.Addr{}, "", false
}

// Special reports whether ip is refused whatever host the guard runs on,
// and why. An embedded IPv4 address is judged first; a mapped or NAT64
// address of a public IPv4 address is allowed, 6to4 and Teredo never are.
func Special(ip netip.Addr) (reason string, refused bool) {
	if !ip.IsValid() {
		return "invalid address", true
	}
	ip = ip.WithZone("")
	if v4, form, ok := Embedded(ip); ok {
		if why, bad := special(v4); bad {
			return fmt.Sprintf("%s is %s for %s, %s", ip, form, v4, why), true
		}
		if form == "IPv4-mapped" || form == "NAT64" {
			return "", false
		}
	}
	if why, bad := special(ip); bad {
		return fmt.Sprintf("%s is %s", ip, why), true
	}
	return "", false
}

func special(ip netip.Addr) (string, bool) {
	list := special6
	if ip.Is4() {
		list = special4
	}
	for _, b := range list {
		if b.prefix.Contains(ip) {
			return fmt.Sprintf("in %s (%s)", b.prefix, b.name), true
		}
	}
	if ip.Is6() && !globalUnicast.Contains(ip) {
		return "outside global unicast 2000::/3", true
	}
	return "", false
}

// ownTTL is how long the host's interface addresses are reused: reading
// them costs a netlink round trip (≈45 µs), too much for every dial of a
// busy prober, and an address added less than a second ago is a risk worth
// that saving.
const ownTTL = time.Second

// Guard refuses special-purpose addresses and this host's own addresses
// (a service bound to 0.0.0.0 answers on them). Safe for concurrent use.
type Guard struct {
	interfaceAddrs func() ([]net.Addr, error)
	now            func() time.Time

	mu    sync.Mutex
	own   map[netip.Addr]bool
	fresh time.Time // own is reused until then
}

// New returns a Guard reading the host's interfaces with net.InterfaceAddrs.
func New() *Guard { return newGuard(net.InterfaceAddrs, time.Now) }

func newGuard(interfaceAddrs func() ([]net.Addr, error), now func() time.Time) *Guard {
	return &Guard{interfaceAddrs: interfaceAddrs, now: now}
}

// Check returns nil when ip may be dialled, else an error wrapping
// ErrBlocked that says why.
func (g *Guard) Check(ip netip.Addr) error {
	if why, refused := Special(ip); refused {
		return fmt.Errorf("%w: %s", ErrBlocked, why)
	}
	ip = ip.WithZone("")
	if g.isOwn(ip) {
		return fmt.Errorf("%w: %s is an address of this host", ErrBlocked, ip)
	}
	if v4, form, ok := Embedded(ip); ok && g.isOwn(v4) {
		return fmt.Errorf("%w: %s is %s for %s, an address of this host", ErrBlocked, ip, form, v4)
	}
	return nil
}

// Control is a net.Dialer Control function: it refuses the connection when
// Check refuses the resolved address it is about to connect to.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrBlocked, address)
	}
	if err := g.Check(ap.Addr()); err != nil {
		return fmt.Errorf("%w (set allow_private_targets to permit)", err)
	}
	return nil
}

// isOwn reports whether ip is one of the host's interface addresses,
// refreshing them when older than ownTTL. When they cannot be read the
// last ones read stand.
func (g *Guard) isOwn(ip netip.Addr) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := g.now(); g.own == nil || !now.Before(g.fresh) {
		g.fresh = now.Add(ownTTL)
		if addrs, err := g.interfaceAddrs(); err == nil {
			own := make(map[netip.Addr]bool, len(addrs))
			for _, a := range addrs {
				if ip, ok := addrOf(a); ok {
					own[ip] = true
				}
			}
			g.own = own
		}
	}
	return g.own[ip.Unmap()]
}

// addrOf is the address of an interface address (*net.IPNet on most
// systems, *net.IPAddr on some).
func addrOf(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPNet:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	default:
		return netip.Addr{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr.Unmap(), ok
}
