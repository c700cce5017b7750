package sqlite

import (
	"context"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

func withEvidence(r prober.Result, body string) prober.Result {
	r.Success = false
	r.ErrorClass = prober.ClassStatus
	r.Evidence = &prober.Evidence{Reason: prober.CaptureFailures, Body: body,
		Headers: map[string][]string{"Retry-After": {"120"}}}
	return r
}

func TestEvidenceWriteRead(t *testing.T) {
	ctx := context.Background()
	s := open(t, Options{Now: func() time.Time { return tsdbtest.T0 }})
	ok := tsdbtest.Sample("a", -2*time.Minute, time.Millisecond)
	bad := withEvidence(tsdbtest.Sample("a", -time.Minute, time.Millisecond), "down for maintenance")
	other := withEvidence(tsdbtest.Sample("b", -time.Minute, time.Millisecond), "b is down")
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{ok, bad, other}))
	// Written again (a replayed write-ahead log): nothing changes.
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{bad}))

	recs, err := s.Evidence(ctx, "a", bad.Start, bad.Start.Add(time.Nanosecond), 0)
	require.NoError(t, err)
	require.Equal(t, []tsdb.EvidenceRecord{{TargetID: "a", Location: bad.Location, Start: bad.Start.UTC(), Evidence: *bad.Evidence}}, recs)
	recs, err = s.Evidence(ctx, "a", ok.Start, ok.Start.Add(time.Nanosecond), 0)
	require.NoError(t, err)
	require.Empty(t, recs, "a check without evidence has none")

	// Samples read back without it: the samples stay as they were.
	page, err := s.Samples(ctx, tsdb.SampleQuery{TargetID: "a", From: ok.Start, To: tsdbtest.T0})
	require.NoError(t, err)
	require.Len(t, page.Samples, 2)
	for _, r := range page.Samples {
		require.Nil(t, r.Evidence)
	}
	// Compacting the samples into blocks leaves the evidence.
	_, err = s.Compact(ctx)
	require.NoError(t, err)
	recs, err = s.Evidence(ctx, "a", time.Time{}, tsdbtest.T0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
}

func TestEvidencePrunedWithRawRetention(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: tsdbtest.T0}
	s := open(t, Options{Now: clk.Now, RawRetention: 24 * time.Hour})
	old := withEvidence(tsdbtest.Sample("a", -25*time.Hour, time.Millisecond), "old")
	recent := withEvidence(tsdbtest.Sample("a", -time.Hour, time.Millisecond), "recent")
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{old, recent}))

	n, err := s.Prune(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "evidence is not counted as samples")
	recs, err := s.Evidence(ctx, "a", time.Time{}, tsdbtest.T0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "recent", recs[0].Evidence.Body)

	clk.Set(tsdbtest.T0.Add(24 * time.Hour))
	_, err = s.Prune(ctx)
	require.NoError(t, err)
	recs, err = s.Evidence(ctx, "a", time.Time{}, tsdbtest.T0.Add(24*time.Hour), 0)
	require.NoError(t, err)
	require.Empty(t, recs)
}

// noise is n bytes of base64 text that does not compress much, as a
// worst case for the bound.
func noise(seed uint64, n int) string {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return base64.StdEncoding.EncodeToString(b)[:n]
}

func TestEvidenceBoundedPerTarget(t *testing.T) {
	ctx := context.Background()
	const bound = 10_000
	s := open(t, Options{Now: func() time.Time { return tsdbtest.T0 }, EvidencePerTarget: bound})
	for i := range 30 {
		r := withEvidence(tsdbtest.Sample("a", time.Duration(i-30)*time.Minute, time.Millisecond), noise(uint64(i), 1500))
		require.NoError(t, s.WriteSamples(ctx, []prober.Result{r}))
	}
	other := withEvidence(tsdbtest.Sample("b", -time.Minute, time.Millisecond), noise(99, 1500))
	require.NoError(t, s.WriteSamples(ctx, []prober.Result{other}))

	var stored int64
	require.NoError(t, s.r.QueryRow(`SELECT sum(size) FROM evidence WHERE target_id = 'a'`).Scan(&stored))
	require.LessOrEqual(t, stored, int64(bound))
	recs, err := s.Evidence(ctx, "a", time.Time{}, tsdbtest.T0, 0)
	require.NoError(t, err)
	require.Greater(t, len(recs), 3)
	require.Less(t, len(recs), 30)
	for i, rec := range recs {
		// The newest are kept, one a minute up to the last.
		require.Equal(t, tsdbtest.T0.Add(time.Duration(i-len(recs))*time.Minute).UTC(), rec.Start)
	}
	recs, err = s.Evidence(ctx, "b", time.Time{}, tsdbtest.T0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1, "another target's bound is its own")
}

// TestEvidenceStorageCost measures what a failed check's evidence costs on
// disk with a 4 KiB body excerpt (the default) and a typical 300-byte
// error page.
func TestEvidenceStorageCost(t *testing.T) {
	if raceDetector {
		t.Skip("a storage measurement, not a concurrency test")
	}
	page := func(n int) string { return strings.Repeat("<p>Service Unavailable</p>\n", n/27+1)[:n] }
	for _, tc := range []struct {
		name string
		body string
	}{
		{"300-byte error page", page(300)},
		{"4 KiB error page", page(4096)},
		{"4 KiB of noise", noise(1, 4096)},
	} {
		s := open(t, Options{Now: func() time.Time { return tsdbtest.T0.Add(48 * time.Hour) }})
		const n = 1 // bytesPerSample of 1 is the file's size
		size0 := bytesPerSample(t, s, n)
		const records = 500
		body := tc.body
		write := func(target string, evidence bool) float64 {
			var batch []prober.Result
			for i := range records {
				r := withEvidence(tsdbtest.Sample(target, time.Duration(i)*time.Second, time.Millisecond), body)
				r.Evidence.Headers = map[string][]string{"Content-Type": {"text/html"}, "Server": {"nginx"},
					"Date": {"Mon, 30 Nov 2026 15:00:00 GMT"}, "Retry-After": {"120"}, "Set-Cookie": {"<secret>"}}
				if !evidence {
					r.Evidence = nil
				}
				batch = append(batch, r)
			}
			require.NoError(t, s.WriteSamples(context.Background(), batch))
			return bytesPerSample(t, s, n)
		}
		size1 := write("plain", false)
		size2 := write("ev", true)
		per := ((size2 - size1) - (size1 - size0)) / records
		t.Logf("evidence with a %s: %.0f bytes per record on top of its sample", tc.name, per)
		require.Less(t, per, float64(len(body))*1.2+600, "evidence costs at most about its own size")
	}
}

// TestWriteEvidenceAlone: evidence written without its samples (they went
// to InfluxDB) reads back and is pruned with the raw retention all the same.
func TestWriteEvidenceAlone(t *testing.T) {
	ctx := context.Background()
	clk := &clock{now: tsdbtest.T0}
	s := open(t, Options{Now: clk.Now, RawRetention: 24 * time.Hour})
	bad := withEvidence(tsdbtest.Sample("a", -time.Hour, time.Millisecond), "down")
	require.NoError(t, s.WriteEvidence(ctx, []prober.Result{bad, tsdbtest.Sample("a", 0, time.Millisecond)}))
	require.Zero(t, count(t, s, "a"), "no samples")
	recs, err := s.Evidence(ctx, "a", time.Time{}, tsdbtest.T0.Add(time.Hour), 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)

	clk.Set(tsdbtest.T0.Add(24 * time.Hour))
	_, err = s.Prune(ctx)
	require.NoError(t, err)
	recs, err = s.Evidence(ctx, "a", time.Time{}, tsdbtest.T0.Add(48*time.Hour), 0)
	require.NoError(t, err)
	require.Empty(t, recs)
}
