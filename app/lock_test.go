package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSecondServeOnTheSameDataDirFailsFast: the second process stops at
// start with a message naming the dir and the holder's PID; the first
// keeps serving, and once it stops the dir is free again.
func TestSecondServeOnTheSameDataDirFailsFast(t *testing.T) {
	cfg := testConfig(t, "")
	first := start(t, cfg, Options{})

	second := *cfg
	second.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Run(ctx, Options{Config: &second})
	require.Error(t, err)
	require.EqualError(t, err, fmt.Sprintf("data dir %s is in use by another upwatch process (PID %d); give each process its own data_dir", cfg.DataDir, os.Getpid()))
	require.NoError(t, ctx.Err(), "the second Run returned at once, not when the deadline ended it")

	resp, err := http.Get(first.addr + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the first keeps running")

	first.shutdown(t)
	again := start(t, &second, Options{})
	again.shutdown(t)
}
