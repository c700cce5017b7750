package sqlite

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// Timing columns are Rice-coded: each value's difference from the
// column's median, zigzagged to u, is written as u>>k in unary and the k
// low bits of u as they are, with k chosen per column to make the column
// shortest. Jittered timings cost about their entropy, not whole bytes;
// a value far from the median (a timeout among fast checks) escapes to
// its bit length and bits, so it costs at most 84 bits.

// riceEscape is the unary length at which a value is written in full.
const riceEscape = 20

type bitWriter struct {
	buf  []byte
	acc  uint64 // bits not yet in buf, the oldest highest
	nacc uint
}

// write appends the n (at most 64) low bits of v, highest first.
func (w *bitWriter) write(v uint64, n uint) {
	if n > 32 {
		w.write(v>>32, n-32)
		v, n = v&(1<<32-1), 32
	}
	if n < 64 {
		v &= 1<<n - 1
	}
	w.acc = w.acc<<n | v
	w.nacc += n
	for w.nacc >= 8 {
		w.nacc -= 8
		w.buf = append(w.buf, byte(w.acc>>w.nacc))
	}
}

func (w *bitWriter) bytes() []byte {
	if w.nacc > 0 {
		return append(w.buf, byte(w.acc<<(8-w.nacc)))
	}
	return w.buf
}

// full writes v as its bit length (7 bits) and its bits.
func (w *bitWriter) full(v uint64) {
	l := uint(bits.Len64(v))
	w.write(uint64(l), 7)
	w.write(v, l)
}

// Column modes: every value the median; Rice-coded differences from the
// median; runs of equal values (for columns that rarely change).
const (
	modeConst = iota
	modeRice
	modeRuns
)

// column writes vs (int64 values as uint64): the median and the mode
// (2 bits), then for modeRice k (6 bits) and each value's zigzagged
// difference from the median, Rice-coded; for modeRuns the number of
// runs and each run's difference from the median and length. It takes
// the mode that writes fewest bits.
func (w *bitWriter) column(vs []uint64) {
	if len(vs) == 0 {
		return
	}
	sorted := make([]int64, len(vs))
	for i, v := range vs {
		sorted[i] = int64(v)
	}
	slices.Sort(sorted)
	median := uint64(sorted[len(sorted)/2])
	w.full(zigzag(int64(median)))
	if sorted[0] == sorted[len(sorted)-1] {
		w.write(modeConst, 2)
		return
	}
	us := make([]uint64, len(vs))
	for i, v := range vs {
		us[i] = zigzag(int64(v - median))
	}
	// The best k lies near the bit length of the median difference (spikes
	// and timeouts would pull a mean away); a few either side cover the
	// rest.
	mid := slices.Clone(us)
	slices.Sort(mid)
	k0 := bits.Len64(mid[len(mid)/2])
	best, bestCost := uint(0), uint64(1<<63)
	for k := uint(max(k0-3, 0)); k <= uint(min(k0+3, 63)); k++ {
		var cost uint64
		for _, u := range us {
			if q := u >> k; q < riceEscape {
				cost += q + 1 + uint64(k)
			} else {
				cost += riceEscape + 7 + uint64(bits.Len64(u))
			}
		}
		if cost < bestCost {
			best, bestCost = k, cost
		}
	}
	runCost, runs := uint64(7+bits.Len64(uint64(len(us)))), 0
	for i := 0; i < len(us); {
		j := i + 1
		for j < len(us) && us[j] == us[i] {
			j++
		}
		runCost += uint64(14 + bits.Len64(us[i]) + bits.Len64(uint64(j-i)))
		runs++
		i = j
	}
	if runCost < bestCost+6 {
		w.write(modeRuns, 2)
		w.full(uint64(runs))
		for i := 0; i < len(us); {
			j := i + 1
			for j < len(us) && us[j] == us[i] {
				j++
			}
			w.full(us[i])
			w.full(uint64(j - i))
			i = j
		}
		return
	}
	w.write(modeRice, 2)
	w.write(uint64(best), 6)
	for _, u := range us {
		if q := u >> best; q < riceEscape {
			w.write(1<<(q+1)-2, uint(q)+1) // q ones and a zero
			w.write(u, best)
		} else {
			w.write(1<<riceEscape-1, riceEscape)
			w.full(u)
		}
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type bitReader struct {
	buf []byte
	off uint // in bits
	err bool
}

func (r *bitReader) read(n uint) uint64 {
	if n > 32 {
		hi := r.read(n - 32)
		return hi<<32 | r.read(32)
	}
	if r.err || r.off+n > uint(len(r.buf))*8 {
		r.err = true
		return 0
	}
	if n == 0 {
		return 0
	}
	v := r.peek() >> (64 - n)
	r.off += n
	return v
}

// peek returns the next 57 or more bits, the first highest, zeros past
// the end.
func (r *bitReader) peek() uint64 {
	i := r.off / 8
	var w uint64
	if i+8 <= uint(len(r.buf)) {
		w = binary.BigEndian.Uint64(r.buf[i:])
	} else {
		for j := range uint(8) {
			w <<= 8
			if i+j < uint(len(r.buf)) {
				w |= uint64(r.buf[i+j])
			}
		}
	}
	return w << (r.off % 8)
}

// unary reads ones up to a zero (consumed) or riceEscape of them and
// returns how many.
func (r *bitReader) unary() uint64 {
	if r.err {
		return 0
	}
	q := uint(min(bits.LeadingZeros64(^r.peek()), riceEscape))
	n := q
	if q < riceEscape {
		n++ // the zero
	}
	if r.off+n > uint(len(r.buf))*8 {
		r.err = true
		return 0
	}
	r.off += n
	return uint64(q)
}

func (r *bitReader) full() uint64 {
	l := uint(r.read(7))
	if l > 64 {
		r.err = true
		return 0
	}
	return r.read(l)
}

// column reads what bitWriter.column wrote into vs.
func (r *bitReader) column(vs []uint64) {
	if len(vs) == 0 {
		return
	}
	median := uint64(unzigzag(r.full()))
	switch r.read(2) {
	case modeConst:
		for i := range vs {
			vs[i] = median
		}
	case modeRuns:
		runs, i := r.full(), 0
		for ; runs > 0 && !r.err; runs-- {
			v, l := uint64(unzigzag(r.full()))+median, r.full()
			if l == 0 || l > uint64(len(vs)-i) {
				r.err = true
				return
			}
			for range l {
				vs[i] = v
				i++
			}
		}
		if i != len(vs) {
			r.err = true
		}
	case modeRice:
		k := uint(r.read(6))
		for i := range vs {
			q := r.unary()
			var u uint64
			if q == riceEscape {
				u = r.full()
			} else {
				u = q<<k | r.read(k)
			}
			vs[i] = uint64(unzigzag(u)) + median
		}
	default:
		r.err = true
	}
}
