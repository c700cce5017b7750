package sqlite

import (
	"context"
)

// walBound is the size of write-ahead file past which the loop checkpoints
// on the writer itself (TRUNCATE), holding writes while it runs: PASSIVE
// checkpoints that never catch up with the writer (a slow disk, a reader
// that holds old pages) would otherwise let the file grow without end.
const walBound = 512 << 20

// checkpointOnce is the checkpoint loop's step (every CheckpointInterval).
// It copies the write-ahead file into the database file. SQLite's own
// automatic checkpoint runs inside the commit that crosses its threshold,
// on the single writer, copying pages and syncing the file: at 250,000
// targets every check was late for seconds at a time, about every 15 s,
// while the write buffer in front of the store was full (lag p99 0.2-0.4 s
// in one interval of three, 12-24 ms once checkpoints moved here). A PASSIVE
// checkpoint on a reader connection waits for no writer and no reader, so
// writes go on beside it. The writer starts the file over only once a
// checkpoint has copied all of it, so a checkpoint that the writer outran
// is followed at once by one for the little written meanwhile; past
// walBound the file is truncated on the writer.
func (s *Store) checkpointOnce(ctx context.Context) error {
	var frames, copied int
	for range 4 {
		var busy int
		if err := s.r.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
			return err
		}
		if copied >= frames {
			return nil
		}
	}
	if int64(frames)*s.pageSize <= s.walBound {
		return nil
	}
	s.opts.Logger.Warn("tsdb write-ahead file not caught up; checkpointing on the writer",
		"path", s.opts.Path, "bytes", int64(frames)*s.pageSize)
	if s.beforeTruncate != nil {
		s.beforeTruncate()
	}
	_, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}
