package wal

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

// encodeResult must be json.Marshal byte for byte: the log is read back
// with json.Unmarshal, and logs written before it must read the same.
func TestEncodeResult(t *testing.T) {
	start := time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.UTC)
	cases := []prober.Result{
		{},
		{TargetID: "k1", Target: "web", Kind: "http", Location: "local", Start: start, Duration: 12 * time.Millisecond,
			Phases: prober.Phases{DNS: 1, Connect: 2, TLS: 3, TTFB: 4, Transfer: 5}, Success: true, StatusCode: 200,
			TLSExpiry: start.Add(90 * 24 * time.Hour), BodyBytes: 1234, RemoteAddr: "127.0.0.1:8080"},
		{TargetID: `q"u\ote`, Target: "<b>&amp;</b>", Kind: "tcp", Location: "zürich", Start: start.In(time.FixedZone("odd", -(23*3600 + 59*60))),
			ErrorClass: prober.ClassTimeout, Error: "line\nbreak\ttab\x00nul\u2028sep \xff bad utf-8 \b\f", Duration: -1},
		{Start: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", 14*3600)), TLSExpiry: time.Unix(0, 0)},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aZ09-_./:\"\\<>&\n\x01é€\u2028\U0001F600")
	str := func() string {
		r := make([]rune, rng.IntN(12))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(r)
	}
	for range 500 {
		cases = append(cases, prober.Result{TargetID: str(), Target: str(), Kind: str(), Location: str(),
			Start:    time.Unix(rng.Int64N(1<<37)-1<<35, rng.Int64N(1e9)).In(time.FixedZone("z", rng.IntN(50000)-25000)),
			Duration: time.Duration(rng.Int64()), Phases: prober.Phases{DNS: time.Duration(rng.Int64N(1e9))},
			Success: rng.IntN(2) == 0, ErrorClass: prober.ErrorClass(str()), Error: str(), StatusCode: rng.IntN(600),
			BodyBytes: rng.Int64N(3) - 1, RemoteAddr: str()})
	}
	// Every field set, the nested ones too: a field added to Result and
	// not to encodeResult fails here.
	full := cases[1]
	full.Scheduled = start.Add(-time.Second)
	full.ICMP = &prober.ICMPStats{Sent: 3, Received: 2}
	full.GRPC = &prober.GRPCStats{Code: 14, ServingStatus: "NOT_SERVING"}
	full.HTTPVersion, full.Redirects, full.ContentLength, full.TLSVersion = "HTTP/1.1", 2, -1, "TLS 1.3"
	full.LastChainExpiry, full.FailedDueToRegex = start.Add(time.Hour), true
	full.Evidence = &prober.Evidence{}
	full.ErrorClass, full.Error = prober.ClassStatus, "status 503"
	v := reflect.ValueOf(full)
	for i := range v.NumField() {
		require.False(t, v.Field(i).IsZero(), "set Result.%s in this case, so its encoding is checked", v.Type().Field(i).Name)
	}
	cases = append(cases, full)
	for i, r := range cases {
		want, werr := json.Marshal(r)
		got, err := encodeResult(r)
		require.NoError(t, werr)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "case %d", i)
	}
	_, err := encodeResult(prober.Result{Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	require.Error(t, err, "a year json cannot write")
}

// BenchmarkEncodeResult compares the log's encoder with json.Marshal on a
// typical successful HTTP result.
//
//	go test -run '^$' -bench EncodeResult -benchmem ./tsdb/wal/
func BenchmarkEncodeResult(b *testing.B) {
	start := time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.UTC)
	r := prober.Result{TargetID: "scale-000123", Target: "scale-000123", Kind: "http", Location: "local", Start: start,
		Duration: 1200 * time.Microsecond, Phases: prober.Phases{Connect: 100 * time.Microsecond, TTFB: 900 * time.Microsecond, Transfer: 10},
		Success: true, StatusCode: 200, BodyBytes: 2, RemoteAddr: "127.0.0.1:40000"}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encodeResult", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := encodeResult(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
