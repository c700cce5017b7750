package registry

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/internal/sqlitedb"
)

// A registry from before per-tenant ids (schema 2) keeps its targets'
// data: each keeps its id as its key, and taking the id again after a
// delete gets a new key.
func TestMigrationKeepsOldTargetsKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	db, err := sqlitedb.Open(path, 1)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (2);`)
	require.NoError(t, err)
	for _, m := range migrations[:2] {
		_, err = db.ExecContext(ctx, m)
		require.NoError(t, err)
	}
	_, err = db.ExecContext(ctx, `INSERT INTO tenants VALUES ('acme', 'Acme', 1);
		INSERT INTO api_targets (id, tenant_id, spec, secrets, paused, created_at, updated_at) VALUES ('web', 'acme', '{}', NULL, 0, 1, 1)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s, err := OpenSQLite(ctx, SQLiteOptions{Path: path})
	require.NoError(t, err)
	defer s.Close()
	rec, err := s.Target(ctx, "acme", "web")
	require.NoError(t, err)
	require.Equal(t, "web", rec.Key, "an old target's data stays its own")
	require.NoError(t, s.DeleteTarget(ctx, "acme", "web"))
	key, err := s.CreateTarget(ctx, TargetRecord{TenantID: "acme", ID: "web", Spec: []byte(`{}`), CreatedAt: time.Unix(2, 0), UpdatedAt: time.Unix(2, 0)})
	require.NoError(t, err)
	require.Equal(t, "acme/web~2", key)
}

// A webhook's URL (its credential) is sealed in the outbox and comes back
// whole to the dispatcher.
func TestOutboxSealsWebhookURLs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "registry.db")
	mk, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	key, err := crypt.LoadMasterKey(func(name string) string {
		if name == crypt.EnvKey {
			return mk
		}
		return ""
	})
	require.NoError(t, err)
	s, err := OpenSQLite(ctx, SQLiteOptions{Path: path, MasterKey: key})
	require.NoError(t, err)
	defer s.Close()
	hook := "https://hooks.example.com/services/T0/B0/SECRETPATH?token=SECRETTOKEN"
	at := time.Unix(1000, 0)
	n := alerting.Notification{Key: "inc|down||webhook|sha256:0011", Channel: alerting.ChannelWebhook, CreatedAt: at, NextAttempt: at,
		Message: notify.Message{Key: "inc|down||webhook|sha256:0011", Kind: "down", To: notify.Recipient{Name: "ops", WebhookURL: hook}}}
	require.NoError(t, s.Commit(ctx, alerting.NewState("web"), nil, []alerting.Notification{n}))

	var raw string
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT key || message FROM outbox`).Scan(&raw))
	require.NotContains(t, raw, "SECRET")
	got, err := s.Claim(ctx, at, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, hook, got[0].Message.To.WebhookURL)
}

// A chat or paging destination (its bot token, routing key or webhook URL)
// is sealed in the outbox like a webhook and comes back whole.
func TestOutboxSealsDestinations(t *testing.T) {
	ctx := context.Background()
	mk, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	key, err := crypt.LoadMasterKey(func(name string) string {
		if name == crypt.EnvKey {
			return mk
		}
		return ""
	})
	require.NoError(t, err)
	s, err := OpenSQLite(ctx, SQLiteOptions{Path: filepath.Join(t.TempDir(), "registry.db"), MasterKey: key})
	require.NoError(t, err)
	defer s.Close()
	endpoint := `{"routing_key":"SECRETROUTINGKEY0123456789abcdef"}`
	at := time.Unix(1000, 0)
	n := alerting.Notification{Key: "inc|down||pagerduty|sha256:0011", Channel: "pagerduty", CreatedAt: at, NextAttempt: at,
		Message: notify.Message{Key: "inc|down||pagerduty|sha256:0011", Kind: "down", To: notify.Recipient{Name: "ops", Channel: "pagerduty", Endpoint: endpoint}}}
	require.NoError(t, s.Commit(ctx, alerting.NewState("web"), nil, []alerting.Notification{n}))

	var raw string
	require.NoError(t, s.r.QueryRowContext(ctx, `SELECT key || message FROM outbox`).Scan(&raw))
	require.NotContains(t, raw, "SECRET")
	got, err := s.Claim(ctx, at, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, endpoint, got[0].Message.To.Endpoint)
}
