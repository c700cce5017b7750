package ssrf

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSpecial covers every registry block (an address inside, and the
// block's name in the reason), the embedded-IPv4 forms, and public
// addresses that must stay reachable.
func TestSpecial(t *testing.T) {
	refused := map[string]string{ // address → part of the reason
		// IPv4 special-purpose registry and multicast.
		"0.0.0.0":         "this network",
		"0.1.2.3":         "this network",
		"10.1.2.3":        "private",
		"100.64.0.1":      "shared address space",
		"100.127.255.254": "shared address space",
		"127.0.0.1":       "loopback",
		"127.8.9.10":      "loopback",
		"169.254.169.254": "link-local",
		"172.16.0.1":      "private",
		"172.31.255.255":  "private",
		"192.0.0.8":       "IETF protocol assignments",
		"192.0.0.170":     "IETF protocol assignments",
		"192.0.2.1":       "documentation",
		"192.31.196.1":    "AS112",
		"192.52.193.1":    "AMT",
		"192.88.99.1":     "6to4 relay anycast",
		"192.168.1.1":     "private",
		"192.175.48.1":    "AS112 direct delegation",
		"198.18.0.1":      "benchmarking",
		"198.19.255.255":  "benchmarking",
		"198.51.100.7":    "documentation",
		"203.0.113.9":     "documentation",
		"224.0.0.1":       "multicast",
		"239.255.255.250": "multicast",
		"240.0.0.1":       "reserved",
		"255.255.255.254": "reserved",
		"255.255.255.255": "limited broadcast",
		// IPv6 special-purpose registry, multicast and the rest outside 2000::/3.
		"::":                   "unspecified",
		"::1":                  "loopback",
		"64:ff9b:1::a9fe:a9fe": "local-use IPv4/IPv6 translation",
		"100::1":               "discard-only",
		"100:0:0:1::1":         "dummy prefix",
		"2001:1::1":            "IETF protocol assignments",
		"2001:2::1":            "IETF protocol assignments",
		"2001:3::1":            "IETF protocol assignments",
		"2001:4:112::1":        "IETF protocol assignments",
		"2001:20::1":           "IETF protocol assignments",
		"2001:1ff::1":          "IETF protocol assignments",
		"2001:db8::1":          "documentation",
		"2620:4f:8000::1":      "AS112 direct delegation",
		"3fff::1":              "documentation",
		"3fff:fff::1":          "documentation",
		"5f00::1":              "segment routing SIDs",
		"fc00::1":              "unique local",
		"fd00:ec2::254":        "unique local",
		"fe80::1":              "link-local",
		"fe80::1%eth0":         "link-local",
		"fec0::1":              "site-local",
		"ff02::1":              "multicast",
		"::a9fe:a9fe":          "outside global unicast",
		"1000::1":              "outside global unicast",
		"4000::1":              "outside global unicast",
		// Embedded IPv4, judged by the address it carries.
		"::ffff:127.0.0.1":       "IPv4-mapped for 127.0.0.1",
		"::ffff:169.254.169.254": "IPv4-mapped for 169.254.169.254",
		"64:ff9b::a9fe:a9fe":     "NAT64 for 169.254.169.254, in 169.254.0.0/16",
		"64:ff9b::7f00:1":        "NAT64 for 127.0.0.1",
		"64:ff9b::c000:201":      "NAT64 for 192.0.2.1",
		"64:ff9b::a00:1":         "NAT64 for 10.0.0.1",
		"2002:a9fe:a9fe::1":      "6to4 for 169.254.169.254",
		"2002:7f00:1::1":         "6to4 for 127.0.0.1",
		"2002:808:808::1":        "in 2002::/16 (6to4)", // 6to4 is refused whatever it carries
		// Teredo: server 65.54.227.120, client 127.0.0.1 (inverted 80ff:fffe).
		"2001:0:4136:e378:8000:63bf:80ff:fffe": "Teredo for 127.0.0.1",
		"2001:0:4136:e378:8000:63bf:f7f7:f7f7": "in 2001::/32 (Teredo)", // client 8.8.8.8
	}
	for addr, want := range refused {
		why, bad := Special(netip.MustParseAddr(addr))
		require.True(t, bad, addr)
		require.Contains(t, why, want, addr)
	}
	for _, addr := range []string{
		"8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.1", "172.32.0.1",
		"192.0.1.255", "198.17.255.255", "223.255.255.255",
		"2606:4700::1111", "2a00:1450:4001:80b::200e", "2001:200::1", "2001:4860:4860::8888",
		"::ffff:8.8.8.8",   // mapped public IPv4
		"64:ff9b::808:808", // NAT64 of 8.8.8.8
		"64:ff9b::5db8:d70e",
	} {
		why, bad := Special(netip.MustParseAddr(addr))
		require.False(t, bad, "%s: %s", addr, why)
	}
	_, bad := Special(netip.Addr{})
	require.True(t, bad, "the zero Addr")
}

func TestEmbedded(t *testing.T) {
	for addr, want := range map[string]string{
		"::ffff:1.2.3.4":                       "1.2.3.4",
		"64:ff9b::102:304":                     "1.2.3.4",
		"2002:102:304:1::5":                    "1.2.3.4",
		"2001:0:4136:e378:8000:63bf:fefd:fcfb": "1.2.3.4",
	} {
		v4, _, ok := Embedded(netip.MustParseAddr(addr))
		require.True(t, ok, addr)
		require.Equal(t, want, v4.String(), addr)
	}
	for _, addr := range []string{"1.2.3.4", "2606:4700::1111", "64:ff9b:1::102:304"} {
		_, _, ok := Embedded(netip.MustParseAddr(addr))
		require.False(t, ok, addr)
	}
}

func ipNets(addrs ...string) []net.Addr {
	var out []net.Addr
	for _, a := range addrs {
		ip, n, err := net.ParseCIDR(a)
		if err != nil {
			panic(err)
		}
		n.IP = ip
		out = append(out, n)
	}
	return out
}

// The host's own addresses are refused even when public, directly and
// inside NAT64 or IPv4-mapped forms, and re-read once ownTTL has passed.
func TestGuardRefusesOwnAddresses(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	addrs := ipNets("127.0.0.1/8", "93.184.215.14/24", "2a00:1450:4001:80b::200e/64")
	var readErr error
	reads := 0
	g := newGuard(func() ([]net.Addr, error) {
		reads++
		return addrs, readErr
	}, func() time.Time { return now })

	for _, a := range []string{"93.184.215.14", "::ffff:93.184.215.14", "64:ff9b::5db8:d70e", "2a00:1450:4001:80b::200e"} {
		err := g.Check(netip.MustParseAddr(a))
		require.ErrorIs(t, err, ErrBlocked, a)
		require.ErrorContains(t, err, "address of this host", a)
	}
	require.NoError(t, g.Check(netip.MustParseAddr("93.184.215.15")))
	require.NoError(t, g.Check(netip.MustParseAddr("2606:4700::1111")))
	require.Equal(t, 1, reads, "cached within ownTTL")

	// A new address shows up once the cache is stale.
	addrs = ipNets("93.184.215.15/24")
	now = now.Add(ownTTL)
	require.ErrorIs(t, g.Check(netip.MustParseAddr("93.184.215.15")), ErrBlocked)
	require.NoError(t, g.Check(netip.MustParseAddr("93.184.215.14")))

	// A failed read keeps the last addresses.
	addrs, readErr = nil, errors.New("netlink: no")
	now = now.Add(ownTTL)
	require.ErrorIs(t, g.Check(netip.MustParseAddr("93.184.215.15")), ErrBlocked)
}

func TestGuardControl(t *testing.T) {
	g := newGuard(func() ([]net.Addr, error) { return nil, nil }, time.Now)
	for _, addr := range []string{"127.0.0.1:80", "[64:ff9b::a9fe:a9fe]:80", "[fe80::1%lo]:443", "garbage"} {
		err := g.Control("tcp", addr, nil)
		require.ErrorIs(t, err, ErrBlocked, addr)
	}
	require.ErrorContains(t, g.Control("tcp4", "169.254.169.254:80", nil), "allow_private_targets")
	require.NoError(t, g.Control("tcp", "8.8.8.8:53", nil))
	require.NoError(t, g.Control("tcp6", "[2606:4700::1111]:443", nil))
}

// The real host: every interface address is refused.
func TestGuardHostInterfaces(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	g := New()
	for _, a := range addrs {
		ip, ok := addrOf(a)
		require.True(t, ok, a.String())
		require.ErrorIs(t, g.Check(ip), ErrBlocked, ip.String())
	}
}
