package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// freeAddr returns a 127.0.0.1 address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// requireReleased: the port can be bound again, the data dir's lock taken
// again, and the goroutines are back to what ran before.
func requireReleased(t *testing.T, addr, dataDir string, goroutines int) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err, "the listener was not closed")
	require.NoError(t, ln.Close())
	lock, err := lockDataDir(dataDir)
	require.NoError(t, err, "the data dir's lock was not released")
	lock.release()
	// Polled here, not with require.Eventually: its own goroutines count.
	for deadline := time.Now().Add(30 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if runtime.NumGoroutine() > goroutines {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines left running: %d, before %d:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
	}
}

// TestFailedStartReleasesWhatItMade: a start that fails part way closes the
// listener, the stores, the write-ahead log and the buffers it made, and
// gives the data dir's lock up.
func TestFailedStartReleasesWhatItMade(t *testing.T) {
	vm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(vm.Close)
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, dataDir string)
		getenv func(string) string
		want   string
	}{{
		// After the lock, the sample store and the listener.
		name: "registry fails to open",
		setup: func(t *testing.T, dataDir string) {
			require.NoError(t, os.MkdirAll(filepath.Join(dataDir, RegistryFile), 0o750))
		},
		want: "registry",
	}, {
		// After everything: the write-ahead log, the buffer and the mirror run.
		name: "API fails to start",
		getenv: func(name string) string {
			if name == EnvBootstrapKey || name == EnvBootstrapKeyFile {
				return "uw_x"
			}
			return ""
		},
		want: "not both",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, fmt.Sprintf("storage:\n  victoriametrics: {url: %q, timeout: 2s}\n", vm.URL))
			cfg.Listen = freeAddr(t)
			if tc.setup != nil {
				tc.setup(t, cfg.DataDir)
			}
			before := runtime.NumGoroutine()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := Run(ctx, Options{Config: cfg, Getenv: tc.getenv})
			require.ErrorContains(t, err, tc.want)
			requireReleased(t, cfg.Listen, cfg.DataDir, before)
		})
	}
}

// TestStopIsIdempotent: Stop releases everything, a second Stop returns the
// first one's result, and Start after Stop does nothing.
func TestStopIsIdempotent(t *testing.T) {
	for _, startFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("started=%v", startFirst), func(t *testing.T) {
			cfg := testConfig(t, "")
			cfg.Listen = freeAddr(t)
			before := runtime.NumGoroutine()
			ctx := context.Background()
			s, err := New(ctx, Options{Config: cfg})
			require.NoError(t, err)
			if startFirst {
				s.Start(ctx)
				require.Eventually(t, func() bool {
					resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
					if err != nil {
						return false
					}
					resp.Body.Close()
					return resp.StatusCode == http.StatusOK
				}, 30*time.Second, 20*time.Millisecond)
				http.DefaultClient.CloseIdleConnections()
			}
			stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			require.NoError(t, s.Stop(stopCtx))
			require.NoError(t, s.Stop(stopCtx))
			s.Start(ctx)
			requireReleased(t, cfg.Listen, cfg.DataDir, before)
		})
	}
}
