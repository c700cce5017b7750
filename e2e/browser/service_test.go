package browser

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/app"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/registry"
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
// `upwatch user add` does. Checks run every second so states change in
// seconds; the clock is the injected test clock.
func startService(t *testing.T, yaml string) *service {
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
