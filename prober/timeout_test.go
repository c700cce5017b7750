package prober_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/secret"
)

// timeoutSlack is how far past its timeout a check may end. Generous, so
// the test is about the bound and not the machine's speed: the defect of
// issue 9 ran 12% (almost a second) over.
const timeoutSlack = 500 * time.Millisecond

// stall serves nothing until the client goes away (the server notices
// that only once the request body is read).
func stall(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// trickle answers 200 at once, then one byte of body every 50ms.
func trickle(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
	for {
		if _, err := w.Write([]byte("x")); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// slowRedirects redirects to the next hop after 200ms, forever (within
// max_redirects 20, which 20 × 200ms overruns).
func slowRedirects(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	select {
	case <-r.Context().Done():
		return
	case <-time.After(200 * time.Millisecond):
	}
	http.Redirect(w, r, "/?n="+strconv.Itoa(n+1), http.StatusFound)
}

// silentListener accepts TCP connections and never writes: a TLS
// handshake, or a tcp check waiting for its banner, hangs on it.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return ln.Addr().String()
}

// silentUDP is a DNS server that never answers.
func silentUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	return pc.LocalAddr().String()
}

func httpServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	srv.Config.ErrorLog = htQuietLog()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestTimeoutBoundsTheWholeCheck: whichever phase stalls (headers, body,
// redirects, the OAuth2 token, the TLS handshake, a banner, a DNS reply),
// the check ends as a timeout within its timeout and a small slack.
func TestTimeoutBoundsTheWholeCheck(t *testing.T) {
	const timeout = time.Second
	cases := []struct {
		name   string
		target func(t *testing.T) prober.Target
	}{
		{"headers delayed", func(t *testing.T) prober.Target {
			return prober.Target{Kind: "http", HTTP: &prober.HTTPSpec{URL: httpServer(t, stall)}}
		}},
		{"body trickled", func(t *testing.T) prober.Target {
			return prober.Target{Kind: "http", HTTP: &prober.HTTPSpec{URL: httpServer(t, trickle), BodyContains: []string{"never"}}}
		}},
		{"slow redirect chain", func(t *testing.T) prober.Target {
			return prober.Target{Kind: "http", HTTP: &prober.HTTPSpec{URL: httpServer(t, slowRedirects), MaxRedirects: prober.MaxRedirects}}
		}},
		{"oauth2 token endpoint stalls", func(t *testing.T) prober.Target {
			base := httpServer(t, stall)
			return prober.Target{Kind: "http", HTTP: &prober.HTTPSpec{URL: base + "/status", Auth: &prober.Auth{
				Type: "oauth2", TokenURL: base + "/token", ClientID: "c", ClientSecret: secret.New("s3cr3t"),
			}}}
		}},
		{"tls handshake stalls (https)", func(t *testing.T) prober.Target {
			return prober.Target{Kind: "http", HTTP: &prober.HTTPSpec{URL: "https://" + silentListener(t) + "/"}}
		}},
		{"tls check handshake stalls", func(t *testing.T) prober.Target {
			return prober.Target{Kind: "tls", TLS: &prober.TLSSpec{Address: silentListener(t)}}
		}},
		{"tcp banner never comes", func(t *testing.T) prober.Target {
			return prober.Target{Kind: "tcp", TCP: &prober.TCPSpec{Address: silentListener(t), Expect: "^220"}}
		}},
		{"dns server never answers", func(t *testing.T) prober.Target {
			return prober.Target{Kind: "dns", DNS: &prober.DNSSpec{Name: "example.com", Server: silentUDP(t)}}
		}},
	}
	p := htProber()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := tc.target(t)
			tg.Name, tg.Timeout = "slow", timeout
			tg.Normalize()
			require.Empty(t, tg.Validate("t"))
			res := p.Check(context.Background(), &tg)
			assert.False(t, res.Success)
			assert.Equal(t, prober.ClassTimeout, res.ErrorClass, res.Error)
			assert.LessOrEqual(t, res.Duration, timeout+timeoutSlack, "the check ran past its timeout: %s", res.Error)
			assert.GreaterOrEqual(t, res.Duration, timeout-timeoutSlack, "it ended early: %s", res.Error)
		})
	}
}

// CheckInline gives what Check gives, on the calling goroutine; Overran
// is the timeout the scheduler reports for a check that ignored its
// deadline, shaped like the one Check reports itself.
func TestCheckInlineAndOverran(t *testing.T) {
	srv := htServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	p := prober.New(prober.Options{AllowPrivate: true, Location: "eu-west"})
	tg := htTarget(t, srv.URL+"/", func(h *prober.HTTPSpec) { h.BodyContains = []string{"ok"} })
	res := p.CheckInline(context.Background(), tg)
	require.True(t, res.Success, res.Error)
	require.Equal(t, "eu-west", res.Location)
	require.Equal(t, 200, res.StatusCode)

	slow := htTarget(t, srv.URL+"/", nil)
	slow.Timeout = 30 * time.Millisecond
	start := time.Unix(1_700_000_000, 0)
	r := p.Overran(slow, start)
	require.False(t, r.Success)
	require.Equal(t, prober.ClassTimeout, r.ErrorClass)
	require.Equal(t, "the check did not stop at its deadline", r.Error)
	require.Equal(t, "eu-west", r.Location)
	require.Equal(t, slow.ID, r.TargetID)
	require.True(t, r.Start.Equal(start))
	require.Equal(t, slow.Timeout, r.Duration)
}
