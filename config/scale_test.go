//go:build unix

package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/internal/cputime"
)

// writeTargets writes n HTTP targets as one or more "targets:" files of at
// most perFile targets under dir and returns their names. Every target
// depends on one of 100 gateways (the first 100 targets), each of which
// depends on the one before.
func writeTargets(tb testing.TB, dir string, n, perFile int) []string {
	tb.Helper()
	var names []string
	var b strings.Builder
	flush := func() {
		if b.Len() == 0 {
			return
		}
		name := filepath.Join(dir, fmt.Sprintf("t%05d.yaml", len(names)))
		if err := os.WriteFile(name, []byte(b.String()), 0o600); err != nil {
			tb.Fatal(err)
		}
		names = append(names, name)
		b.Reset()
	}
	for i := range n {
		if i%perFile == 0 {
			flush()
			b.WriteString("targets:\n")
		}
		fmt.Fprintf(&b, "  - name: site-%d\n    kind: http\n    interval: 60s\n    labels: {team: t%d}\n    http: {url: \"https://site-%d.example.com/health\", expect_status: [\"200\"]}\n", i, i%50, i)
		switch {
		case i >= 100:
			fmt.Fprintf(&b, "    depends_on: [site-%d]\n", i%100)
		case i > 0:
			fmt.Fprintf(&b, "    depends_on: [site-%d]\n", i-1)
		}
	}
	flush()
	return names
}

// BenchmarkLoad times loading and validating 25k, 100k and 250k targets,
// from one file (when it fits the 16 MiB limit) and from included files of
// 10,000 targets each. Run: go test -run '^$' -bench Load -benchtime 1x ./config/
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{25000, 100000, 250000} {
		b.Run(fmt.Sprintf("one-file-%dk", n/1000), func(b *testing.B) {
			dir := b.TempDir()
			files := writeTargets(b, dir, n, n)
			fi, _ := os.Stat(files[0])
			if fi.Size() > maxConfigFileBytes {
				b.Skipf("%d targets are %d bytes, over the limit", n, fi.Size())
			}
			b.ResetTimer()
			for range b.N {
				start, cpu := time.Now(), cputime.Used()
				cfg, err := Load(files[0], noEnv)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(cfg.Targets)), "targets")
				b.Logf("%d targets in one file (%d MB): loaded and validated in %v (CPU %v)", n, fi.Size()>>20, time.Since(start), cputime.Used()-cpu)
			}
		})
		b.Run(fmt.Sprintf("include-%dk", n/1000), func(b *testing.B) {
			dir := b.TempDir()
			require.NoError(b, os.Mkdir(filepath.Join(dir, "targets.d"), 0o700))
			files := writeTargets(b, filepath.Join(dir, "targets.d"), n, 10000)
			main := filepath.Join(dir, "upwatch.yaml")
			require.NoError(b, os.WriteFile(main, []byte("include: [targets.d/*.yaml]\n"), 0o600))
			b.ResetTimer()
			for range b.N {
				start, cpu := time.Now(), cputime.Used()
				cfg, err := Load(main, noEnv)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(len(cfg.Targets)), "targets")
				b.Logf("%d targets in %d included files: loaded and validated in %v (CPU %v)", n, len(files), time.Since(start), cputime.Used()-cpu)
			}
		})
	}
}
