package sqlite

import (
	"context"
	"time"
)

// checkpointLoop copies the write-ahead file into the database file every
// interval until ctx ends. SQLite's own automatic checkpoint runs inside
// the commit that crosses its threshold, on the single writer: at 250,000
// targets that commit held the writer for seconds every ~15 s (copying
// ~40 MB of pages and syncing the file), the write buffer filled, and
// every check waited for room in it. A PASSIVE checkpoint on a reader
// connection waits for no writer and no reader, so writes go on beside it;
// the writer starts the write-ahead file over once a checkpoint has copied
// all of it.
func (s *Store) checkpointLoop(ctx context.Context, every time.Duration) {
	defer close(s.checkpointDone)
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := s.checkpoint(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if err.Error() != lastErr { // log only when the error changes
				s.opts.Logger.Warn("tsdb checkpoint failed", "path", s.opts.Path, "err", err)
			}
			lastErr = err.Error()
		default:
			lastErr = ""
		}
	}
}

// checkpoint runs one PASSIVE checkpoint and reports how many frames of
// the write-ahead file are now in the database file.
func (s *Store) checkpoint(ctx context.Context) (copied int, err error) {
	var busy, frames int
	err = s.r.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	return copied, err
}
