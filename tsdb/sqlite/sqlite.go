// Package sqlite is the embedded time-series store: raw samples, hourly
// rollups and each target's newest start in one SQLite file (pure Go
// driver modernc.org/sqlite, WAL mode). Raw samples arrive as rows; once
// their hour has closed they are compacted into one block per target and
// hour, and once their UTC day has closed into one block per target and
// day (compact.go, block.go). It implements tsdb.Store and passes the
// tsdbtest contract suite, with and without compaction.
//
// Times come back in UTC. Sample start times are stored as Unix nanoseconds,
// so they must lie between the years 1678 and 2262.
package sqlite

import (
	"compress/flate"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upwatch/upwatch/internal/sqlitedb"
	"github.com/upwatch/upwatch/tsdb"
)

// Defaults for Options.
const (
	DefaultRawRetention    = 30 * 24 * time.Hour
	DefaultRollupRetention = 5 * 365 * 24 * time.Hour
	DefaultPruneInterval   = time.Hour
	DefaultCompactGrace    = 2 * time.Minute
	DefaultCompactInterval = time.Minute
	// DefaultCheckpointInterval: at 250,000 targets SQLite's write-ahead
	// file takes ~8,000 page writes a second; a checkpoint copies each
	// distinct page of them once.
	DefaultCheckpointInterval = 5 * time.Second
)

// Options configure Open. Only Path is required.
type Options struct {
	// Path is the database file; its directory is created if missing.
	Path string
	// RawRetention is how long raw samples are kept (default 30 days).
	RawRetention time.Duration
	// RollupRetention is how long hourly rollups are kept (default 5 years).
	RollupRetention time.Duration
	// PruneInterval is how often the background loop prunes (default 1h);
	// a negative value disables the loop, leaving Prune to the caller.
	PruneInterval time.Duration
	// CompactGrace is how long after an hour ends its raw samples wait
	// for late ones before they are compacted into blocks (default 2m).
	CompactGrace time.Duration
	// CompactInterval is how often the background loop compacts closed
	// hours (default 1m); a negative value disables the loop, leaving
	// Compact to the caller.
	CompactInterval time.Duration
	// CheckpointInterval is how often a background loop copies SQLite's
	// write-ahead file into the database file (default 5s), off the write
	// path; a negative value leaves it to SQLite, inside the commit that
	// crosses its threshold (for short-lived tools).
	CheckpointInterval time.Duration
	// EvidencePerTarget bounds the bytes of evidence kept per target
	// (default 4 MiB): the oldest goes first. Evidence also goes with
	// the raw retention.
	EvidencePerTarget int64
	// Logger receives retention messages (default: discard).
	Logger *slog.Logger
	// Now is the clock used for retention (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.RawRetention <= 0 {
		o.RawRetention = DefaultRawRetention
	}
	if o.RollupRetention <= 0 {
		o.RollupRetention = DefaultRollupRetention
	}
	if o.PruneInterval == 0 {
		o.PruneInterval = DefaultPruneInterval
	}
	if o.CompactGrace <= 0 {
		o.CompactGrace = DefaultCompactGrace
	}
	if o.CompactInterval == 0 {
		o.CompactInterval = DefaultCompactInterval
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.EvidencePerTarget <= 0 {
		o.EvidencePerTarget = DefaultEvidencePerTarget
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is the SQLite backend. It is safe for concurrent use.
type Store struct {
	opts Options
	// w is the single writer connection; r serves concurrent readers (WAL
	// lets them run beside the writer).
	w, r *sql.DB
	// wmu serialises writes: the prepared statements are used by one
	// batch at a time.
	wmu sync.Mutex
	wr  writer
	zw  *flate.Writer // compresses evidence, under wmu

	// blockHorizon is the newest hour (Unix s) any block holds: samples of
	// later hours cannot be in a block yet.
	blockHorizon atomic.Int64
	// oldestWritten is the oldest hour (Unix s) written since the last
	// compaction pass began, compactedCut the cut of the last pass that
	// succeeded: a pass with the same cut and nothing written before it
	// has nothing to do.
	oldestWritten, compactedCut atomic.Int64
	// mergedDayCut is the day (Unix s) before which the last pass merged
	// every day's hour blocks into day blocks.
	mergedDayCut atomic.Int64
	// latestMemo keeps, by target, the newest samples Latest last decoded
	// from a block (read.go).
	latestMu   sync.Mutex
	latestMemo map[string]latestInBlock
	// afterBlock, when set (by tests), runs after each block is written
	// inside the compaction transaction; an error aborts it.
	afterBlock func() error
	// beforeTruncate, when set (by tests), runs before the checkpoint loop
	// truncates the write-ahead file on the writer.
	beforeTruncate func()

	stop           context.CancelFunc
	loopDone       chan struct{}
	compactDone    chan struct{}
	checkpointDone chan struct{}
	// pageSize is the database's page size; walBound (walBound unless a
	// test sets it) the write-ahead file's size past which the checkpoint
	// loop holds the writer to truncate it.
	pageSize, walBound int64
	closeOnce          sync.Once
	closeErr           error
}

var _ tsdb.Store = (*Store)(nil)

// Open opens (creating if needed) the store at o.Path, brings its schema up to
// date and, unless disabled, starts the hourly retention loop and the
// compaction loop (which first compacts what an earlier run left) that
// Close stops.
func Open(ctx context.Context, o Options) (*Store, error) {
	o.defaults()
	if o.Path == "" {
		return nil, errors.New("sqlite store: no database path given")
	}
	if err := sqlitedb.CheckPath("sqlite store", o.Path); err != nil {
		return nil, err
	}
	s := &Store{opts: o}
	s.compactedCut.Store(math.MinInt64) // the first pass looks at everything
	s.mergedDayCut.Store(math.MinInt64)
	var err error
	// The writer syncs every commit (one fsync per batch): a nil error from
	// WriteSamples means the samples survive a power loss, so the
	// write-ahead log in front of the store may let go of them. With the
	// checkpoint loop, no connection checkpoints by itself (see
	// checkpointOnce); journal_size_limit gives the disk back after a
	// burst.
	autoCheckpoint := "wal_autocheckpoint(10000)"
	if o.CheckpointInterval > 0 {
		autoCheckpoint = "wal_autocheckpoint(0)"
	}
	if s.w, err = sqlitedb.Open(o.Path, 1, "cache_size(-32000)", autoCheckpoint, "synchronous(FULL)", "journal_size_limit(67108864)"); err != nil {
		return nil, sqlitedb.PathError("sqlite store", o.Path, err)
	}
	if s.r, err = sqlitedb.Open(o.Path, readConns, "cache_size(-32000)", autoCheckpoint); err != nil {
		_ = s.w.Close()
		return nil, sqlitedb.PathError("sqlite store", o.Path, err)
	}
	if err := s.init(ctx); err != nil {
		s.closeStatements()
		_ = s.w.Close()
		_ = s.r.Close()
		return nil, sqlitedb.PathError("sqlite store", o.Path, err)
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.loopDone = make(chan struct{})
	if o.PruneInterval > 0 {
		go s.background(loopCtx, o.PruneInterval, true, "retention", s.loopDone, s.prune)
	} else {
		close(s.loopDone)
	}
	s.compactDone = make(chan struct{})
	if o.CompactInterval > 0 {
		go s.background(loopCtx, o.CompactInterval, true, "compaction", s.compactDone, s.compact)
	} else {
		close(s.compactDone)
	}
	s.checkpointDone = make(chan struct{})
	if o.CheckpointInterval > 0 {
		go s.background(loopCtx, o.CheckpointInterval, false, "checkpoint", s.checkpointDone, s.checkpointOnce)
	} else {
		close(s.checkpointDone)
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if err := migrate(ctx, s.w); err != nil {
		return err
	}
	if err := s.loadBlockHorizon(ctx); err != nil {
		return err
	}
	s.walBound = walBound
	if err := s.w.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&s.pageSize); err != nil {
		return err
	}
	// Prepare the write statements now, so a bad one fails Open.
	c, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error { return s.wr.prepare(ctx, dc) })
}

// closeStatements closes the write statements on the writer connection.
func (s *Store) closeStatements() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	c, err := s.w.Conn(context.Background())
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.Raw(func(dc any) error { s.wr.close(dc); return nil })
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite store %q: %w", s.opts.Path, err)
	}
	return nil
}

// Close stops the retention loop and closes the database. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stop()
		<-s.loopDone
		<-s.compactDone
		<-s.checkpointDone
		s.closeStatements()
		s.closeErr = errors.Join(s.r.Close(), s.w.Close())
	})
	return s.closeErr
}
