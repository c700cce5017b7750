package config

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/upwatch/upwatch/internal/invalid"
)

// Defaults and bounds of storage.wal.
const (
	DefaultWALMaxBytes     = 64 << 20
	DefaultWALSyncInterval = 200 * time.Millisecond
	DefaultWALFull         = "block"
	minWALMaxBytes         = 1 << 20
	maxWALMaxBytes         = 16 << 30
	maxWALSyncInterval     = 10 * time.Second
)

// WAL is the write-ahead log every completed check goes to before anything
// else sees it, so that kill -9 loses none; see CONFIGURATION.md.
type WAL struct {
	// Dir holds the log; empty means <data_dir>/wal (see Path).
	Dir string `yaml:"dir"`
	// MaxBytes bounds its size on disk (default 64 MiB, 1 MiB to 16 GiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// SyncInterval is the group commit: how often the log is fsynced, and
	// so the most a power loss can take (default 200ms, at most 10s).
	SyncInterval time.Duration `yaml:"sync_interval"`
	// Full is what happens when the store lags so far behind that the log
	// is full: block (default; checks wait) or drop_oldest (the oldest
	// samples lose their crash protection, they are still written).
	Full string `yaml:"full"`
}

// Path is the log's directory: Dir, or <dataDir>/wal. It is resolved when
// the log is opened, so a data dir set after Normalize still holds it.
func (w WAL) Path(dataDir string) string {
	if w.Dir != "" {
		return w.Dir
	}
	return filepath.Join(dataDir, "wal")
}

func (c *Config) normalizeWAL() {
	w := &c.Storage.WAL
	if w.MaxBytes == 0 {
		w.MaxBytes = DefaultWALMaxBytes
	}
	if w.SyncInterval == 0 {
		w.SyncInterval = DefaultWALSyncInterval
	}
	if w.Full == "" {
		w.Full = DefaultWALFull
	}
}

func (c *Config) validateWAL() []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: "storage.wal." + path, Msg: fmt.Sprintf(format, args...)})
	}
	w := c.Storage.WAL
	if w.MaxBytes < minWALMaxBytes || w.MaxBytes > maxWALMaxBytes {
		add("max_bytes", "must be between %d (1 MiB) and %d (16 GiB)", minWALMaxBytes, int64(maxWALMaxBytes))
	}
	if w.SyncInterval <= 0 || w.SyncInterval > maxWALSyncInterval {
		add("sync_interval", "must be more than 0 and at most %s", maxWALSyncInterval)
	}
	if w.Full != "block" && w.Full != "drop_oldest" {
		add("full", "must be block or drop_oldest (got %q)", w.Full)
	}
	if in := c.Storage.InfluxDB; c.Storage.Type == "influxdb" && filepath.Clean(in.Spool.Dir) == filepath.Clean(w.Path(c.DataDir)) {
		add("dir", "must not be storage.influxdb.spool.dir")
	}
	return errs
}
