package wal

import (
	"context"
	"testing"
	"time"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/tsdbtest"
)

// BenchmarkAppend appends HTTP results one at a time, as the write buffer
// does for every check, committing them in batches as the store takes
// them; one op is one Append.
func BenchmarkAppend(b *testing.B) {
	w, err := Open(Options{Dir: b.TempDir(), MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	if _, err := w.Replay(ctx, 0, func(context.Context, []prober.Result) error { return nil }); err != nil {
		b.Fatal(err)
	}
	r := tsdbtest.Sample("t0012345-9e3779b1", 0, 123*time.Millisecond)
	r.Target, r.HTTPVersion = "api-t0012345-9e3779b1.example.com", "HTTP/1.1"
	seqs := make([]uint64, 0, 2000)
	b.ReportAllocs()
	for b.Loop() {
		r.Start = r.Start.Add(time.Millisecond)
		seq, err := w.Append(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		if seqs = append(seqs, seq); len(seqs) == cap(seqs) {
			if err := w.Commit(seqs); err != nil {
				b.Fatal(err)
			}
			seqs = seqs[:0]
		}
	}
}
