package registry_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/internal/cputime"
	"github.com/upwatch/upwatch/registry"
)

// BenchmarkCommitFirstUp is the burst issue 11 measured after a start:
// every target's first results move it UNKNOWN → UP, and the engine
// commits those states in batches, the targets in the random order of
// their phases. One op is one target's state; batch is how many one
// transaction stores.
func BenchmarkCommitFirstUp(b *testing.B) {
	t0 := time.Date(2024, 5, 6, 12, 0, 0, 0, time.UTC)
	for _, batch := range []int{200, 2000, 5000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s, err := registry.OpenSQLite(context.Background(), registry.SQLiteOptions{Path: filepath.Join(b.TempDir(), "registry.db")})
			require.NoError(b, err)
			defer s.Close()
			order := rand.New(rand.NewPCG(1, 2)).Perm(b.N)
			commits := make([]alerting.Commit, b.N)
			for i, k := range order {
				at := t0.Add(time.Duration(k%60000) * time.Millisecond)
				commits[i] = alerting.Commit{State: alerting.State{
					TargetID: fmt.Sprintf("scale-%06d", k), Status: alerting.StatusUp, Since: at,
					ConsecutiveSuccesses: 2, RunStart: at, LastCheck: at.Add(time.Minute), Location: "local",
				}}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cputime.Used()
			for lo := 0; lo < b.N; lo += batch {
				require.NoError(b, s.CommitBatch(context.Background(), commits[lo:min(lo+batch, b.N)]))
			}
			b.ReportMetric(float64((cputime.Used()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
