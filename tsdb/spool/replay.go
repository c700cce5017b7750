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
	// InFlight is how many records Replay sends at once (default 1: one
	// after the other). With more, send is called concurrently and records
	// may reach the store out of order, but they are still committed in
	// order.
	InFlight int
}

// slot is a record Replay has read and not yet committed.
type slot struct {
	e     Entry
	err   error // send's answer, once done
	state slotState
}

type slotState int

const (
	sending slotState = iota
	sent              // accepted, or refused for good: ready to commit
	failed            // to be sent again after the backoff
)

// Replay sends the spool's records with send, oldest first, until ctx ends
// or the spool is closed. Up to o.InFlight records are sent at once; a
// record is committed once send accepted it and every record before it is
// committed, so the spool's cursor never passes a record that was not
// written, and a crash replays at most InFlight records again. A failed
// send stops new ones; once those in flight have answered, the failed ones
// are sent again after a capped exponential backoff with jitter. A record
// whose send failed with a Permanent error is discarded. While the spool is
// empty Replay waits for appends. Run one Replay per spool.
func (s *Spool) Replay(ctx context.Context, send func(context.Context, Record) error, o ReplayOptions) {
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(10*time.Second, o.RetryMin)
	}
	o.InFlight = max(o.InFlight, 1)
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

	var pending []*slot // read and not committed, in spool order
	results := make(chan *slot, o.InFlight)
	inflight := 0
	halted := false // a send failed: start no new one until the retry
	launch := func(sl *slot) {
		sl.state = sending
		inflight++
		go func() {
			sl.err = send(ctx, sl.e.Record)
			results <- sl
		}()
	}
	receive := func(sl *slot) {
		inflight--
		switch err := sl.err; {
		case err == nil:
			sl.state = sent
			if !halted {
				if failing {
					log.Info("spool: replay resumed", "waiting_samples", s.Stats().Samples)
					failing, lastErr = false, ""
				}
				delay = o.RetryMin
			}
		case IsPermanent(err):
			sl.state = sent
		case ctx.Err() != nil:
			sl.state = failed
		default:
			sl.state = failed
			halted, failing = true, true
			if err.Error() != lastErr {
				log.Warn("spool: replay failed, retrying", "samples", sl.e.Samples, "err", err)
				lastErr = err.Error()
			}
		}
	}
	// settle commits the records at the head of pending that are done;
	// false means the spool is closed.
	settle := func() bool {
		for len(pending) > 0 && pending[0].state == sent {
			sl := pending[0]
			pending = pending[1:]
			var err error
			if sl.err != nil {
				log.Error("spool: the store refused spooled samples for good; discarded", "samples", sl.e.Samples, "err", sl.err)
				err = s.Reject(sl.e)
			} else {
				err = s.Commit(sl.e)
			}
			if errors.Is(err, ErrClosed) {
				return false
			}
			if err != nil {
				log.Error("spool: commit failed", "err", err)
			}
		}
		return true
	}
	// Never return with a send still running.
	defer func() {
		for inflight > 0 {
			receive(<-results)
		}
		settle()
	}()

	for ctx.Err() == nil {
		if !settle() {
			return
		}
		if halted && inflight == 0 {
			if !sleep() {
				return
			}
			halted = false
			for _, sl := range pending {
				if sl.state == failed {
					launch(sl)
				}
			}
		}
		for !halted && len(pending) < o.InFlight {
			var e Entry
			var ok bool
			var err error
			if len(pending) == 0 {
				e, ok, err = s.Peek()
			} else {
				e, ok, err = s.Next(pending[len(pending)-1].e)
			}
			if errors.Is(err, ErrClosed) {
				return
			}
			if err != nil { // from Peek: nothing is in flight
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
				break
			}
			sl := &slot{e: e}
			pending = append(pending, sl)
			launch(sl)
		}
		if inflight == 0 { // the spool is empty
			select {
			case <-s.data:
			case <-ctx.Done():
				return
			}
			continue
		}
		receive(<-results)
	}
}
