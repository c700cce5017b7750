package prober

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/secret"
)

// evTarget is a normalised, validated target; mod sets it up before.
func evTarget(t *testing.T, mod func(*Target)) *Target {
	t.Helper()
	tg := &Target{Name: "ev", Kind: "http", Timeout: 5 * time.Second}
	mod(tg)
	tg.Normalize()
	require.Empty(t, tg.Validate("t"))
	return tg
}

func evProber() *Prober { return New(Options{AllowPrivate: true}) }

// evServer answers 503 with a body and headers while down is set, 200
// otherwise; it echoes the request's bearer token in the body and in a
// header, as a careless server would.
func evServer(t *testing.T, down *atomic.Bool) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		w.Header().Set("Set-Cookie", "session=s3cr3t-session")
		w.Header().Set("X-Backend", "db-2; echoed="+tok)
		w.Header().Set("Location", "https://example.test/login?access_token=leaked-token&x=1")
		w.Header().Set("Retry-After", "120")
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "maintenance: database unreachable (token "+tok+")")
			return
		}
		_, _ = io.WriteString(w, "all good")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func httpEvTarget(t *testing.T, url, capture string) *Target {
	return evTarget(t, func(tg *Target) {
		tg.Capture = capture
		tg.HTTP = &HTTPSpec{URL: url, Auth: &Auth{Type: "bearer", Token: secret.New("bearer-credential-1234")}}
	})
}

func TestEvidenceHTTPFailure(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	url := evServer(t, &down)
	res := evProber().Check(context.Background(), httpEvTarget(t, url, ""))
	require.False(t, res.Success)
	require.Equal(t, 503, res.StatusCode)
	ev := res.Evidence
	require.NotNil(t, ev, "a failed check keeps its evidence by default")
	require.Equal(t, CaptureFailures, ev.Reason)
	require.Equal(t, "maintenance: database unreachable (token "+secret.Redacted+")", ev.Body)
	require.False(t, ev.Truncated)
	require.Equal(t, []string{"120"}, ev.Headers["Retry-After"])
	require.Equal(t, []string{secret.Redacted}, ev.Headers["Set-Cookie"])
	require.Equal(t, []string{"db-2; echoed=" + secret.Redacted}, ev.Headers["X-Backend"])
	require.Equal(t, []string{"https://example.test/login?access_token=xxxxx&x=1"}, ev.Headers["Location"])
	probertestNoSecret(t, ev, "bearer-credential-1234", "s3cr3t-session", "leaked-token")
}

func probertestNoSecret(t *testing.T, ev *Evidence, secrets ...string) {
	t.Helper()
	var all strings.Builder
	all.WriteString(ev.Body)
	for k, vs := range ev.Headers {
		all.WriteString(k + strings.Join(vs, ""))
	}
	for _, s := range secrets {
		require.NotContains(t, all.String(), s)
	}
}

func TestEvidenceModes(t *testing.T) {
	var down atomic.Bool
	url := evServer(t, &down)
	// Each mode over the same run of verdicts: up, down, down, up, up.
	run := []bool{true, false, false, true, true}
	tests := []struct {
		capture string
		want    []bool // evidence kept, per check
	}{
		{CaptureFailures, []bool{false, true, true, false, false}},
		{CaptureTransitions, []bool{false, true, false, true, false}},
		{CaptureAlways, []bool{true, true, true, true, true}},
		{CaptureNever, []bool{false, false, false, false, false}},
	}
	for _, tc := range tests {
		t.Run(tc.capture, func(t *testing.T) {
			p := evProber()
			tg := httpEvTarget(t, url, tc.capture)
			for i, up := range run {
				down.Store(!up)
				res := p.Check(context.Background(), tg)
				require.Equal(t, up, res.Success, "check %d", i)
				require.Equal(t, tc.want[i], res.Evidence != nil, "check %d", i)
				if res.Evidence != nil {
					require.Equal(t, tc.capture, res.Evidence.Reason)
					require.NotEmpty(t, res.Evidence.Body)
				}
			}
		})
	}
}

func TestEvidenceTransitionsFirstCheck(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	url := evServer(t, &down)
	// A first check that fails counts as a flip (nothing before it is known).
	res := evProber().Check(context.Background(), httpEvTarget(t, url, CaptureTransitions))
	require.NotNil(t, res.Evidence)
}

func TestEvidenceExcerptBounded(t *testing.T) {
	body := strings.Repeat("0123456789", 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(500)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	for name, mod := range map[string]func(*HTTPSpec){
		"discarded body": func(*HTTPSpec) {},
		"kept body":      func(h *HTTPSpec) { h.BodyContains = []string{"0123"} },
	} {
		t.Run(name, func(t *testing.T) {
			tg := evTarget(t, func(tg *Target) {
				tg.CaptureBytes = 25
				tg.HTTP = &HTTPSpec{URL: srv.URL}
				mod(tg.HTTP)
			})
			res := evProber().Check(context.Background(), tg)
			require.False(t, res.Success)
			require.Equal(t, int64(len(body)), res.BodyBytes, "the excerpt does not shorten what the check reads")
			require.Equal(t, body[:25], res.Evidence.Body)
			require.True(t, res.Evidence.Truncated)
		})
	}
}

func TestEvidenceValidation(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Target)
		path string
	}{
		{func(tg *Target) { tg.Capture = "sometimes" }, "t.capture"},
		{func(tg *Target) { tg.CaptureBytes = MaxCaptureBytes + 1 }, "t.capture_bytes"},
		{func(tg *Target) { tg.CaptureBytes = -1 }, "t.capture_bytes"},
	} {
		tg := &Target{Name: "ev", Kind: "tcp", TCP: &TCPSpec{Address: "127.0.0.1:1"}}
		tc.mod(tg)
		tg.Normalize()
		errs := tg.Validate("t")
		require.Len(t, errs, 1)
		require.Equal(t, tc.path, errs[0].Path)
	}
	tg := &Target{Name: "ev", Kind: "tcp", TCP: &TCPSpec{Address: "127.0.0.1:1"}}
	tg.Normalize()
	require.Equal(t, CaptureFailures, tg.Capture)
	require.Equal(t, DefaultCaptureBytes, tg.CaptureBytes)
}

func TestEvidenceTCPReply(t *testing.T) {
	addr := tcpCheckServer(t, func(c net.Conn) { _, _ = io.WriteString(c, "-ERR too many connections\r\n") })
	tg := evTarget(t, func(tg *Target) {
		tg.Kind = "tcp"
		tg.TCP = &TCPSpec{Address: addr, Expect: `^\+OK`}
	})
	res := evProber().Check(context.Background(), tg)
	require.False(t, res.Success)
	require.NotNil(t, res.Evidence)
	require.Equal(t, "-ERR too many connections\r\n", res.Evidence.Body)
	require.Empty(t, res.Evidence.Headers)
}

func TestEvidenceDNSAnswer(t *testing.T) {
	server := dnsCheckServer(t, dnsCheckHandler(t))
	tg := evTarget(t, func(tg *Target) {
		tg.Kind = "dns"
		tg.DNS = &DNSSpec{Name: "a.test", Server: server, Expect: []string{"192.0.2.9"}}
	})
	res := evProber().Check(context.Background(), tg)
	require.False(t, res.Success)
	require.NotNil(t, res.Evidence)
	require.Contains(t, res.Evidence.Body, "a.test.\t300\tIN\tA\t192.0.2.1")
	require.Contains(t, res.Evidence.Body, "NOERROR")
}
