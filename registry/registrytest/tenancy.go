package registrytest

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/report"
)

// The registry's tenancy tables, one small interface per resource, as
// this suite tests them. A store that lacks one skips these tests; one that
// has them must have a master key (for the report keys).
type (
	TenantTable interface {
		CreateTenant(ctx context.Context, t registry.Tenant) error
		Tenant(ctx context.Context, id string) (registry.Tenant, error)
		Tenants(ctx context.Context) ([]registry.Tenant, error)
	}
	KeyTable interface {
		CreateAPIKey(ctx context.Context, k registry.APIKey) error
		APIKeys(ctx context.Context, tenantID string) ([]registry.APIKey, error)
		APIKey(ctx context.Context, tenantID, id string) (registry.APIKey, error)
		RevokeAPIKey(ctx context.Context, tenantID, id string, at time.Time) error
	}
	KeyLookup interface {
		APIKeysByPrefix(ctx context.Context, prefix string) ([]registry.APIKey, error)
		TouchAPIKey(ctx context.Context, id string, at time.Time) error
	}
	AuditTable interface {
		AppendAudit(ctx context.Context, e registry.AuditEntry) error
		Audit(ctx context.Context, tenantID string, q registry.AuditQuery) ([]registry.AuditEntry, error)
	}
	TargetTable interface {
		CreateTarget(ctx context.Context, t registry.TargetRecord) (string, error)
		UpdateTarget(ctx context.Context, t registry.TargetRecord) error
		DeleteTarget(ctx context.Context, tenantID, id string) error
		Target(ctx context.Context, tenantID, id string) (registry.TargetRecord, error)
		Targets(ctx context.Context, tenantID string) ([]registry.TargetRecord, error)
	}
	ObjectTable interface {
		CreateObject(ctx context.Context, kind registry.ObjectKind, o registry.Object) error
		UpdateObject(ctx context.Context, kind registry.ObjectKind, o registry.Object) error
		DeleteObject(ctx context.Context, kind registry.ObjectKind, tenantID, id string) error
		Object(ctx context.Context, kind registry.ObjectKind, tenantID, id string) (registry.Object, error)
		Objects(ctx context.Context, kind registry.ObjectKind, tenantID string) ([]registry.Object, error)
	}
	ReportKeyTable interface {
		CreateReportKey(ctx context.Context, tenantID string, k report.Key) error
		RetireReportKey(ctx context.Context, tenantID, kid string, at time.Time) error
		ReportKeys(ctx context.Context, tenantID string) ([]report.Key, error)
		LookupReportKey(ctx context.Context, tenantID, kid string) (report.Key, bool, error)
	}
)

// tables are a store's tenancy tables.
type tables struct {
	TenantTable
	KeyTable
	KeyLookup
	AuditTable
	TargetTable
	ObjectTable
	ReportKeyTable
}

// tenancy returns s's tenancy tables with tenants "a" and "b", or skips the
// test when s has none.
func tenancy(t *testing.T, s Store) tables {
	var tn tables
	if !has(s, &tn.TenantTable) || !has(s, &tn.KeyTable) || !has(s, &tn.KeyLookup) || !has(s, &tn.AuditTable) ||
		!has(s, &tn.TargetTable) || !has(s, &tn.ObjectTable) || !has(s, &tn.ReportKeyTable) {
		t.Skip("the backend has no tenancy tables")
	}
	for _, id := range []string{"a", "b"} {
		require.NoError(t, tn.CreateTenant(ctx(t), registry.Tenant{ID: id, Name: "Tenant " + id, CreatedAt: T0}))
	}
	return tn
}

// has sets *into to s when s implements T.
func has[T any](s Store, into *T) bool {
	v, ok := s.(T)
	*into = v
	return ok
}

func testTenantsAndKeys(t *testing.T, _ *suite, s Store) {
	tn := tenancy(t, s)
	err := tn.CreateTenant(ctx(t), registry.Tenant{ID: "a", Name: "again"})
	require.ErrorIs(t, err, registry.ErrConflict)
	got, err := tn.Tenant(ctx(t), "a")
	require.NoError(t, err)
	assert.Equal(t, "Tenant a", got.Name)
	assert.True(t, T0.Equal(got.CreatedAt))
	_, err = tn.Tenant(ctx(t), "nope")
	require.ErrorIs(t, err, registry.ErrNotFound)
	all, err := tn.Tenants(ctx(t))
	require.NoError(t, err)
	assert.Len(t, all, 2)

	k := registry.APIKey{ID: "k1", TenantID: "a", Name: "ci", Prefix: "uw_abcdefgh", Hash: bytes.Repeat([]byte{1}, 32),
		Scopes: []string{"read", "write"}, CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}
	require.NoError(t, tn.CreateAPIKey(ctx(t), k))
	require.ErrorIs(t, tn.CreateAPIKey(ctx(t), k), registry.ErrConflict)
	k2 := k
	k2.ID, k2.TenantID, k2.Hash, k2.ExpiresAt = "k2", "b", bytes.Repeat([]byte{2}, 32), time.Time{}
	require.NoError(t, tn.CreateAPIKey(ctx(t), k2))
	byPrefix, err := tn.APIKeysByPrefix(ctx(t), "uw_abcdefgh")
	require.NoError(t, err)
	assert.Len(t, byPrefix, 2, "prefixes may collide; the caller compares hashes")
	got1, err := tn.APIKey(ctx(t), "a", "k1")
	require.NoError(t, err)
	assert.Equal(t, k.Hash, got1.Hash)
	assert.Equal(t, k.Scopes, got1.Scopes)
	assert.True(t, k.ExpiresAt.Equal(got1.ExpiresAt))
	assert.True(t, got1.RevokedAt.IsZero())
	_, err = tn.APIKey(ctx(t), "b", "k1")
	require.ErrorIs(t, err, registry.ErrNotFound, "another tenant's key")
	list, err := tn.APIKeys(ctx(t), "a")
	require.NoError(t, err)
	require.Len(t, list, 1)

	require.ErrorIs(t, tn.RevokeAPIKey(ctx(t), "b", "k1", T0), registry.ErrNotFound)
	require.NoError(t, tn.RevokeAPIKey(ctx(t), "a", "k1", T0.Add(time.Minute)))
	require.NoError(t, tn.RevokeAPIKey(ctx(t), "a", "k1", T0.Add(time.Hour)))
	got1, _ = tn.APIKey(ctx(t), "a", "k1")
	assert.True(t, T0.Add(time.Minute).Equal(got1.RevokedAt), "the first revocation time stays")

	require.NoError(t, tn.TouchAPIKey(ctx(t), "k2", T0.Add(2*time.Minute)))
	require.NoError(t, tn.TouchAPIKey(ctx(t), "k2", T0.Add(time.Minute)))
	got2, _ := tn.APIKey(ctx(t), "b", "k2")
	assert.True(t, T0.Add(2*time.Minute).Equal(got2.LastUsedAt), "last use never goes back")
}

func testAuditLog(t *testing.T, _ *suite, s Store) {
	tn := tenancy(t, s)
	for i := range 5 {
		require.NoError(t, tn.AppendAudit(ctx(t), registry.AuditEntry{TenantID: "a", KeyID: "k", Action: "create",
			ObjectType: "target", ObjectID: string(rune('p' + i)), At: T0.Add(time.Duration(i) * time.Second)}))
	}
	require.NoError(t, tn.AppendAudit(ctx(t), registry.AuditEntry{TenantID: "b", KeyID: "k", Action: "delete", ObjectType: "target", ObjectID: "x", At: T0}))
	page, err := tn.Audit(ctx(t), "a", registry.AuditQuery{Limit: 3})
	require.NoError(t, err)
	require.Len(t, page, 3)
	assert.Equal(t, "t", page[0].ObjectID, "newest first")
	assert.True(t, T0.Add(4*time.Second).Equal(page[0].At))
	rest, err := tn.Audit(ctx(t), "a", registry.AuditQuery{Before: page[2].ID})
	require.NoError(t, err)
	require.Len(t, rest, 2)
	assert.Equal(t, "p", rest[1].ObjectID)
	b, err := tn.Audit(ctx(t), "b", registry.AuditQuery{})
	require.NoError(t, err)
	require.Len(t, b, 1)
}

func testTargets(t *testing.T, _ *suite, s Store) {
	tn := tenancy(t, s)
	rec := registry.TargetRecord{TenantID: "a", ID: "web", Spec: []byte(`{"name":"web"}`), Secrets: []byte{1, 2, 3}, CreatedAt: T0, UpdatedAt: T0}
	key, err := tn.CreateTarget(ctx(t), rec)
	require.NoError(t, err)
	assert.Equal(t, "a/web", key)
	_, err = tn.CreateTarget(ctx(t), rec)
	require.ErrorIs(t, err, registry.ErrConflict, "an id is unique within its tenant")
	other := rec
	other.TenantID = "b"
	require.ErrorIs(t, tn.UpdateTarget(ctx(t), other), registry.ErrNotFound)
	require.ErrorIs(t, tn.DeleteTarget(ctx(t), "b", "web"), registry.ErrNotFound)
	_, err = tn.Target(ctx(t), "b", "web")
	require.ErrorIs(t, err, registry.ErrNotFound)
	otherKey, err := tn.CreateTarget(ctx(t), other)
	require.NoError(t, err, "ids are per tenant")
	assert.NotEqual(t, key, otherKey, "and so are the keys their data belongs to")
	require.NoError(t, tn.DeleteTarget(ctx(t), "b", "web"))

	rec.Spec, rec.Secrets, rec.Paused, rec.UpdatedAt = []byte(`{"name":"web2"}`), nil, true, T0.Add(time.Hour)
	require.NoError(t, tn.UpdateTarget(ctx(t), rec))
	got, err := tn.Target(ctx(t), "a", "web")
	require.NoError(t, err)
	assert.Equal(t, key, got.Key, "an update keeps the key")
	assert.JSONEq(t, `{"name":"web2"}`, string(got.Spec))
	assert.Empty(t, got.Secrets)
	assert.True(t, got.Paused)
	assert.True(t, T0.Equal(got.CreatedAt))
	assert.True(t, T0.Add(time.Hour).Equal(got.UpdatedAt))

	_, err = tn.CreateTarget(ctx(t), registry.TargetRecord{TenantID: "b", ID: "api", Spec: []byte(`{}`), CreatedAt: T0, UpdatedAt: T0})
	require.NoError(t, err)
	all, err := tn.Targets(ctx(t), "")
	require.NoError(t, err)
	assert.Len(t, all, 2)
	onlyB, err := tn.Targets(ctx(t), "b")
	require.NoError(t, err)
	require.Len(t, onlyB, 1)
	assert.Equal(t, "api", onlyB[0].ID)
	require.NoError(t, tn.DeleteTarget(ctx(t), "a", "web"))
	_, err = tn.Target(ctx(t), "a", "web")
	require.ErrorIs(t, err, registry.ErrNotFound)

	// A deleted id can be taken again, by its tenant or another, but never
	// with a key that was given out before: the old data stays unreachable.
	seen := map[string]bool{key: true, otherKey: true}
	for _, tenant := range []string{"a", "b", "a"} {
		k, err := tn.CreateTarget(ctx(t), registry.TargetRecord{TenantID: tenant, ID: "web", Spec: []byte(`{}`), CreatedAt: T0, UpdatedAt: T0})
		require.NoError(t, err)
		require.False(t, seen[k], "key %s reused", k)
		seen[k] = true
		require.NoError(t, tn.DeleteTarget(ctx(t), tenant, "web"))
	}
}

func testObjects(t *testing.T, _ *suite, s Store) {
	tn := tenancy(t, s)
	for _, kind := range []registry.ObjectKind{registry.ContactGroups, registry.AlertPolicies, registry.MaintenanceWindows} {
		t.Run(string(kind), func(t *testing.T) {
			o := registry.Object{TenantID: "a", ID: "ops", Spec: []byte(`{"name":"ops"}`), CreatedAt: T0, UpdatedAt: T0}
			require.NoError(t, tn.CreateObject(ctx(t), kind, o))
			require.ErrorIs(t, tn.CreateObject(ctx(t), kind, o), registry.ErrConflict)
			o.TenantID = "b"
			require.NoError(t, tn.CreateObject(ctx(t), kind, o), "ids are per tenant")
			_, err := tn.Object(ctx(t), kind, "c", "ops")
			require.ErrorIs(t, err, registry.ErrNotFound)
			o.Spec, o.UpdatedAt = []byte(`{"name":"ops","v":2}`), T0.Add(time.Hour)
			require.NoError(t, tn.UpdateObject(ctx(t), kind, o))
			got, err := tn.Object(ctx(t), kind, "b", "ops")
			require.NoError(t, err)
			assert.JSONEq(t, `{"name":"ops","v":2}`, string(got.Spec))
			a, err := tn.Object(ctx(t), kind, "a", "ops")
			require.NoError(t, err)
			assert.JSONEq(t, `{"name":"ops"}`, string(a.Spec), "another tenant's update leaves it alone")
			all, err := tn.Objects(ctx(t), kind, "")
			require.NoError(t, err)
			assert.Len(t, all, 2)
			require.NoError(t, tn.DeleteObject(ctx(t), kind, "a", "ops"))
			require.ErrorIs(t, tn.DeleteObject(ctx(t), kind, "a", "ops"), registry.ErrNotFound)
			left, err := tn.Objects(ctx(t), kind, "b")
			require.NoError(t, err)
			assert.Len(t, left, 1)
		})
	}
	require.Error(t, tn.CreateObject(ctx(t), "users; DROP TABLE tenants", registry.Object{TenantID: "a", ID: "x"}))
}

func testReportKeys(t *testing.T, _ *suite, s Store) {
	tn := tenancy(t, s)
	k1, err := report.NewKey(T0)
	require.NoError(t, err)
	k2, err := report.NewKey(T0.Add(time.Hour))
	require.NoError(t, err)
	require.NoError(t, tn.CreateReportKey(ctx(t), "a", k1))
	require.NoError(t, tn.CreateReportKey(ctx(t), "a", k2))
	require.ErrorIs(t, tn.CreateReportKey(ctx(t), "a", k1), registry.ErrConflict)
	keys, err := tn.ReportKeys(ctx(t), "a")
	require.NoError(t, err)
	require.Len(t, keys, 2)
	assert.Equal(t, k2.ID, keys[0].ID, "newest first")
	assert.Equal(t, []byte(k2.Secret), []byte(keys[0].Secret))
	assert.True(t, T0.Add(time.Hour).Equal(keys[0].CreatedAt))
	got, ok, err := tn.LookupReportKey(ctx(t), "a", k1.ID)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, []byte(k1.Secret), []byte(got.Secret))
	_, ok, err = tn.LookupReportKey(ctx(t), "b", k1.ID)
	require.NoError(t, err)
	assert.False(t, ok, "another tenant's key")
	require.NoError(t, tn.RetireReportKey(ctx(t), "a", k1.ID, T0.Add(2*time.Hour)))
	require.ErrorIs(t, tn.RetireReportKey(ctx(t), "b", k1.ID, T0), registry.ErrNotFound)
	_, ok, err = tn.LookupReportKey(ctx(t), "a", k1.ID)
	require.NoError(t, err)
	assert.True(t, ok, "a retired key still opens old reports")
	none, err := tn.ReportKeys(ctx(t), "b")
	require.NoError(t, err)
	assert.Empty(t, none)
	if !errors.Is(err, nil) {
		t.Fatal(err)
	}
}
