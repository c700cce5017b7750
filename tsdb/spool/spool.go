// Package spool is a bounded, durable, append-only queue of records on disk.
// The InfluxDB backend puts batches it cannot deliver here and replays them,
// oldest first, when the server is back.
//
// The spool is a directory of segment files named by a growing sequence
// number (00000000000000000001.seg, …). A segment starts with an 8-byte magic
// and holds framed records:
//
//	uint32 length of body | uint32 CRC-32C of body | body
//	body = uint32 sample count | payload
//
// all big-endian. Append writes a whole frame and fsyncs before it returns.
// The read position is kept in the file "cursor" (segment, offset, CRC),
// written after every Commit without fsync: after a crash the spool may
// replay a few records again, never skip one. Segments are deleted once
// every record in them is committed.
//
// Open scans every segment. A torn or corrupt frame (a crash in the middle of
// an append, a bad disk) ends its segment: the file is truncated there and
// the loss is counted in upwatch_spool_corrupt_records_total.
//
// When a record does not fit in MaxBytes, the spool either drops the oldest
// segment (DropOldest, the default; its samples are counted in
// upwatch_spool_dropped_total) or makes Append wait for room (Block).
package spool

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// FullPolicy says what Append does when the spool is full.
type FullPolicy string

// Full policies.
const (
	// DropOldest deletes the oldest segment to make room, counting its
	// samples as dropped.
	DropOldest FullPolicy = "drop_oldest"
	// Block makes Append wait until replay frees room or its context ends.
	Block FullPolicy = "block"
)

// Defaults for Options.
const (
	DefaultMaxBytes        = 512 << 20
	DefaultMaxSegmentBytes = 16 << 20
	MinMaxBytes            = 64 << 10
)

const (
	magic      = "UPWSPL\x00\x01"
	headerLen  = int64(len(magic))
	frameHead  = 8 // length + CRC
	countLen   = 4
	cursorFile = "cursor"
	segSuffix  = ".seg"
)

// maxReusedFrame is the largest frame whose buffer Append keeps for the
// next: a write-ahead log appends one small frame per sample.
const maxReusedFrame = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors.
var (
	ErrClosed   = errors.New("spool closed")
	ErrTooLarge = errors.New("record larger than the spool")
)

// Options configure Open. Only Dir is required.
type Options struct {
	// Dir holds the segment files; it is created if missing.
	Dir string
	// MaxBytes bounds the segment files' total size (default 512 MiB, at
	// least 64 KiB).
	MaxBytes int64
	// SegmentBytes is the size at which a new segment is started (default
	// MaxBytes/8, at most 16 MiB). Room is made a segment at a time.
	SegmentBytes int64
	// Full is the policy when a record does not fit (default DropOldest).
	Full FullPolicy
	// DeferSync makes Append return once the record is written (it then
	// survives the process being killed) without fsyncing it: the caller
	// calls Sync, on its own group-commit schedule, to bound what a power
	// loss takes.
	DeferSync bool
	// Registerer receives the spool's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives recovery and drop messages (default: discard).
	Logger *slog.Logger
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("spool: no directory given")
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxBytes < MinMaxBytes {
		return fmt.Errorf("spool: max bytes %d is below the minimum %d", o.MaxBytes, MinMaxBytes)
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = min(o.MaxBytes/8, DefaultMaxSegmentBytes)
	}
	o.SegmentBytes = min(o.SegmentBytes, o.MaxBytes/4)
	switch o.Full {
	case "":
		o.Full = DropOldest
	case DropOldest, Block:
	default:
		return fmt.Errorf("spool: unknown full policy %q (want %s or %s)", o.Full, DropOldest, Block)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Record is one batch: its encoded payload and how many samples it holds.
type Record struct {
	Samples int
	Data    []byte
}

// Entry is a record read by Peek, to be passed to Commit.
type Entry struct {
	Record
	seg       uint64
	off, next int64
}

type segment struct {
	id      uint64
	size    int64 // bytes in the file, header included
	samples int64 // samples in all its records
	records int64
}

// Stats is the spool's content.
type Stats struct {
	Bytes   int64 // segment files on disk
	Samples int64 // samples not yet committed
	Records int64 // records not yet committed
}

// Spool is safe for concurrent use; records come out in append order.
type Spool struct {
	o Options

	mu       sync.Mutex
	closed   bool
	segs     []*segment // oldest first; the last one is appended to
	w        *os.File   // the last segment, open for writing (nil until needed)
	r        *os.File   // the first segment, open for reading
	rID      uint64     // which segment r is
	ra       *os.File   // a later segment, open for reading ahead (Next)
	raID     uint64     // which segment ra is
	readOff  int64      // next record to read in segs[0]
	readDone int64      // samples of segs[0] already committed
	readRecs int64      // records of segs[0] already committed
	cur      *os.File   // the cursor file
	wbuf     []byte     // frame buffer reused by appends up to maxReusedFrame
	bytes    int64
	samples  int64
	records  int64
	nextID   uint64

	data  chan struct{} // signalled after an append
	space chan struct{} // signalled after room is freed

	replayed, dropped, corrupt, rejected prometheus.Counter
}

// Open opens (creating if needed) the spool in o.Dir, recovering what a
// previous process left there.
func Open(o Options) (*Spool, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{
		o:     o,
		data:  make(chan struct{}, 1),
		space: make(chan struct{}, 1),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_spool_replayed_total",
			Help: "Samples replayed from the on-disk spool to the time-series store.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_spool_dropped_total",
			Help: "Samples dropped from the on-disk spool because it was full (policy drop_oldest).",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_spool_corrupt_records_total",
			Help: "Torn or corrupt spool records discarded when the spool was read.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_spool_rejected_samples_total",
			Help: "Spooled samples the store refused for good (for example a field type conflict) and that were discarded.",
		}),
	}
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if o.Registerer != nil {
		stat := func(f func(Stats) int64) func() float64 {
			return func() float64 { return float64(f(s.Stats())) }
		}
		o.Registerer.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "upwatch_spool_bytes", Help: "Size of the on-disk spool's segment files.",
			}, stat(func(st Stats) int64 { return st.Bytes })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "upwatch_spool_samples", Help: "Samples waiting in the on-disk spool to be replayed.",
			}, stat(func(st Stats) int64 { return st.Samples })),
			s.replayed, s.dropped, s.corrupt, s.rejected)
	}
	if s.records > 0 {
		s.signal(s.data)
	}
	return s, nil
}

func (s *Spool) segPath(id uint64) string {
	return filepath.Join(s.o.Dir, fmt.Sprintf("%020d%s", id, segSuffix))
}

// recover scans the directory: every segment is checked frame by frame and
// truncated at its first bad frame; the cursor says where reading resumes.
func (s *Spool) recover() error {
	ents, err := os.ReadDir(s.o.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, segSuffix) || e.IsDir() {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) > 0 {
		s.nextID = ids[len(ids)-1] + 1
	} else {
		s.nextID = 1
	}

	curSeg, curOff, curOK := s.readCursor()
	for _, id := range ids {
		if curOK && id < curSeg { // fully committed before a crash
			if err := os.Remove(s.segPath(id)); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
			continue
		}
		var resume int64 = -1
		if curOK && id == curSeg {
			resume = curOff
		}
		seg, done, doneRecs, err := s.scan(id, resume)
		if err != nil {
			return err
		}
		if seg == nil {
			continue
		}
		if len(s.segs) == 0 {
			s.readOff, s.readDone, s.readRecs = headerLen, 0, 0
			if done >= 0 {
				s.readOff, s.readDone, s.readRecs = curOff, done, doneRecs
			}
		}
		s.segs = append(s.segs, seg)
		s.bytes += seg.size
		s.samples += seg.samples
		s.records += seg.records
	}
	s.samples -= s.readDone
	s.records -= s.readRecs
	if len(s.segs) > 0 && s.records == 0 { // everything was committed
		for _, seg := range s.segs {
			if err := os.Remove(s.segPath(seg.id)); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
		}
		s.segs, s.bytes, s.readOff, s.readDone, s.readRecs = nil, 0, 0, 0, 0
	}
	s.cur, err = os.OpenFile(filepath.Join(s.o.Dir, cursorFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if s.samples > 0 {
		s.o.Logger.Info("spool holds samples from an earlier run; replaying",
			"samples", s.samples, "bytes", s.bytes, "segments", len(s.segs))
	}
	return nil
}

// scan checks segment id and returns it (nil if it holds no record and was
// removed). If resume >= 0 and is a record boundary, done and doneRecs are
// the samples and records before it; otherwise done is -1.
func (s *Spool) scan(id uint64, resume int64) (seg *segment, done, doneRecs int64, err error) {
	path := s.segPath(id)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("spool: %w", err)
	}
	defer f.Close()
	seg = &segment{id: id}
	done = -1
	br := bufio.NewReaderSize(f, 1<<20)
	hdr := make([]byte, headerLen)
	good := int64(0)
	bad := false
	if _, err := io.ReadFull(br, hdr); err != nil || string(hdr) != magic {
		bad = true
	} else {
		good = headerLen
		var fh [frameHead]byte
		for {
			if good == resume {
				done, doneRecs = seg.samples, seg.records
			}
			if _, err := io.ReadFull(br, fh[:]); err != nil {
				bad = err != io.EOF // a partial frame header is a torn write
				break
			}
			n := int64(binary.BigEndian.Uint32(fh[:4]))
			if n < countLen || n > s.o.MaxBytes {
				bad = true
				break
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(br, body); err != nil ||
				crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(fh[4:]) {
				bad = true
				break
			}
			seg.samples += int64(binary.BigEndian.Uint32(body))
			seg.records++
			good += frameHead + n
		}
	}
	if bad {
		s.corrupt.Inc()
		s.o.Logger.Warn("spool: torn or corrupt record discarded; segment truncated",
			"segment", path, "valid_bytes", good)
		if err := f.Truncate(good); err != nil {
			return nil, 0, 0, fmt.Errorf("spool: %w", err)
		}
	}
	if seg.records == 0 {
		if err := os.Remove(path); err != nil {
			return nil, 0, 0, fmt.Errorf("spool: %w", err)
		}
		return nil, -1, 0, nil
	}
	seg.size = good
	return seg, done, doneRecs, nil
}

func (s *Spool) readCursor() (seg uint64, off int64, ok bool) {
	b, err := os.ReadFile(filepath.Join(s.o.Dir, cursorFile))
	if err != nil || len(b) != 20 || crc32.Checksum(b[:16], castagnoli) != binary.BigEndian.Uint32(b[16:]) {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:])), true
}

func (s *Spool) writeCursor() error {
	var b [20]byte
	if len(s.segs) > 0 {
		binary.BigEndian.PutUint64(b[:], s.segs[0].id)
		binary.BigEndian.PutUint64(b[8:], uint64(s.readOff))
	} else {
		binary.BigEndian.PutUint64(b[:], s.nextID)
		binary.BigEndian.PutUint64(b[8:], uint64(headerLen))
	}
	binary.BigEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	_, err := s.cur.WriteAt(b[:], 0)
	return err
}

func (s *Spool) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Stats returns the spool's current content.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Bytes: s.bytes, Samples: s.samples, Records: s.records}
}

// Empty reports whether every record has been committed.
func (s *Spool) Empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records == 0
}

// Append adds rec and returns once it is on disk (fsynced, unless
// DeferSync). If the spool is full it drops the oldest segment or, with
// Block, waits for room until ctx ends.
func (s *Spool) Append(ctx context.Context, rec Record) error {
	_, err := s.AppendEntry(ctx, rec)
	return err
}

// AppendEntry is Append that also returns the record's entry, for a caller
// that commits records it never reads back.
func (s *Spool) AppendEntry(ctx context.Context, rec Record) (Entry, error) {
	frame := int64(frameHead + countLen + len(rec.Data))
	if frame+headerLen > s.o.MaxBytes {
		return Entry{}, fmt.Errorf("spool: %d bytes: %w", frame, ErrTooLarge)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			s.signal(s.space) // wake the next waiter too
			return Entry{}, ErrClosed
		}
		need := frame
		if s.needRotate(frame) {
			need += headerLen
		}
		if s.bytes+need <= s.o.MaxBytes {
			break
		}
		if s.o.Full == Block {
			s.mu.Unlock()
			select {
			case <-s.space:
			case <-ctx.Done():
				s.mu.Lock()
				return Entry{}, fmt.Errorf("spool full: %w", context.Cause(ctx))
			}
			s.mu.Lock()
			continue
		}
		if err := s.dropOldest(); err != nil {
			return Entry{}, err
		}
	}
	if s.needRotate(frame) {
		if err := s.rotate(); err != nil {
			return Entry{}, err
		}
	}
	buf := s.wbuf // WriteAt keeps none of it
	if int64(cap(buf)) < frame {
		buf = make([]byte, frame)
		if frame <= maxReusedFrame {
			s.wbuf = buf
		}
	}
	buf = buf[:frame]
	binary.BigEndian.PutUint32(buf, uint32(countLen+len(rec.Data)))
	binary.BigEndian.PutUint32(buf[frameHead:], uint32(rec.Samples))
	copy(buf[frameHead+countLen:], rec.Data)
	binary.BigEndian.PutUint32(buf[4:], crc32.Checksum(buf[frameHead:], castagnoli))
	seg := s.segs[len(s.segs)-1]
	if _, err := s.w.WriteAt(buf, seg.size); err != nil {
		_ = s.w.Truncate(seg.size)
		return Entry{}, fmt.Errorf("spool: append: %w", err)
	}
	if !s.o.DeferSync {
		if err := s.w.Sync(); err != nil {
			_ = s.w.Truncate(seg.size)
			return Entry{}, fmt.Errorf("spool: append: %w", err)
		}
	}
	e := Entry{Record: rec, seg: seg.id, off: seg.size, next: seg.size + frame}
	seg.size += frame
	seg.samples += int64(rec.Samples)
	seg.records++
	s.bytes += frame
	s.samples += int64(rec.Samples)
	s.records++
	s.signal(s.data)
	return e, nil
}

// Sync fsyncs what Append wrote (with DeferSync; otherwise every Append
// already did).
func (s *Spool) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.w == nil {
		return nil
	}
	if err := s.w.Sync(); err != nil {
		return fmt.Errorf("spool: sync: %w", err)
	}
	return nil
}

// needRotate reports whether a frame of this size goes to a new segment:
// there is no open one, or the open one holds records and would grow past
// SegmentBytes.
func (s *Spool) needRotate(frame int64) bool {
	if s.w == nil {
		return true
	}
	size := s.segs[len(s.segs)-1].size
	return size > headerLen && size+frame > s.o.SegmentBytes
}

// rotate starts a new segment for appends.
func (s *Spool) rotate() error {
	if s.w != nil {
		if s.o.DeferSync { // a closed segment is never synced later
			if err := s.w.Sync(); err != nil {
				return fmt.Errorf("spool: %w", err)
			}
		}
		if err := s.w.Close(); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
		s.w = nil
	}
	id := s.nextID
	path := s.segPath(id)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := f.Write([]byte(magic)); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(s.o.Dir)
	}
	if err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("spool: new segment: %w", err)
	}
	s.nextID++
	s.w = f
	if len(s.segs) == 0 {
		s.readOff, s.readDone, s.readRecs = headerLen, 0, 0
	}
	s.segs = append(s.segs, &segment{id: id, size: headerLen})
	s.bytes += headerLen
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// dropOldest deletes the first segment, counting its uncommitted samples as
// dropped.
func (s *Spool) dropOldest() error {
	if len(s.segs) == 0 {
		return fmt.Errorf("spool: nothing to drop: %w", ErrTooLarge)
	}
	seg := s.segs[0]
	lost, lostRecs := seg.samples-s.readDone, seg.records-s.readRecs
	if err := s.removeHead(); err != nil {
		return err
	}
	s.samples -= lost
	s.records -= lostRecs
	s.dropped.Add(float64(lost))
	s.o.Logger.Warn("spool full: dropped the oldest samples", "samples", lost)
	return nil
}

// removeHead deletes segs[0] and moves reading to the next segment.
func (s *Spool) removeHead() error {
	seg := s.segs[0]
	if s.r != nil && s.rID == seg.id {
		_ = s.r.Close()
		s.r = nil
	}
	if s.ra != nil && s.raID == seg.id {
		_ = s.ra.Close()
		s.ra = nil
	}
	if len(s.segs) == 1 && s.w != nil {
		_ = s.w.Close()
		s.w = nil
	}
	if err := os.Remove(s.segPath(seg.id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	s.segs = s.segs[1:]
	s.bytes -= seg.size
	s.readOff, s.readDone, s.readRecs = headerLen, 0, 0
	s.signal(s.space)
	return s.writeCursor()
}

// Peek returns the oldest uncommitted record without removing it; ok is
// false when the spool is empty. A record found corrupt on disk is skipped
// together with the rest of its segment, and counted.
func (s *Spool) Peek() (e Entry, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return Entry{}, false, ErrClosed
		}
		if s.records == 0 {
			return Entry{}, false, nil
		}
		seg := s.segs[0]
		if s.readOff >= seg.size { // committed to the end, but not removed yet
			if err := s.removeHead(); err != nil {
				return Entry{}, false, err
			}
			continue
		}
		if s.r == nil || s.rID != seg.id {
			if s.r != nil {
				_ = s.r.Close()
			}
			if s.r, err = os.Open(s.segPath(seg.id)); err != nil {
				s.r = nil
				return Entry{}, false, fmt.Errorf("spool: %w", err)
			}
			s.rID = seg.id
		}
		e, err = readAt(s.r, seg, s.readOff)
		if err == nil {
			return e, true, nil
		}
		// Unreadable from here on: count it and skip to the next segment.
		s.corrupt.Inc()
		lost, lostRecs := seg.samples-s.readDone, seg.records-s.readRecs
		s.o.Logger.Warn("spool: corrupt record; skipping the rest of its segment",
			"segment", s.segPath(seg.id), "offset", s.readOff, "samples", lost, "err", err)
		if err := s.removeHead(); err != nil {
			return Entry{}, false, err
		}
		s.samples -= lost
		s.records -= lostRecs
		s.dropped.Add(float64(lost))
	}
}

// readAt reads the record at off in seg, whose file is f.
func readAt(f *os.File, seg *segment, off int64) (Entry, error) {
	var fh [frameHead]byte
	if _, err := f.ReadAt(fh[:], off); err != nil {
		return Entry{}, err
	}
	n := int64(binary.BigEndian.Uint32(fh[:4]))
	if n < countLen || off+frameHead+n > seg.size {
		return Entry{}, errors.New("bad frame length")
	}
	body := make([]byte, n)
	if _, err := f.ReadAt(body, off+frameHead); err != nil {
		return Entry{}, err
	}
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(fh[4:]) {
		return Entry{}, errors.New("checksum mismatch")
	}
	return Entry{
		Record: Record{Samples: int(binary.BigEndian.Uint32(body)), Data: body[countLen:]},
		seg:    seg.id, off: off, next: off + frameHead + n,
	}, nil
}

// Next returns the record after prev (which Peek or Next returned) without
// committing anything, so a replayer can send several records at once and
// still commit them in order. ok is false when there is no record after prev
// yet, when prev is no longer in the spool (its segment was dropped), or when
// the next record cannot be read: Peek reports and skips that one once
// everything before it is committed.
func (s *Spool) Next(prev Entry) (e Entry, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Entry{}, false, ErrClosed
	}
	i := slices.IndexFunc(s.segs, func(seg *segment) bool { return seg.id == prev.seg })
	if i < 0 || (i == 0 && prev.off < s.readOff) {
		return Entry{}, false, nil
	}
	off := prev.next
	for off >= s.segs[i].size {
		if i++; i == len(s.segs) {
			return Entry{}, false, nil
		}
		off = headerLen
	}
	seg := s.segs[i]
	f, err := s.reader(seg.id)
	if err != nil {
		return Entry{}, false, nil
	}
	e, err = readAt(f, seg, off)
	if err != nil {
		return Entry{}, false, nil
	}
	return e, true, nil
}

// reader returns a file open for reading segment id: the head's reader, or
// the read-ahead one, (re)opened as needed.
func (s *Spool) reader(id uint64) (*os.File, error) {
	if s.r != nil && s.rID == id {
		return s.r, nil
	}
	if s.ra != nil && s.raID == id {
		return s.ra, nil
	}
	if s.ra != nil {
		_ = s.ra.Close()
		s.ra = nil
	}
	f, err := os.Open(s.segPath(id))
	if err != nil {
		return nil, err
	}
	s.ra, s.raID = f, id
	return f, nil
}

// Commit removes e, which Peek or Next returned, from the spool. Records are
// committed in order: if e is not the oldest uncommitted record (it was
// dropped in the meantime because the spool was full, or one before it is
// still uncommitted) Commit does nothing.
func (s *Spool) Commit(e Entry) error {
	return s.commit(e, s.replayed)
}

// Reject removes e like Commit, counting its samples as rejected rather than
// replayed: for a record the store refuses for good.
func (s *Spool) Reject(e Entry) error {
	return s.commit(e, s.rejected)
}

// CommitAll commits entries, in order, as Commit does one by one, writing
// the cursor once.
func (s *Spool) CommitAll(entries []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	moved := false
	for _, e := range entries {
		done, err := s.advance(e, s.replayed)
		if err != nil {
			return err
		}
		moved = moved || done
	}
	if !moved {
		return nil
	}
	return s.writeCursor()
}

func (s *Spool) commit(e Entry, c prometheus.Counter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if moved, err := s.advance(e, c); !moved || err != nil {
		return err
	}
	return s.writeCursor()
}

// advance moves the read position past e if e is the oldest uncommitted
// record, deleting the head segment once it is used up; it reports whether
// the cursor needs writing.
func (s *Spool) advance(e Entry, c prometheus.Counter) (bool, error) {
	for len(s.segs) > 1 && s.readOff >= s.segs[0].size { // used up, kept for appends
		if err := s.removeHead(); err != nil {
			return false, err
		}
	}
	if len(s.segs) == 0 || s.segs[0].id != e.seg || s.readOff != e.off {
		return false, nil
	}
	s.readOff = e.next
	s.readDone += int64(e.Samples)
	s.readRecs++
	s.samples -= int64(e.Samples)
	s.records--
	c.Add(float64(e.Samples))
	// A used-up segment goes once a later one exists or, unless the spool
	// is a write-ahead log (DeferSync) that would create a segment again
	// with the next append, once everything is committed.
	if s.readOff >= s.segs[0].size && (len(s.segs) > 1 || (s.records == 0 && !s.o.DeferSync)) {
		return false, s.removeHead() // writes the cursor
	}
	return true, nil
}

// Wait returns a channel that receives after records are appended; a
// replayer waits on it while the spool is empty.
func (s *Spool) Wait() <-chan struct{} { return s.data }

// Close syncs the cursor and closes the files; the records stay for the
// next Open. It is idempotent.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var err error
	if s.cur != nil {
		err = s.cur.Sync()
	}
	s.signal(s.space)
	return errors.Join(err, s.closeFiles())
}

func (s *Spool) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{s.w, s.r, s.ra, s.cur} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	s.w, s.r, s.ra, s.cur = nil, nil, nil, nil
	return errors.Join(errs...)
}

// ReplayedCounter is upwatch_spool_replayed_total, for tests that do not
// register the spool's metrics.
func (s *Spool) ReplayedCounter() prometheus.Counter { return s.replayed }

// Abandon closes the files without syncing the cursor or marking the spool
// closed: what a killed process leaves behind. For crash tests only.
func (s *Spool) Abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.closeFiles()
}
