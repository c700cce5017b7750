package sqlite

import (
	"testing"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

func BenchmarkZZCodecDay(b *testing.B) {
	g := newRealistic(1, 4)
	var rs []prober.Result
	for iv := 0; iv < 1440; iv++ {
		rs = append(rs, g.sample(0, iv))
	}
	h := tsdbtest.T0.Unix()
	data := encodeBlock(h, append([]prober.Result(nil), rs...))
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			encodeBlock(h, append([]prober.Result(nil), rs...))
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			decodeBlock("x", h, data)
		}
	})
}
