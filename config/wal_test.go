package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWALDefaults(t *testing.T) {
	cfg, err := Parse(strings.NewReader("data_dir: /var/lib/upwatch"), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, WAL{MaxBytes: 64 << 20, SyncInterval: 200 * time.Millisecond, Full: "block"}, cfg.Storage.WAL)
	require.Equal(t, filepath.Join("/var/lib/upwatch", "wal"), cfg.Storage.WAL.Path(cfg.DataDir))
	require.Equal(t, "/elsewhere", WAL{Dir: "/elsewhere"}.Path(cfg.DataDir))
}

func TestWALInvalid(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"bad values", `
storage: {wal: {max_bytes: 1000, sync_interval: 1m, full: never}}`, []string{
			"storage.wal.max_bytes: must be between 1048576 (1 MiB) and 17179869184 (16 GiB)",
			"storage.wal.sync_interval: must be more than 0 and at most 10s",
			`storage.wal.full: must be block or drop_oldest (got "never")`,
		}},
		{"too large, negative interval", `
storage: {wal: {max_bytes: 17179869185, sync_interval: -1s}}`, []string{
			"storage.wal.max_bytes: must be between",
			"storage.wal.sync_interval: must be more than 0",
		}},
		{"shares the spool's directory", `
data_dir: /d
storage: {type: influxdb, influxdb: {url: "http://h:8086", bucket: b}, wal: {dir: /d/spool/}}`, []string{
			"storage.wal.dir: must not be storage.influxdb.spool.dir",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireErrors(t, tc.yaml, tc.want)
		})
	}
}
