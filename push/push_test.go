package push

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/secret"
)

type results struct {
	mu  sync.Mutex
	all []prober.Result
}

func (rs *results) sink(_ context.Context, r prober.Result) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.all = append(rs.all, r)
}

func (rs *results) take() []prober.Result {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := rs.all
	rs.all = nil
	return out
}

const testToken = "uwp_abcdefghijklmnopqrstuvwxyz012345"

func pushTarget(id, token string, period, grace time.Duration) prober.Target {
	t := prober.Target{ID: id, Name: id + " job", Kind: "push", Push: &prober.PushSpec{Token: secret.New(token), Period: period, Grace: grace}}
	t.Normalize()
	return t
}

func newTestMonitor(t *testing.T) (*Monitor, *clocktest.Manual, *results, *httptest.Server) {
	clk := clocktest.NewManual(clocktest.Noon())
	rs := &results{}
	m := New(Options{Sink: rs.sink, Now: clk.Now, Location: "here"})
	m.Update([]prober.Target{pushTarget("backup", testToken, time.Hour, 5*time.Minute)})
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	return m, clk, rs, srv
}

func ping(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestPingEndpoints(t *testing.T) {
	_, clk, rs, srv := newTestMonitor(t)
	base := srv.URL + "/ping/" + testToken

	code, _ := ping(t, http.MethodGet, base, "")
	require.Equal(t, http.StatusOK, code)
	got := rs.take()
	require.Len(t, got, 1)
	require.True(t, got[0].Success)
	require.Equal(t, prober.Result{TargetID: "backup", Target: "backup job", Kind: "push", Location: "here", Start: clk.Now(), Success: true}, got[0])

	// start, then success 90s later: the run's duration.
	code, _ = ping(t, http.MethodPost, base+"/start", "")
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, rs.take(), "a start is no result")
	began := clk.Now()
	clk.Advance(90 * time.Second)
	code, _ = ping(t, http.MethodPost, base+"/0", "")
	require.Equal(t, http.StatusOK, code)
	got = rs.take()
	require.Len(t, got, 1)
	require.True(t, got[0].Success)
	require.Equal(t, began.Add(90*time.Second), got[0].Start, "stamped at the end of the run")
	require.Equal(t, 90*time.Second, got[0].Duration)

	code, _ = ping(t, http.MethodPost, base+"/fail", "disk full\x1b[31m\non /var")
	require.Equal(t, http.StatusOK, code)
	got = rs.take()
	require.Len(t, got, 1)
	require.False(t, got[0].Success)
	require.Equal(t, prober.ClassJobFailed, got[0].ErrorClass)
	require.Equal(t, "the job reported failure: disk full [31m on /var", got[0].Error)

	code, _ = ping(t, http.MethodGet, base+"/3", "")
	require.Equal(t, http.StatusOK, code)
	got = rs.take()
	require.Len(t, got, 1)
	require.Equal(t, prober.ClassJobFailed, got[0].ErrorClass)
	require.Equal(t, "the job exited with code 3", got[0].Error)

	for _, bad := range []string{"/256", "/-1", "/01", "/what", "/start/x"} {
		code, body := ping(t, http.MethodGet, base+bad, "")
		require.Equal(t, http.StatusNotFound, code, bad)
		require.NotContains(t, body, testToken)
	}
	code, _ = ping(t, http.MethodDelete, base, "")
	require.Equal(t, http.StatusMethodNotAllowed, code)

	code, _ = ping(t, http.MethodPost, base+"/fail", strings.Repeat("x", MaxBody+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, code)
	require.Empty(t, rs.take())
}

func TestPingUnknownToken(t *testing.T) {
	_, _, rs, srv := newTestMonitor(t)
	for _, tok := range []string{"uwp_abcdefghijklmnopqrstuvwxyz012346", "x", testToken[:len(testToken)-1]} {
		code, body := ping(t, http.MethodGet, srv.URL+"/ping/"+tok, "")
		require.Equal(t, http.StatusNotFound, code)
		require.Equal(t, "not found\n", body)
	}
	require.Empty(t, rs.take())
}

func TestPingRateLimited(t *testing.T) {
	_, clk, rs, srv := newTestMonitor(t)
	url := srv.URL + "/ping/" + testToken
	for range PingBurst {
		code, _ := ping(t, http.MethodGet, url, "")
		require.Equal(t, http.StatusOK, code)
	}
	code, _ := ping(t, http.MethodGet, url, "")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Len(t, rs.take(), PingBurst)
	clk.Advance(2 * time.Second) // the limiter runs on the injected clock
	code, _ = ping(t, http.MethodGet, url, "")
	require.Equal(t, http.StatusOK, code)
}

// No ping: nothing until period + grace, then one no_ping failure, then one
// a period; a ping ends the silence and moves the deadline.
func TestMissedPing(t *testing.T) {
	m, clk, rs, _ := newTestMonitor(t)
	created := clk.Now()
	ctx := context.Background()

	m.Tick(ctx, clk.Advance(time.Hour+5*time.Minute-time.Second))
	require.Empty(t, rs.take(), "within period + grace")
	m.Tick(ctx, clk.Advance(time.Second))
	got := rs.take()
	require.Len(t, got, 1)
	require.False(t, got[0].Success)
	require.Equal(t, prober.ClassNoPing, got[0].ErrorClass)
	require.Equal(t, created.Add(time.Hour+5*time.Minute), got[0].Start)
	require.Equal(t, "backup", got[0].TargetID)

	m.Tick(ctx, clk.Advance(time.Hour-time.Second))
	require.Empty(t, rs.take())
	m.Tick(ctx, clk.Advance(time.Second))
	require.Len(t, rs.take(), 1, "a period later, another")

	require.NoError(t, m.Ping(ctx, testToken, Ping{}))
	require.True(t, rs.take()[0].Success)
	m.Tick(ctx, clk.Advance(time.Hour+5*time.Minute-time.Second))
	require.Empty(t, rs.take())

	// A changed grace moves the pending deadline with it.
	m.Update([]prober.Target{pushTarget("backup", testToken, time.Hour, 10*time.Minute)})
	m.Tick(ctx, clk.Advance(time.Second))
	require.Empty(t, rs.take())
	m.Tick(ctx, clk.Advance(5*time.Minute))
	require.Len(t, rs.take(), 1)

	// A removed target is not reported; its token is unknown.
	m.Update(nil)
	m.Tick(ctx, clk.Advance(48*time.Hour))
	require.Empty(t, rs.take())
	require.ErrorIs(t, m.Ping(ctx, testToken, Ping{}), ErrUnknownToken)
}

func TestOthers(t *testing.T) {
	ts := []prober.Target{{ID: "a", Kind: "http"}, pushTarget("b", testToken, time.Hour, 0), {ID: "c", Kind: "icmp"}}
	others := Others(ts)
	require.Len(t, others, 2)
	require.Equal(t, "c", others[1].ID)
	require.Len(t, ts, 3)

	// Nothing to leave out: no copy.
	checked := ts[:1]
	require.Same(t, &checked[0], &Others(checked)[0])
}
