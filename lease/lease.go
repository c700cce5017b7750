// Package lease elects one holder of a named lease kept in a shared store
// (the PostgreSQL registry), so that of several upwatch servers exactly one
// does a job at a time (alert evaluation and notification). Every
// acquisition gets a fencing token larger than any before it; writes made
// for the job carry the token and the store refuses those of a holder that
// has been deposed, so a late commit of a paused or partitioned process
// changes nothing.
package lease

import (
	"context"
	"errors"
	"time"
)

// Store keeps leases. Expiry is decided by the store's own clock (the
// database's now()), so the holders' clocks do not matter.
type Store interface {
	// Acquire takes the lease name for holder for ttl and returns its
	// token. A lease held by holder (the same ID) and not yet expired is
	// renewed and keeps its token; a free or expired one is taken with a
	// token one larger than the last. held is false (and token 0) while
	// another holder's lease lasts. The holder's URL is recorded with it.
	Acquire(ctx context.Context, name string, holder Holder, ttl time.Duration) (token int64, held bool, err error)
	// Release ends holder's lease now if it still holds it with token, so
	// another holder need not wait for it to expire.
	Release(ctx context.Context, name, holder string, token int64) error
}

// Holder is who takes a lease: ID names the process (unique per
// Elector); URL, if set, is where the other processes reach it (its
// advertised base URL), for what only the holder handles.
type Holder struct {
	ID, URL string
}

// ErrFenced is the error of a write refused because the writer's lease
// (its fencing token) is no longer the current one, or it holds none: it
// was made by a deposed holder, and nothing was changed.
var ErrFenced = errors.New("lease: write refused: this process no longer holds the lease (stale fencing token)")

// Token reports the fencing token under which writes are made now, and
// whether the lease is held at all.
type Token func() (token int64, held bool)
