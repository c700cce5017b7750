package lease_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/lease"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/registry/registrytest"
)

// server is one elector with its job's record.
type server struct {
	e       *lease.Elector
	reg     *prometheus.Registry
	leading atomic.Int64 // the token of the term running, 0 if none
	terms   atomic.Int32
	cancel  context.CancelFunc
	done    chan struct{}
}

func startServer(t *testing.T, store lease.Store, ttl, renew time.Duration) *server {
	t.Helper()
	s := &server{reg: prometheus.NewRegistry(), done: make(chan struct{})}
	var err error
	s.e, err = lease.New(lease.Options{Store: store, Name: "alerting", TTL: ttl, Renew: renew, Registerer: s.reg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.e.Run(ctx, func(ctx context.Context, token int64) {
			s.terms.Add(1)
			s.leading.Store(token)
			<-ctx.Done()
			s.leading.Store(0)
		})
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() { s.cancel(); <-s.done }

// pausable wraps a store; while paused, calls hang until their context
// ends, as on a network partition.
type pausable struct {
	lease.Store
	paused atomic.Bool
}

func (p *pausable) Acquire(ctx context.Context, name string, holder lease.Holder, ttl time.Duration) (int64, bool, error) {
	if p.paused.Load() {
		<-ctx.Done()
		return 0, false, ctx.Err()
	}
	return p.Store.Acquire(ctx, name, holder, ttl)
}

func openStore(t *testing.T) *registry.Registry {
	t.Helper()
	s, err := registry.OpenPostgres(t.Context(), registry.PostgresOptions{URL: registrytest.PostgresSchemaURL(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Exactly one of two servers leads; when the leader is cut off from the
// database it stops leading before its lease expires, and the other takes
// over with a larger token; a clean stop hands over at once.
func TestElectorHandOver(t *testing.T) {
	store := openStore(t)
	const ttl, renew = 1500 * time.Millisecond, 300 * time.Millisecond
	cut := &pausable{Store: store}
	a := startServer(t, cut, ttl, renew)
	require.Eventually(t, func() bool { return a.leading.Load() != 0 }, 30*time.Second, 10*time.Millisecond)
	b := startServer(t, store, ttl, renew)
	tokA, held := a.e.Token()
	require.True(t, held)
	require.Equal(t, 1.0, testutil.ToFloat64(gauge(t, a.reg, "upwatch_leader")))
	require.Equal(t, float64(tokA), testutil.ToFloat64(gauge(t, a.reg, "upwatch_lease_token")))
	time.Sleep(3 * renew) // renewals keep a in charge; b waits
	require.Zero(t, b.leading.Load())
	require.Equal(t, 0.0, testutil.ToFloat64(gauge(t, b.reg, "upwatch_leader")))

	// Partition a: it must stop leading before b starts.
	var mu sync.Mutex
	var aStopped, bStarted time.Time
	cut.paused.Store(true)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		if aStopped.IsZero() && a.leading.Load() == 0 {
			aStopped = time.Now()
		}
		if bStarted.IsZero() && b.leading.Load() != 0 {
			bStarted = time.Now()
		}
		return !bStarted.IsZero()
	}, 30*time.Second, time.Millisecond)
	require.False(t, aStopped.IsZero(), "a stopped leading before b started")
	tokB := b.leading.Load()
	require.Greater(t, tokB, tokA)
	_, held = a.e.Token()
	require.False(t, held)

	// a reconnects: it does not take the lease back while b renews.
	cut.paused.Store(false)
	time.Sleep(3 * renew)
	require.Zero(t, a.leading.Load())

	// b stops cleanly: it releases the lease and a takes over well
	// within the TTL.
	stopped := time.Now()
	b.stop()
	require.Eventually(t, func() bool { return a.leading.Load() > tokB }, 30*time.Second, 5*time.Millisecond)
	t.Logf("hand-over after a clean stop: %s", time.Since(stopped).Round(time.Millisecond))
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	})
}

// collectorFunc exposes a value as a gauge for testutil.ToFloat64.
func collectorFunc(f func() float64) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "value", Help: "value"}, f)
}

func TestElectorOptions(t *testing.T) {
	_, err := lease.New(lease.Options{Name: "x"})
	require.Error(t, err)
	_, err = lease.New(lease.Options{Store: &pausable{}, Name: "x", TTL: time.Second, Renew: time.Second})
	require.ErrorContains(t, err, "renew period 1s must be shorter than the TTL 1s")
}
