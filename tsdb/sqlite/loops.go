package sqlite

import (
	"context"
	"time"
)

// background runs step every interval (and at once if atStart) until ctx
// ends, and then closes done. A failure is logged ("tsdb <what> failed")
// only when its message changes: a lasting one, such as a full disk, logs
// once.
func (s *Store) background(ctx context.Context, every time.Duration, atStart bool, what string, done chan struct{}, step func(context.Context) error) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	if !atStart && !wait() {
		return
	}
	var lastErr string
	for {
		err := step(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if err.Error() != lastErr {
				s.opts.Logger.Warn("tsdb "+what+" failed", "path", s.opts.Path, "err", err)
			}
			lastErr = err.Error()
		default:
			lastErr = ""
		}
		if !wait() {
			return
		}
	}
}

// prune is the retention loop's step: at start, then every PruneInterval.
func (s *Store) prune(ctx context.Context) error {
	n, err := s.Prune(ctx)
	if err == nil && n > 0 {
		s.opts.Logger.Info("tsdb retention pruned", "path", s.opts.Path, "deleted", n)
	}
	return err
}

// compact is the compaction loop's step: at start (hours a crash or an
// older version left in rows), then every CompactInterval.
func (s *Store) compact(ctx context.Context) error {
	n, err := s.Compact(ctx)
	if err == nil && n > 0 {
		s.opts.Logger.Debug("tsdb compacted", "path", s.opts.Path, "samples", n)
	}
	return err
}
