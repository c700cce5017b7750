package prober

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// icmpUsable skips the test when this process may open neither an
// unprivileged ICMP socket (net.ipv4.ping_group_range) nor a raw one.
func icmpUsable(t *testing.T) {
	t.Helper()
	c, _, err := icmpListen(true)
	if err != nil {
		t.Skipf("no ICMP socket here (%v): add the test user's group to net.ipv4.ping_group_range or run as root", err)
	}
	c.Close()
}

func TestICMPCheckLoopback(t *testing.T) {
	icmpUsable(t)
	p := New(Options{AllowPrivate: true})
	res := runCheckTarget(t, p, Target{Name: "ping", Kind: "icmp", Timeout: 5 * time.Second,
		ICMP: &ICMPSpec{Host: "127.0.0.1", Count: 3, Interval: 20 * time.Millisecond}})
	require.True(t, res.Success, "%s: %s", res.ErrorClass, res.Error)
	require.NotNil(t, res.ICMP)
	require.Equal(t, 3, res.ICMP.Sent)
	require.Equal(t, 3, res.ICMP.Received)
	require.Zero(t, res.ICMP.LossPercent)
	require.Positive(t, res.ICMP.RTTMin)
	require.LessOrEqual(t, res.ICMP.RTTMin, res.ICMP.RTTAvg)
	require.LessOrEqual(t, res.ICMP.RTTAvg, res.ICMP.RTTMax)
	require.Equal(t, res.ICMP.RTTAvg, res.Phases.Connect)
	require.Equal(t, "127.0.0.1", res.RemoteAddr)
}

// A reply slower than max_rtt fails the check as an assertion; loopback
// answers in well under a second, so 1ns always trips it.
func TestICMPCheckMaxRTT(t *testing.T) {
	icmpUsable(t)
	p := New(Options{AllowPrivate: true})
	res := runCheckTarget(t, p, Target{Name: "ping", Kind: "icmp", Timeout: 5 * time.Second,
		ICMP: &ICMPSpec{Host: "127.0.0.1", Count: 1, MaxRTT: time.Nanosecond}})
	require.False(t, res.Success)
	require.Equal(t, ClassAssertion, res.ErrorClass, res.Error)
	require.Contains(t, res.Error, "max_rtt")
}

func TestICMPCheckBlocked(t *testing.T) {
	res := runCheckTarget(t, New(Options{}), Target{Name: "ping", Kind: "icmp", Timeout: time.Second,
		ICMP: &ICMPSpec{Host: "127.0.0.1", Count: 1}})
	require.False(t, res.Success)
	require.Equal(t, ClassBlocked, res.ErrorClass, res.Error)
}

func TestICMPValidate(t *testing.T) {
	bad := -1
	tgt := Target{Name: "p", Kind: "icmp", Timeout: 2 * time.Second, ICMP: &ICMPSpec{Count: 50, Size: 9000, MaxLossPercent: &bad, IPProtocol: "ip5"}}
	tgt.Normalize()
	paths := map[string]bool{}
	for _, e := range tgt.Validate("targets[0]") {
		paths[e.Path] = true
	}
	for _, p := range []string{"host", "count", "size", "max_loss_percent", "ip_protocol"} {
		require.True(t, paths["targets[0].icmp."+p], p)
	}
	// Three packets a second apart need more than two seconds.
	tgt = Target{Name: "p", Kind: "icmp", Timeout: 2 * time.Second, ICMP: &ICMPSpec{Host: "h", Count: 3, Interval: time.Second}}
	tgt.Normalize()
	errs := tgt.Validate("t")
	require.Len(t, errs, 1)
	require.Equal(t, "t.icmp.interval", errs[0].Path)
}
