package spool

import (
	"context"
	"testing"
)

// BenchmarkReplay reads and commits 200 records of 500 samples (~175 KB
// each, the size of a line-protocol batch) from a spool on disk.
func BenchmarkReplay(b *testing.B) {
	rec := Record{Samples: 500, Data: make([]byte, 500*350)}
	total := 0
	for b.Loop() {
		b.StopTimer()
		s, err := Open(Options{Dir: b.TempDir(), MaxBytes: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		for range 200 {
			if err := s.Append(context.Background(), rec); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		for {
			e, ok, err := s.Peek()
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
			if err := s.Commit(e); err != nil {
				b.Fatal(err)
			}
			total += e.Samples
		}
		b.StopTimer()
		_ = s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkAppend appends (with fsync) batches of 500 samples.
func BenchmarkAppend(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir(), MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rec := Record{Samples: 500, Data: make([]byte, 500*350)}
	n := 0
	for b.Loop() {
		if err := s.Append(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
		n += rec.Samples
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "samples/s")
}
