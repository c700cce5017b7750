package sqlite

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// roundTrip encodes rs as a block of hour and decodes it, and checks the
// samples come back exactly, in (start, location) order.
func roundTrip(t *testing.T, hour int64, rs []prober.Result) []byte {
	t.Helper()
	want := make([]prober.Result, len(rs))
	for i, r := range rs {
		want[i] = tsdbtest.Normalize(r)
	}
	slices.SortFunc(want, sampleLess)
	data := encodeBlock(hour, slices.Clone(rs))
	got, err := decodeBlock(rs[0].TargetID, hour, data)
	require.NoError(t, err)
	require.Equal(t, want, got)
	return data
}

func TestBlockRoundTrip(t *testing.T) {
	hour := hourOf(tsdbtest.T0)
	full := tsdbtest.Sample("a", 0, 123456789*time.Nanosecond)
	zero := prober.Result{TargetID: "a", Start: tsdbtest.T0} // every other field zero
	long := tsdbtest.Failed(tsdbtest.Sample("a", 59*time.Minute+59*time.Second+999999999, time.Hour))
	long.Error = strings.Repeat("ü…x", 400)
	long.Target = strings.Repeat("n", 5000)
	long.RemoteAddr = "[2001:db8::1]:443"
	long.TLSExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC) // "no expiry" in X.509
	odd := tsdbtest.Sample("a", time.Minute+7, 1)
	odd.TLSExpiry = time.Date(1950, 1, 1, 0, 0, 0, 123, time.UTC) // before 1970, with nanoseconds
	odd.StatusCode, odd.BodyBytes = -1, math.MinInt64
	extreme := tsdbtest.Sample("a", 2*time.Minute, math.MaxInt64)
	extreme.Phases = prober.Phases{DNS: math.MaxInt64, Connect: math.MinInt64, TLS: -1, TTFB: 1, Transfer: math.MaxInt64}
	extreme.Location = ""

	for name, rs := range map[string][]prober.Result{
		"one full":              {full},
		"one zero":              {zero},
		"long strings":          {long, full},
		"odd values":            {odd, extreme, zero},
		"same start, locations": {withLoc(full, "b"), withLoc(full, "a"), withLoc(full, "")},
	} {
		t.Run(name, func(t *testing.T) { roundTrip(t, hour, rs) })
	}

	t.Run("fuzz", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		strs := []string{"", "a", "eu-west", "ünïcode", strings.Repeat("z", 300), "192.0.2.1:80"}
		pick := func() string { return strs[rng.IntN(len(strs))] }
		dur := func() time.Duration {
			switch rng.IntN(4) {
			case 0:
				return 0
			case 1:
				return time.Duration(rng.Int64())
			default:
				return time.Duration(rng.Int64N(int64(time.Second)))
			}
		}
		for range 200 {
			seen := map[string]bool{}
			var rs []prober.Result
			for range 1 + rng.IntN(150) {
				r := prober.Result{
					TargetID: "t", Target: pick(), Kind: pick(), Location: pick(),
					Start:    tsdbtest.T0.Add(time.Duration(rng.Int64N(int64(time.Hour)))),
					Duration: dur(), Phases: prober.Phases{DNS: dur(), Connect: dur(), TLS: dur(), TTFB: dur(), Transfer: dur()},
					Success: rng.IntN(2) == 0, ErrorClass: prober.ErrorClass(pick()), Error: pick(),
					StatusCode: rng.IntN(600), BodyBytes: rng.Int64() - math.MaxInt64/2, RemoteAddr: pick(),
				}
				if rng.IntN(3) > 0 {
					r.TLSExpiry = time.Unix(rng.Int64N(1<<36)-1<<35, rng.Int64N(2)*rng.Int64N(1e9))
				}
				k := r.Start.String() + r.Location
				if !seen[k] {
					seen[k] = true
					rs = append(rs, r)
				}
			}
			roundTrip(t, hour, rs)
		}
	})
}

func withLoc(r prober.Result, loc string) prober.Result {
	r.Location = loc
	return r
}

// TestBlockCorrupt: a damaged block is an error, never a panic or a huge
// allocation.
func TestBlockCorrupt(t *testing.T) {
	hour := hourOf(tsdbtest.T0)
	var rs []prober.Result
	for i := range 60 {
		rs = append(rs, tsdbtest.Sample("a", time.Duration(i)*time.Minute, time.Duration(i)*time.Millisecond))
	}
	data := encodeBlock(hour, rs)
	_, err := decodeBlock("a", hour, nil)
	require.ErrorIs(t, err, errCorruptBlock)
	_, err = decodeBlock("a", hour, append([]byte{99}, data[1:]...))
	require.ErrorIs(t, err, errCorruptBlock)
	for i := 1; i < len(data); i++ {
		for _, b := range []byte{0, 0xff, data[i] ^ 1} {
			bad := slices.Clone(data)
			bad[i] = b
			_, _ = decodeBlock("a", hour, bad) // must not panic
		}
		_, err := decodeBlock("a", hour, data[:i])
		require.Error(t, err, "truncated at %d", i)
	}
}

// TestBlockSize: a realistic hour (60 checks of each of 200 targets)
// takes under 22 bytes per sample in its blocks, leaving room within 24 for the rest of the file (index, rollups).
func TestBlockSize(t *testing.T) {
	g := newRealistic(200, 3)
	hour := hourOf(tsdbtest.T0)
	total, n := 0, 0
	for i := range g.targets {
		var rs []prober.Result
		for iv := range 60 {
			rs = append(rs, g.sample(i, iv))
		}
		// Samples whose jittered start falls into the next hour are left
		// out here.
		rs = slices.DeleteFunc(rs, func(r prober.Result) bool { return hourOf(r.Start) != hour })
		total += len(roundTrip(t, hour, rs))
		n += len(rs)
	}
	perSample := float64(total) / float64(n)
	t.Logf("blocks: %.2f bytes per sample", perSample)
	require.Less(t, perSample, 22.0)
}

// TestDecodeBlockV1 decodes a block the version 1 encoder wrote (kept in
// testdata, with the samples it holds as JSON): blocks on disk stay
// readable whatever the encoder writes today.
func TestDecodeBlockV1(t *testing.T) {
	data, err := os.ReadFile("testdata/block-v1.bin")
	require.NoError(t, err)
	js, err := os.ReadFile("testdata/block-v1.json")
	require.NoError(t, err)
	var want []prober.Result
	require.NoError(t, json.Unmarshal(js, &want))
	require.Equal(t, byte(1), data[0], "a version 1 block")
	got, err := decodeBlock(want[0].TargetID, hourOf(tsdbtest.T0), data)
	require.NoError(t, err)
	for i := range want {
		want[i] = tsdbtest.Normalize(want[i])
	}
	require.Len(t, got, 69)
	require.Equal(t, want, got)
}
