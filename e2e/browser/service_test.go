package browser

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/app"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tsdb/sqlite"
	"github.com/upwatch/upwatch/web"
)

// flapper is a loopback target whose health the test switches.
type flapper struct{ down atomic.Bool }

func (f *flapper) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if f.down.Load() {
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "fine")
}

// service is upwatch running in-process on 127.0.0.1 with an admin web
// user and an admin API key.
type service struct {
	url      string // http://127.0.0.1:port
	now      func() time.Time
	user     string
	password string
	apiKey   string
}

// startService runs the whole service (app.Run, as `upwatch serve` does)
// with the config's YAML, after adding the web user admin the way
// `upwatch user add` does, and three days of past checks of the targets
// named in history (so charts and uptime have something to show). Checks
// run every second so states change in seconds; the clock is the injected
// test clock.
func startService(t *testing.T, yaml string, history ...string) *service {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml), "browser.yaml", func(string) string { return "" })
	require.NoError(t, err)
	cfg.DataDir = t.TempDir()
	key, _, _, err := api.NewKey()
	require.NoError(t, err)
	getenv := func(name string) string {
		if name == app.EnvBootstrapKey {
			return key
		}
		return ""
	}
	s := &service{now: clocktest.Now, user: "admin", password: "browser-test-password", apiKey: key}
	log := slog.New(slog.DiscardHandler)
	require.NoError(t, app.AddUser(context.Background(), cfg, getenv, log, registry.DefaultTenant, s.user, web.RoleAdmin, s.password, s.now))
	seedHistory(t, filepath.Join(cfg.DataDir, app.DBFile), s.now(), history)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Listener: ln, Getenv: getenv, Logger: log,
			ShutdownTimeout: 10 * time.Second, Now: s.now})
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, wait, 20*time.Millisecond, "the service never became ready")
	return s
}

// target returns a loopback server whose health the test controls.
func target(t *testing.T) (*flapper, *httptest.Server) {
	f := &flapper{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// seedHistory stores three days of checks every 10 minutes before now for
// each target id (the key of a config target), with response times that
// vary by the hour and, for the first target, 40 minutes of failures 18
// hours ago. Deterministic: a fixed seed.
func seedHistory(t *testing.T, path string, now time.Time, ids []string) {
	t.Helper()
	if len(ids) == 0 {
		return
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	require.NoError(t, err)
	defer func() { require.NoError(t, store.Close()) }()
	rnd := rand.New(rand.NewPCG(13, 13))
	end := now.Add(-time.Minute).Truncate(10 * time.Minute)
	outage := end.Add(-18 * time.Hour)
	for n, id := range ids {
		var batch []prober.Result
		for at := end.Add(-72 * time.Hour); !at.After(end); at = at.Add(10 * time.Minute) {
			hour := float64(at.Hour())
			ms := func(base float64) time.Duration {
				v := base * (1 + 0.5*math.Sin(hour/24*2*math.Pi) + 0.3*rnd.Float64())
				return time.Duration(v * float64(time.Millisecond))
			}
			ph := prober.Phases{DNS: ms(2), Connect: ms(8 + 4*float64(n)), TTFB: ms(40 + 25*float64(n)), Transfer: ms(5)}
			r := prober.Result{TargetID: id, Target: id, Kind: "http", Location: "local", Start: at, Phases: ph,
				Duration: ph.DNS + ph.Connect + ph.TTFB + ph.Transfer, Success: true, StatusCode: http.StatusOK}
			if n == 0 && !at.Before(outage) && at.Before(outage.Add(40*time.Minute)) {
				r = r.Fail(prober.ClassStatus, "status 503 not in expected 200")
				r.StatusCode = http.StatusServiceUnavailable
			}
			batch = append(batch, r)
		}
		require.NoError(t, store.WriteSamples(ctx, batch))
	}
}
