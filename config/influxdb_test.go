package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestInfluxDBConfig(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(f, []byte("tok-from-file\n"), 0o600))
	cfg, err := Parse(strings.NewReader(`
data_dir: /var/lib/upwatch
storage:
  type: influxdb
  influxdb:
    url: http://127.0.0.1:8086
    org: acme
    bucket: upwatch
    token: "file:`+f+`"
`), "t.yaml", noEnv)
	require.NoError(t, err)
	in := cfg.Storage.InfluxDB
	require.Equal(t, "tok-from-file", in.Token.Reveal())
	require.NotContains(t, fmt.Sprintf("%v %+v", cfg.Storage, cfg.Storage), "tok-from-file")
	require.Equal(t, DefaultInfluxBatchSize, in.BatchSize)
	require.Equal(t, time.Second, in.FlushInterval)
	require.Equal(t, DefaultInfluxTimeout, in.Timeout)
	require.Equal(t, Spool{Dir: filepath.Join("/var/lib/upwatch", "spool"), MaxBytes: DefaultSpoolMaxBytes, Full: "drop_oldest"}, in.Spool)

	cfg, err = Parse(strings.NewReader(`
storage:
  type: influxdb
  influxdb:
    url: https://influx.example
    bucket: upwatch/autogen
    batch_size: 5000
    flush_interval: 250ms
    spool: {dir: /spool, max_bytes: 2097152, full: block}
`), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, 5000, cfg.Storage.InfluxDB.BatchSize)
	require.Equal(t, 250*time.Millisecond, cfg.Storage.InfluxDB.FlushInterval)
	require.Equal(t, Spool{Dir: "/spool", MaxBytes: 2 << 20, Full: "block"}, cfg.Storage.InfluxDB.Spool)

	sq, err := Parse(strings.NewReader(""), "t.yaml", noEnv)
	require.NoError(t, err)
	require.Equal(t, InfluxDB{}, sq.Storage.InfluxDB, "no influxdb defaults with sqlite storage")
}

func TestInfluxDBEnv(t *testing.T) {
	env := map[string]string{
		"UPWATCH_STORAGE": "influxdb", "UPWATCH_INFLUXDB_URL": "http://h:8086", "UPWATCH_INFLUXDB_ORG": "o",
		"UPWATCH_INFLUXDB_BUCKET": "b", "UPWATCH_INFLUXDB_TOKEN": "t0k",
	}
	cfg, err := Parse(strings.NewReader(""), "t.yaml", func(k string) string { return env[k] })
	require.NoError(t, err)
	in := cfg.Storage.InfluxDB
	require.Equal(t, "influxdb", cfg.Storage.Type)
	require.Equal(t, []string{"http://h:8086", "o", "b", "t0k"}, []string{in.URL, in.Org, in.Bucket, in.Token.Reveal()})
}

func TestInfluxDBInvalid(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"missing url and bucket", `
storage: {type: influxdb}`, []string{
			"storage.influxdb.url: is required with storage.type influxdb",
			"storage.influxdb.bucket: is required",
		}},
		{"bad values", `
storage:
  type: influxdb
  influxdb:
    url: ftp://h
    bucket: b
    batch_size: 100000
    flush_interval: -1s
    timeout: 1h
    spool: {max_bytes: 1000, full: sometimes}`, []string{
			`storage.influxdb.url: must be an http:// or https:// URL with a host (got "ftp://h")`,
			"storage.influxdb.batch_size: must be between 1 and 50000",
			"storage.influxdb.flush_interval: must be more than 0 and at most 1m",
			"storage.influxdb.timeout: must be more than 0 and at most 5m",
			"storage.influxdb.spool.max_bytes: must be at least 1048576",
			`storage.influxdb.spool.full: must be drop_oldest or block (got "sometimes")`,
		}},
		{"credentials in url", `
storage: {type: influxdb, influxdb: {url: "http://u:hunter2@h:8086", bucket: b}}`, []string{
			"storage.influxdb.url: must not hold credentials; use token",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := requireErrors(t, tc.yaml, tc.want)
			require.NotContains(t, err.Error(), "hunter2")
		})
	}
}
