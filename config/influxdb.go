package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/secret"
)

// Defaults of storage.influxdb.
const (
	DefaultInfluxBatchSize     = 1000
	DefaultInfluxFlushInterval = time.Second
	DefaultInfluxTimeout       = 10 * time.Second
	DefaultSpoolMaxBytes       = 512 << 20
	DefaultSpoolFull           = "drop_oldest"
	minSpoolMaxBytes           = 1 << 20
)

// InfluxDB configures storage.type influxdb: samples go to InfluxDB 2.x, or
// 1.8+ through its v2 API. See docs/influxdb.md.
type InfluxDB struct {
	// URL of the server, e.g. http://influxdb:8086.
	URL string `yaml:"url"`
	// Org is the organization (2.x; 1.8 ignores it).
	Org string `yaml:"org"`
	// Bucket is the bucket (2.x) or "database/retention-policy" (1.8).
	Bucket string `yaml:"bucket"`
	// Token is the API token (2.x), "user:password" or empty (1.8); write
	// env:NAME or file:/path to keep it out of the file.
	Token secret.Secret `yaml:"token"`
	// BatchSize is the most samples sent in one write (default 1000).
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest a sample waits for its batch (default 1s).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Timeout bounds each request to InfluxDB (default 10s).
	Timeout time.Duration `yaml:"timeout"`
	Spool   Spool         `yaml:"spool"`
}

// Spool is the on-disk buffer for samples InfluxDB cannot take right now.
type Spool struct {
	// Dir holds the spool (default <data_dir>/spool).
	Dir string `yaml:"dir"`
	// MaxBytes bounds its size on disk (default 512 MiB, at least 1 MiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// Full is what happens when it is full: drop_oldest (default; dropped
	// samples are counted in upwatch_spool_dropped_total) or block (probing
	// waits until InfluxDB takes samples again).
	Full string `yaml:"full"`
}

func (c *Config) normalizeInflux() {
	if c.Storage.Type != "influxdb" {
		return
	}
	in := &c.Storage.InfluxDB
	if in.BatchSize == 0 {
		in.BatchSize = DefaultInfluxBatchSize
	}
	if in.FlushInterval == 0 {
		in.FlushInterval = DefaultInfluxFlushInterval
	}
	if in.Timeout == 0 {
		in.Timeout = DefaultInfluxTimeout
	}
	if in.Spool.Dir == "" {
		in.Spool.Dir = filepath.Join(c.DataDir, "spool")
	}
	if in.Spool.MaxBytes == 0 {
		in.Spool.MaxBytes = DefaultSpoolMaxBytes
	}
	if in.Spool.Full == "" {
		in.Spool.Full = DefaultSpoolFull
	}
}

func (c *Config) validateInflux() []invalid.Field {
	if c.Storage.Type != "influxdb" {
		return nil
	}
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: "storage.influxdb." + path, Msg: fmt.Sprintf(format, args...)})
	}
	in := c.Storage.InfluxDB
	if in.URL == "" {
		add("url", "is required with storage.type influxdb")
	} else if u, err := url.Parse(in.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("url", "must be an http:// or https:// URL with a host (got %q)", secret.RedactURL(in.URL, secret.URLCredentials))
	} else if u.User != nil {
		add("url", "must not hold credentials; use token")
	}
	if in.Bucket == "" {
		add("bucket", `is required ("database/retention-policy" on InfluxDB 1.8)`)
	}
	if in.BatchSize < 1 || in.BatchSize > 50000 {
		add("batch_size", "must be between 1 and 50000")
	}
	if in.FlushInterval <= 0 || in.FlushInterval > time.Minute {
		add("flush_interval", "must be more than 0 and at most 1m")
	}
	if in.Timeout <= 0 || in.Timeout > 5*time.Minute {
		add("timeout", "must be more than 0 and at most 5m")
	}
	if in.Spool.MaxBytes < minSpoolMaxBytes {
		add("spool.max_bytes", "must be at least %d (1 MiB)", minSpoolMaxBytes)
	}
	if in.Spool.Full != "drop_oldest" && in.Spool.Full != "block" {
		add("spool.full", "must be drop_oldest or block (got %q)", in.Spool.Full)
	}
	return errs
}

// DefaultVictoriaTimeout is the default of storage.victoriametrics.timeout.
const DefaultVictoriaTimeout = 10 * time.Second

// VictoriaMetrics configures an optional extra write target: every sample is
// also sent, in the InfluxDB line-protocol schema, to <url>/api/v2/write.
// It is never read from, and a slow or absent server never holds up checks
// (its queue drops samples when full). See docs/influxdb.md.
type VictoriaMetrics struct {
	// URL of the server, e.g. http://vm:8428; empty turns the mirror off.
	URL string `yaml:"url"`
	// Timeout bounds each request (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

func (c *Config) normalizeVictoria() {
	if vm := &c.Storage.VictoriaMetrics; vm.URL != "" && vm.Timeout == 0 {
		vm.Timeout = DefaultVictoriaTimeout
	}
}

func (c *Config) validateVictoria() []invalid.Field {
	vm := c.Storage.VictoriaMetrics
	if vm.URL == "" {
		return nil
	}
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: "storage.victoriametrics." + path, Msg: fmt.Sprintf(format, args...)})
	}
	if u, err := url.Parse(vm.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("url", "must be an http:// or https:// URL with a host (got %q)", secret.RedactURL(vm.URL, secret.URLCredentials))
	} else if u.User != nil {
		add("url", "must not hold credentials")
	}
	if vm.Timeout <= 0 || vm.Timeout > 5*time.Minute {
		add("timeout", "must be more than 0 and at most 5m")
	}
	return errs
}
