package registry_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/lease"
	"github.com/upwatch/upwatch/registry"
)

// leaseStores runs f on a fresh PostgreSQL registry (skipped without one)
// and on SQLite (single process: the lease works there too).
func leaseStores(t *testing.T, f func(t *testing.T, s *registry.Registry)) {
	t.Run("postgres", func(t *testing.T) {
		postgresBaseURL(t)
		t.Parallel()
		f(t, openPostgres(t, postgresSchemaURL(t)))
	})
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, openSQLite(t, filepath.Join(t.TempDir(), "registry.db")))
	})
}

// acquire asks for the lease and requires an answer.
func acquire(t *testing.T, s *registry.Registry, holder string, ttl time.Duration) (int64, bool) {
	t.Helper()
	token, held, err := s.Acquire(t.Context(), "alerting", lease.Holder{ID: holder}, ttl)
	require.NoError(t, err)
	return token, held
}

// Acquire, renew, expiry by the database's clock, and a token that grows
// with every acquisition, never with a renewal.
func TestLeaseAcquireRenewExpire(t *testing.T) {
	leaseStores(t, func(t *testing.T, s *registry.Registry) {
		const ttl = 300 * time.Millisecond
		tokA, held := acquire(t, s, "a", time.Minute)
		require.True(t, held)
		require.Equal(t, int64(1), tokA)
		_, held = acquire(t, s, "b", ttl)
		require.False(t, held, "a's lease lasts")
		tok, held := acquire(t, s, "a", ttl)
		require.True(t, held)
		require.Equal(t, tokA, tok, "a renewal keeps the token")

		// a stops renewing: once its lease expires b takes it, with a
		// larger token, and a's renewal is refused.
		var tokB int64
		require.Eventually(t, func() bool { tokB, held = acquire(t, s, "b", time.Minute); return held },
			30*time.Second, 20*time.Millisecond)
		require.Greater(t, tokB, tokA)
		_, held = acquire(t, s, "a", ttl)
		require.False(t, held, "a deposed holder does not renew")

		// Release hands it over at once; a stale token releases nothing.
		require.NoError(t, s.Release(t.Context(), "alerting", "b", tokA))
		_, held = acquire(t, s, "a", ttl)
		require.False(t, held, "a release with a stale token did nothing")
		require.NoError(t, s.Release(t.Context(), "alerting", "b", tokB))
		tok, held = acquire(t, s, "a", ttl)
		require.True(t, held)
		require.Greater(t, tok, tokB)

		// The same holder acquiring again after its lease expired gets a
		// new token: its old term is over. (A lease of 1ns has expired by
		// the next statement.)
		tok, held = acquire(t, s, "a", time.Nanosecond)
		require.True(t, held)
		var again int64
		require.Eventually(t, func() bool {
			again, held = acquire(t, s, "a", time.Nanosecond)
			return held && again != tok
		}, 30*time.Second, 5*time.Millisecond)
		require.Greater(t, again, tok)
	})
}

// LeaseHolder names the current holder and the URL it acquired with, and
// nobody once the lease has expired or been released.
func TestLeaseHolderURL(t *testing.T) {
	leaseStores(t, func(t *testing.T, s *registry.Registry) {
		ctx := t.Context()
		_, ok, err := s.LeaseHolder(ctx, "alerting")
		require.NoError(t, err)
		require.False(t, ok, "nobody holds a lease never taken")
		a := lease.Holder{ID: "a", URL: "http://10.0.0.1:8080"}
		tok, held, err := s.Acquire(ctx, "alerting", a, time.Minute)
		require.NoError(t, err)
		require.True(t, held)
		h, ok, err := s.LeaseHolder(ctx, "alerting")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, a, h)

		// A refused acquisition leaves the holder's URL alone.
		_, held, err = s.Acquire(ctx, "alerting", lease.Holder{ID: "b", URL: "http://10.0.0.2:8080"}, time.Minute)
		require.NoError(t, err)
		require.False(t, held)
		h, _, err = s.LeaseHolder(ctx, "alerting")
		require.NoError(t, err)
		require.Equal(t, a, h)

		require.NoError(t, s.Release(ctx, "alerting", "a", tok))
		_, ok, err = s.LeaseHolder(ctx, "alerting")
		require.NoError(t, err)
		require.False(t, ok, "a released lease has no holder")
		b := lease.Holder{ID: "b", URL: "https://b.example:8443"}
		_, held, err = s.Acquire(ctx, "alerting", b, time.Minute)
		require.NoError(t, err)
		require.True(t, held)
		h, _, err = s.LeaseHolder(ctx, "alerting")
		require.NoError(t, err)
		require.Equal(t, b, h)
	})
}

// Agent results are claimed only by the lease holder: a deposed holder's
// claim is refused and takes nothing, so the new holder takes them.
func TestFencedResultClaims(t *testing.T) {
	leaseStores(t, func(t *testing.T, s *registry.Registry) {
		ctx := t.Context()
		at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		keys := []registry.ResultKey{{TargetKey: "web", Location: "eu-west", Scheduled: at}}
		tokA, held := acquire(t, s, "a", 200*time.Millisecond)
		require.True(t, held)
		a := s.Fenced("alerting", func() (int64, bool) { return tokA, true }, nil)
		fresh, err := a.ClaimResults(ctx, keys[:0])
		require.NoError(t, err)
		require.Empty(t, fresh)

		var tokB int64
		require.Eventually(t, func() bool { tokB, held = acquire(t, s, "b", time.Minute); return held },
			30*time.Second, 20*time.Millisecond)
		_, err = a.ClaimResults(ctx, keys)
		require.ErrorIs(t, err, lease.ErrFenced)
		b := s.Fenced("alerting", func() (int64, bool) { return tokB, true }, nil)
		fresh, err = b.ClaimResults(ctx, keys)
		require.NoError(t, err)
		require.Equal(t, []bool{true}, fresh, "the deposed holder's refused claim took nothing")
	})
}

// Several servers racing for a free lease: exactly one wins.
func TestLeaseOneWinner(t *testing.T) {
	leaseStores(t, func(t *testing.T, s *registry.Registry) {
		var mu sync.Mutex
		winners := map[string]int64{}
		var wg sync.WaitGroup
		for _, h := range []string{"a", "b", "c", "d", "e"} {
			wg.Go(func() {
				token, held, err := s.Acquire(t.Context(), "alerting", lease.Holder{ID: h}, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if held {
					mu.Lock()
					winners[h] = token
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Len(t, winners, 1)
	})
}

func leaseNote(key string, at time.Time) alerting.Notification {
	return alerting.Notification{Key: key, Channel: alerting.ChannelWebhook, NextAttempt: at, CreatedAt: at,
		Message: notify.Message{Key: key, Kind: notify.KindDown, IncidentID: "inc-" + key, TargetID: "web"}}
}

// A deposed holder's late commit, claim and settle are refused and change
// nothing; the new holder's go through.
func TestFencedWritesOfDeposedHolderRefused(t *testing.T) {
	leaseStores(t, func(t *testing.T, s *registry.Registry) {
		ctx := t.Context()
		now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		tokA, held := acquire(t, s, "a", 200*time.Millisecond)
		require.True(t, held)
		a := s.Fenced("alerting", func() (int64, bool) { return tokA, true }, nil) // a believes it still leads
		st := alerting.NewState("web")
		st.Status = alerting.StatusUp
		require.NoError(t, a.CommitBatch(ctx, []alerting.Commit{{State: st, Queue: []alerting.Notification{leaseNote("n1", now)}}}))
		claimedByA, err := a.Claim(ctx, now, time.Minute, 10)
		require.NoError(t, err)
		require.Len(t, claimedByA, 1)
		require.NoError(t, a.Settle(ctx, "n1", alerting.NotificationPending, now, "provider down", now),
			"a holder settles its own claim")

		var tokB int64
		require.Eventually(t, func() bool { tokB, held = acquire(t, s, "b", time.Minute); return held },
			30*time.Second, 20*time.Millisecond)
		b := s.Fenced("alerting", func() (int64, bool) { return tokB, true }, nil)

		// a's late writes: refused, nothing changed.
		down := st
		down.Status = alerting.StatusDown
		err = a.CommitBatch(ctx, []alerting.Commit{{State: down, Incidents: []alerting.Incident{{ID: "inc-late", TargetID: "web", Start: now, Cause: "late"}},
			Queue: []alerting.Notification{leaseNote("late", now)}}})
		require.ErrorIs(t, err, lease.ErrFenced)
		_, err = a.Claim(ctx, now, time.Minute, 10)
		require.ErrorIs(t, err, lease.ErrFenced)
		states, err := s.LoadStates(ctx)
		require.NoError(t, err)
		require.Equal(t, alerting.StatusUp, states["web"].Status, "the deposed commit changed nothing")
		incs, err := s.Incidents(ctx, registry.IncidentQuery{})
		require.NoError(t, err)
		require.Empty(t, incs)
		notes, err := s.Notifications(ctx, registry.NotificationQuery{})
		require.NoError(t, err)
		require.Len(t, notes, 1, "the deposed commit queued nothing")

		// b claims n1 (a settled it back to pending); a's late settle of
		// it is refused: it is b's to send now.
		claimedByB, err := b.Claim(ctx, now, time.Minute, 10)
		require.NoError(t, err)
		require.Len(t, claimedByB, 1)
		err = a.Settle(ctx, "n1", alerting.NotificationSent, time.Time{}, "", now)
		require.ErrorIs(t, err, lease.ErrFenced)
		require.NoError(t, a.Defer(ctx, "n1", now.Add(time.Hour)))
		n, err := s.Notifications(ctx, registry.NotificationQuery{})
		require.NoError(t, err)
		require.Equal(t, alerting.NotificationPending, n[0].Status)
		require.Equal(t, 2, n[0].Attempts, "a's defer gave back none of b's attempt")
		require.NoError(t, b.Settle(ctx, "n1", alerting.NotificationSent, time.Time{}, "", now))
		require.NoError(t, b.CommitBatch(ctx, []alerting.Commit{{State: down}}))

		// A holder that knows it lost the lease writes nothing at all.
		gone := s.Fenced("alerting", func() (int64, bool) { return 0, false }, nil)
		require.ErrorIs(t, gone.CommitBatch(ctx, []alerting.Commit{{State: st}}), lease.ErrFenced)
	})
}
