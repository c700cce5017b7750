package spool

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// permanentError marks a send error that retrying cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so Replay discards the record (counting its samples
// in upwatch_spool_rejected_samples_total) instead of retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// ReplayOptions tune Replay.
type ReplayOptions struct {
	// RetryMin and RetryMax bound the backoff after a failed send (default
	// 100ms and 10s).
	RetryMin, RetryMax time.Duration
}

// Replay sends the spool's records with send, oldest first, committing each
// one send accepted, until ctx ends or the spool is closed. A failed send is
// retried with capped exponential backoff and jitter; one wrapped with
// Permanent is discarded. While the spool is empty Replay waits for appends.
// Run one Replay per spool.
func (s *Spool) Replay(ctx context.Context, send func(context.Context, Record) error, o ReplayOptions) {
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(10*time.Second, o.RetryMin)
	}
	log := s.o.Logger
	delay := o.RetryMin
	var lastErr string
	failing := false
	sleep := func() bool {
		d := delay/2 + rand.N(delay/2+1)
		delay = min(2*delay, o.RetryMax)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		e, ok, err := s.Peek()
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil {
			if err.Error() != lastErr {
				log.Error("spool: read failed, retrying", "err", err)
				lastErr = err.Error()
			}
			if !sleep() {
				return
			}
			continue
		}
		if !ok {
			select {
			case <-s.data:
			case <-ctx.Done():
				return
			}
			continue
		}
		err = send(ctx, e.Record)
		switch {
		case err == nil:
			if failing {
				log.Info("spool: replay resumed", "waiting_samples", s.Stats().Samples)
				failing, lastErr = false, ""
			}
			delay = o.RetryMin
			err = s.Commit(e)
		case IsPermanent(err):
			log.Error("spool: the store refused spooled samples for good; discarded", "samples", e.Samples, "err", err)
			err = s.Reject(e)
		case ctx.Err() != nil:
			return
		default:
			failing = true
			if err.Error() != lastErr {
				log.Warn("spool: replay failed, retrying", "samples", e.Samples, "err", err)
				lastErr = err.Error()
			}
			if !sleep() {
				return
			}
			continue
		}
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil {
			log.Error("spool: commit failed", "err", err)
		}
	}
}
