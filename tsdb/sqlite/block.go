package sqlite

import (
	"bytes"
	"cmp"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/upwatch/upwatch/prober"
)

// A block holds one target's samples of one hour (or, once the day has
// closed, of one day: compact.go), column by column, so
// that what repeats from check to check (names, addresses, status, body
// size, certificate expiry) costs next to nothing and what varies (start
// jitter, phase timings) costs about its entropy:
//
//   - the strings (name, kind, location, error class, error, remote
//     address) go into one dictionary, DEFLATE-compressed; each string
//     column is then a column of dictionary indexes;
//   - every column of numbers (indexes, success, status code, body bytes,
//     TLS expiry, start deltas, timings) is coded on its own around its
//     median: a constant, runs, or Rice codes (rice.go), whichever is
//     shortest;
//   - starts are deltas from the sample before (the first from the
//     block's start): the interval plus the jitter of the scheduler;
//   - the total duration is stored as its excess over the sum of the
//     phases: the small gaps between them.
//
// Samples are encoded in (location, start) order, where one location's
// checks follow each other at the target's interval, and decoded in
// (start, location) order, the order reads return. Every value is kept
// exactly (times to the nanosecond). The first byte is the format
// version, the last four a CRC-32C of the rest.
const blockVersion = 1

// maxBlockSamples bounds the samples a block may claim (an hour block:
// 3600 checks a second apart from each of many locations; a day block
// holds at most maxDaySamples), so a damaged block that still passes its
// checksum cannot make the decoder allocate without bound.
const maxBlockSamples = 1 << 20

// castagnoli is the CRC-32 table of the checksum that ends every block:
// damage is an error, not wrong samples.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// flateWriters are reused: a new one allocates most of a megabyte.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestCompression) // the level is valid
	return w
}}

// maxBlockRaw bounds a block's inflated column section.
const maxBlockRaw = 1 << 30

var errCorruptBlock = errors.New("corrupt sample block")

// sampleLess orders samples as reads return them: by start, then location.
func sampleLess(a, b prober.Result) int {
	return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.Location, b.Location))
}

// encodeBlock encodes rs (one target's samples, no two with the same start
// and location; any order) relative to hour (Unix s of the hour's start).
// It reorders rs.
func encodeBlock(hour int64, rs []prober.Result) []byte {
	slices.SortFunc(rs, func(a, b prober.Result) int {
		return cmp.Or(strings.Compare(a.Location, b.Location), a.Start.Compare(b.Start))
	})
	var e blockEncoder
	e.dict = map[string]uint64{}
	n := len(rs)
	e.uvarint(uint64(n))

	// Strings: the dictionary first, then each column's runs.
	cols := [...]func(*prober.Result) string{
		func(r *prober.Result) string { return r.Target },
		func(r *prober.Result) string { return r.Kind },
		func(r *prober.Result) string { return r.Location },
		func(r *prober.Result) string { return string(r.ErrorClass) },
		func(r *prober.Result) string { return r.Error },
		func(r *prober.Result) string { return r.RemoteAddr },
	}
	var words []string
	idx := make([][]uint64, len(cols))
	for c, col := range cols {
		idx[c] = make([]uint64, n)
		for i := range rs {
			s := col(&rs[i])
			j, ok := e.dict[s]
			if !ok {
				j = uint64(len(words))
				e.dict[s] = j
				words = append(words, s)
			}
			idx[c][i] = j
		}
	}
	e.uvarint(uint64(len(words)))
	for _, w := range words {
		e.uvarint(uint64(len(w)))
		e.buf.WriteString(w)
	}
	var bits bitWriter
	for c := range cols {
		bits.column(idx[c])
	}
	vals := make([]uint64, n)
	for _, f := range fields {
		for i := range rs {
			vals[i] = f(&rs[i], hour)
		}
		bits.column(vals)
	}
	// Starts as deltas from the one before (the first from the hour's
	// start), timings as they are; each column Rice-coded around its median.
	prev := hour * 1e9
	for i := range rs {
		s := rs[i].Start.UnixNano()
		vals[i] = uint64(s - prev)
		prev = s
	}
	bits.column(vals)
	for _, f := range timings {
		for i := range rs {
			vals[i] = uint64(f(&rs[i]))
		}
		bits.column(vals)
	}

	var out bytes.Buffer
	out.Grow(e.buf.Len()/4 + 16)
	out.WriteByte(blockVersion)
	var z bytes.Buffer
	zw := flateWriters.Get().(*flate.Writer)
	zw.Reset(&z)
	_, _ = zw.Write(e.buf.Bytes()) // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	flateWriters.Put(zw)
	out.Write(binary.AppendUvarint(nil, uint64(z.Len())))
	out.Write(z.Bytes())
	out.Write(bits.bytes())
	return binary.BigEndian.AppendUint32(out.Bytes(), crc32.Checksum(out.Bytes(), castagnoli))
}

type blockEncoder struct {
	buf  bytes.Buffer
	dict map[string]uint64
	tmp  [binary.MaxVarintLen64]byte
}

func (e *blockEncoder) uvarint(v uint64) {
	e.buf.Write(binary.AppendUvarint(e.tmp[:0], v))
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// decodeBlock decodes a block of targetID's samples of the hour starting
// at hour (Unix s), in (start, location) order.
func decodeBlock(targetID string, hour int64, data []byte) ([]prober.Result, error) {
	if len(data) < 5 || data[0] != blockVersion {
		return nil, fmt.Errorf("%w: unknown version", errCorruptBlock)
	}
	sum := binary.BigEndian.Uint32(data[len(data)-4:])
	if data = data[:len(data)-4]; crc32.Checksum(data, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum", errCorruptBlock)
	}
	zlen, k := binary.Uvarint(data[1:])
	if k <= 0 || zlen > uint64(len(data)-1-k) {
		return nil, fmt.Errorf("%w: length", errCorruptBlock)
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(data[1+k:1+k+int(zlen)])), maxBlockRaw))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptBlock, err)
	}
	d := blockDecoder{b: raw}
	n := d.uvarint()
	bitsec := data[1+k+int(zlen):]
	if n > maxBlockSamples {
		return nil, fmt.Errorf("%w: %d samples", errCorruptBlock, n)
	}
	rs := make([]prober.Result, n)
	for i := range rs {
		rs[i].TargetID = targetID
	}
	words := make([]string, min(d.uvarint(), uint64(len(raw))))
	for i := range words {
		l := d.uvarint()
		words[i] = string(d.bytes(l))
	}
	if d.err != nil {
		return nil, d.err
	}
	if d.off != len(d.b) {
		return nil, fmt.Errorf("%w: %d trailing bytes", errCorruptBlock, len(d.b)-d.off)
	}
	bits := bitReader{buf: bitsec}
	vals := make([]uint64, n)
	for c := range 6 {
		bits.column(vals)
		for i := range rs {
			if vals[i] >= uint64(len(words)) {
				return nil, fmt.Errorf("%w: string %d", errCorruptBlock, vals[i])
			}
			w := words[vals[i]]
			switch c {
			case 0:
				rs[i].Target = w
			case 1:
				rs[i].Kind = w
			case 2:
				rs[i].Location = w
			case 3:
				rs[i].ErrorClass = prober.ErrorClass(w)
			case 4:
				rs[i].Error = w
			case 5:
				rs[i].RemoteAddr = w
			}
		}
	}
	for _, set := range fieldSetters {
		bits.column(vals)
		for i := range rs {
			set(&rs[i], hour, vals[i])
		}
	}
	bits.column(vals)
	prev := hour * 1e9
	for i := range rs {
		prev += int64(vals[i])
		rs[i].Start = time.Unix(0, prev).UTC()
	}
	for _, f := range timingFields {
		bits.column(vals)
		for i := range rs {
			*f(&rs[i]) = time.Duration(vals[i])
		}
	}
	if bits.err || len(bits.buf)-int(bits.off+7)/8 != 0 {
		return nil, fmt.Errorf("%w: timings", errCorruptBlock)
	}
	for i := range rs { // the duration was stored as the excess over the phases
		p := rs[i].Phases
		rs[i].Duration += p.DNS + p.Connect + p.TLS + p.TTFB + p.Transfer
	}
	slices.SortFunc(rs, sampleLess)
	return rs, nil
}

// blockDecoder reads what blockEncoder wrote; the first error sticks and
// every later read returns zeros.
type blockDecoder struct {
	b   []byte
	off int
	err error
}

func (d *blockDecoder) fail() {
	if d.err == nil {
		d.err = errCorruptBlock
	}
}

func (d *blockDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b[d.off:])
	if k <= 0 {
		d.fail()
		return 0
	}
	d.off += k
	return v
}

func (d *blockDecoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)-d.off) {
		d.fail()
		return nil
	}
	b := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

// timings are the timing columns after the starts: the total duration as
// its excess over the sum of the phases (small: the gaps between them),
// then the phases.
var timings = [...]func(r *prober.Result) time.Duration{
	func(r *prober.Result) time.Duration {
		p := r.Phases
		return r.Duration - (p.DNS + p.Connect + p.TLS + p.TTFB + p.Transfer)
	},
	func(r *prober.Result) time.Duration { return r.Phases.DNS },
	func(r *prober.Result) time.Duration { return r.Phases.Connect },
	func(r *prober.Result) time.Duration { return r.Phases.TLS },
	func(r *prober.Result) time.Duration { return r.Phases.TTFB },
	func(r *prober.Result) time.Duration { return r.Phases.Transfer },
}

// timingFields are the fields timings read, to decode into.
var timingFields = [...]func(r *prober.Result) *time.Duration{
	func(r *prober.Result) *time.Duration { return &r.Duration },
	func(r *prober.Result) *time.Duration { return &r.Phases.DNS },
	func(r *prober.Result) *time.Duration { return &r.Phases.Connect },
	func(r *prober.Result) *time.Duration { return &r.Phases.TLS },
	func(r *prober.Result) *time.Duration { return &r.Phases.TTFB },
	func(r *prober.Result) *time.Duration { return &r.Phases.Transfer },
}

// fields are the columns other than strings and timings, as uint64: what
// fieldSetters set back. The TLS expiry is 0 without one, else 1 +
// zigzag of its second from the hour, then its nanoseconds (nearly always
// 0: certificates carry whole seconds).
var fields = [...]func(r *prober.Result, hour int64) uint64{
	func(r *prober.Result, _ int64) uint64 { return b2u(r.Success) },
	func(r *prober.Result, _ int64) uint64 { return uint64(r.StatusCode) },
	func(r *prober.Result, _ int64) uint64 { return uint64(r.BodyBytes) },
	func(r *prober.Result, hour int64) uint64 {
		if r.TLSExpiry.IsZero() {
			return 0
		}
		return 1 + zigzag(r.TLSExpiry.Unix()-hour)
	},
	func(r *prober.Result, _ int64) uint64 { return uint64(r.TLSExpiry.Nanosecond()) },
}

var fieldSetters = [...]func(r *prober.Result, hour int64, v uint64){
	func(r *prober.Result, _ int64, v uint64) { r.Success = v != 0 },
	func(r *prober.Result, _ int64, v uint64) { r.StatusCode = int(int64(v)) },
	func(r *prober.Result, _ int64, v uint64) { r.BodyBytes = int64(v) },
	func(r *prober.Result, hour int64, v uint64) {
		if v != 0 {
			r.TLSExpiry = time.Unix(hour+unzigzag(v-1), 0).UTC()
		}
	},
	func(r *prober.Result, _ int64, v uint64) {
		if v != 0 {
			r.TLSExpiry = r.TLSExpiry.Add(time.Duration(v))
		}
	},
}
