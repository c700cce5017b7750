package registry_test

import (
	"bytes"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/registry/registrytest"
)

var (
	_ registrytest.Store  = (*registry.Postgres)(nil)
	_ alerting.StateStore = (*registry.Postgres)(nil)
	_ alerting.Outbox     = (*registry.Postgres)(nil)
)

func postgresBaseURL(t *testing.T) string   { return registrytest.PostgresBaseURL(t) }
func postgresSchemaURL(t *testing.T) string { return registrytest.PostgresSchemaURL(t) }

func testMasterKey(t *testing.T) crypt.MasterKey {
	t.Helper()
	mk, err := crypt.NewMasterKey(bytes.Repeat([]byte{9}, crypt.KeySize))
	require.NoError(t, err)
	return mk
}

func openPostgres(t *testing.T, u string) *registry.Postgres {
	t.Helper()
	s, err := registry.OpenPostgres(t.Context(), registry.PostgresOptions{URL: u, MasterKey: testMasterKey(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestPostgresContract(t *testing.T) {
	postgresBaseURL(t)
	t.Parallel()
	var mu sync.Mutex
	urls := map[registrytest.Store]string{}
	registrytest.Run(t,
		func(t *testing.T) registrytest.Store {
			u := postgresSchemaURL(t)
			s := openPostgres(t, u)
			mu.Lock()
			urls[s] = u
			mu.Unlock()
			return s
		},
		registrytest.WithReopen(func(t *testing.T, s registrytest.Store) registrytest.Store {
			mu.Lock()
			u := urls[s]
			mu.Unlock()
			require.NotEmpty(t, u)
			return openPostgres(t, u)
		}),
	)
}

func TestPostgresConcurrentFirstOpen(t *testing.T) {
	postgresBaseURL(t)
	t.Parallel()
	// Processes starting at once on a new database migrate it once.
	u := postgresSchemaURL(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := registry.OpenPostgres(t.Context(), registry.PostgresOptions{URL: u})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
	s := openPostgres(t, u) // migrations already applied
	require.NoError(t, s.Ping(t.Context()))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
}

func TestPostgresRefusesNewerSchema(t *testing.T) {
	postgresBaseURL(t)
	t.Parallel()
	u := postgresSchemaURL(t)
	require.NoError(t, openPostgres(t, u).Close())
	conn, err := pgx.Connect(t.Context(), u)
	require.NoError(t, err)
	defer func() { _ = conn.Close(t.Context()) }()
	_, err = conn.Exec(t.Context(), "UPDATE schema_version SET version = 99")
	require.NoError(t, err)
	_, err = registry.OpenPostgres(t.Context(), registry.PostgresOptions{URL: u})
	require.Error(t, err)
	require.Contains(t, err.Error(), "newer than this upwatch knows")
}

// The URL may hold a password: errors never show it.
func TestPostgresErrorsHideURL(t *testing.T) {
	ctx := t.Context()
	_, err := registry.OpenPostgres(ctx, registry.PostgresOptions{})
	require.Error(t, err)

	for _, u := range []string{
		"postgres://upwatch:s3cr3tpw@127.0.0.1:1/db?sslmode=disable&connect_timeout=5", // nothing listens
		"postgres://upwatch:s3cr3tpw@127.0.0.1:notaport/db",                            // does not parse
		"host=127.0.0.1 port=1 password=s3cr3tpw sslmode=disable connect_timeout=5",
		"postgres://upwatch:s3cr3tpw@127.0.0.1:1/db?sslmode=bogus",
	} {
		_, err := registry.OpenPostgres(ctx, registry.PostgresOptions{URL: u})
		require.Error(t, err, u)
		assert.NotContains(t, err.Error(), "s3cr3tpw")
	}

	// A search_path whose schema does not exist is named as the problem.
	if os.Getenv("UPWATCH_TEST_POSTGRES_URL") == "" {
		return
	}
	base, err := url.Parse(os.Getenv("UPWATCH_TEST_POSTGRES_URL"))
	require.NoError(t, err)
	q := base.Query()
	q.Set("search_path", "upwatch_no_such_schema")
	base.RawQuery = q.Encode()
	_, err = registry.OpenPostgres(ctx, registry.PostgresOptions{URL: base.String()})
	require.Error(t, err)
	require.Contains(t, err.Error(), "search_path")
}

func TestPostgresReleaseLeases(t *testing.T) {
	postgresBaseURL(t)
	t.Parallel()
	u := postgresSchemaURL(t)
	testReleaseLeases(t, func() *registry.Registry { return openPostgres(t, u) })
}

// testReleaseLeases: after a crash of a process that owned the registry
// alone, the leases it held are released at start (ReleaseLeases), so its
// notifications go out at once rather than when the leases run out. open
// opens the same database each time.
func testReleaseLeases(t *testing.T, open func() *registry.Registry) {
	ctx := t.Context()
	s := open()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	st := alerting.State{TargetID: "web", Status: alerting.StatusDown}
	queue := []alerting.Notification{
		{Key: "a", Channel: alerting.ChannelEmail, Message: notify.Message{Key: "a"}, NextAttempt: now, CreatedAt: now},
		{Key: "b", Channel: alerting.ChannelEmail, Message: notify.Message{Key: "b"}, NextAttempt: now, CreatedAt: now},
	}
	require.NoError(t, s.Commit(ctx, st, nil, queue))
	claimed, err := s.Claim(ctx, now, time.Hour, 10)
	require.NoError(t, err)
	require.Len(t, claimed, 2)
	require.NoError(t, s.Settle(ctx, "a", alerting.NotificationSent, time.Time{}, "", now))
	require.NoError(t, s.Close()) // the process dies holding b's lease

	s = open()
	again, err := s.Claim(ctx, now.Add(time.Second), time.Hour, 10)
	require.NoError(t, err)
	require.Empty(t, again, "b is still leased")
	n, err := s.ReleaseLeases(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "only the pending one")
	again, err = s.Claim(ctx, now.Add(time.Second), time.Hour, 10)
	require.NoError(t, err)
	require.Len(t, again, 1)
	require.Equal(t, "b", again[0].Key)
	require.Equal(t, 2, again[0].Attempts)
}

// A commit queues many notifications (more than one INSERT holds) and
// skips duplicate keys within the batch, keeping the first.
func TestPostgresCommitLargeQueue(t *testing.T) {
	postgresBaseURL(t)
	t.Parallel()
	ctx := t.Context()
	s := openPostgres(t, postgresSchemaURL(t))
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var queue []alerting.Notification
	for i := range 2500 {
		k := "k" + strings.Repeat("x", i%3) + time.Duration(i).String()
		queue = append(queue, alerting.Notification{Key: k, Channel: alerting.ChannelWebhook,
			Message: notify.Message{Key: k, IncidentID: "inc"}, CreatedAt: t0.Add(time.Duration(i))})
	}
	dup := queue[7]
	dup.LastError = "second copy"
	queue = append(queue, dup)
	require.NoError(t, s.Commit(ctx, alerting.NewState("web"), nil, queue))
	n, oldest, err := s.Pending(ctx)
	require.NoError(t, err)
	require.Equal(t, 2500, n)
	require.Equal(t, t0, oldest)
	got, err := s.Claim(ctx, t0.Add(time.Hour), time.Minute, 8)
	require.NoError(t, err)
	require.Len(t, got, 8)
	require.Equal(t, queue[7].Key, got[7].Key)
	require.Empty(t, got[7].LastError, "the first copy wins")
}

func TestPostgresApplyTargets(t *testing.T) {
	postgresBaseURL(t)
	t.Parallel()
	testApplyTargets(t, openPostgres(t, postgresSchemaURL(t)))
}

func TestPostgresReportKeyInfos(t *testing.T) {
	postgresBaseURL(t)
	t.Parallel()
	testReportKeyInfos(t, openPostgres(t, postgresSchemaURL(t)))
}
