package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// TestBatchStoresAsOneByOne writes one shuffled batch (targets
// interleaved, hours crossed, starts out of order, copies of a sample
// inside the batch and of one already stored) and the same samples one
// at a time, and requires the same samples, rollups, totals and newest
// samples from both: how write groups a batch changes nothing stored.
func TestBatchStoresAsOneByOne(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var rs []prober.Result
	targets := []string{"c", "a", "b", "a-1", "d"}
	for i := range 300 {
		r := tsdbtest.Sample(targets[i%len(targets)], time.Duration(rng.IntN(4*3600))*time.Second,
			time.Duration(rng.IntN(20000))*time.Millisecond)
		if rng.IntN(7) == 0 {
			r = tsdbtest.Failed(r)
		}
		if i%3 == 0 {
			r.Location = "us-east"
		}
		rs = append(rs, r)
	}
	early := rs[10]
	dup := rs[20]
	dup.Error, dup.Success = "a copy, not stored", false
	rs = append(rs, dup)
	rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })

	batch, single := open(t, Options{}), open(t, Options{})
	require.NoError(t, batch.WriteSamples(ctx, []prober.Result{early}))
	require.NoError(t, batch.WriteSamples(ctx, rs))
	require.NoError(t, single.WriteSamples(ctx, []prober.Result{early}))
	for _, r := range rs {
		require.NoError(t, single.WriteSamples(ctx, []prober.Result{r}))
	}

	from, to := tsdbtest.T0.Add(-time.Hour), tsdbtest.T0.Add(6*time.Hour)
	for _, id := range targets {
		want, err := single.Rollups(ctx, id, from, to)
		require.NoError(t, err)
		got, err := batch.Rollups(ctx, id, from, to)
		require.NoError(t, err)
		require.Equal(t, want, got, "rollups of %s", id)
		require.Len(t, got, 4, "rollups of %s", id)

		q := tsdb.SampleQuery{TargetID: id, From: from, To: to, Limit: 10000}
		wantS, err := single.Samples(ctx, q)
		require.NoError(t, err)
		gotS, err := batch.Samples(ctx, q)
		require.NoError(t, err)
		require.Equal(t, wantS, gotS, "samples of %s", id)

		// And the rollups are those of the samples stored, one by one.
		hours := map[int64]*tsdb.Rollup{}
		for _, r := range gotS.Samples {
			h := hourOf(r.Start)
			if hours[h] == nil {
				hours[h] = &tsdb.Rollup{TargetID: id, Hour: time.Unix(h, 0).UTC()}
			}
			hours[h].Add(r)
		}
		require.Len(t, hours, len(got))
		for _, ru := range got {
			require.Equal(t, *hours[ru.Hour.Unix()], ru, "rollup of %s at %s", id, ru.Hour)
		}
	}
	wantT, err := single.RollupTotals(ctx, targets, from, to)
	require.NoError(t, err)
	gotT, err := batch.RollupTotals(ctx, targets, from, to)
	require.NoError(t, err)
	require.Equal(t, wantT, gotT)
	wantL, err := single.Latest(ctx)
	require.NoError(t, err)
	gotL, err := batch.Latest(ctx)
	require.NoError(t, err)
	require.Equal(t, wantL, gotL)
	require.Len(t, gotL, len(targets), fmt.Sprint(gotL))
}
