package registry_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/registry"
)

func TestApplyTargets(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "registry.db"))
	t.Cleanup(func() { _ = s.Close() })
	testApplyTargets(t, s)
}

// testApplyTargets: a batch applies whole or not at all, audit included,
// and never touches another tenant's targets.
func testApplyTargets(t *testing.T, s *registry.Registry) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"a", "b"} {
		require.NoError(t, s.CreateTenant(ctx, registry.Tenant{ID: id, CreatedAt: t0}))
	}
	rec := func(tenant, id, spec string) registry.TargetRecord {
		return registry.TargetRecord{TenantID: tenant, ID: id, Spec: []byte(spec), CreatedAt: t0, UpdatedAt: t0}
	}
	for _, r := range []registry.TargetRecord{rec("a", "keep", `{"v":1}`), rec("a", "change", `{"v":1}`), rec("a", "drop", `{"v":1}`), rec("b", "theirs", `{"v":1}`)} {
		_, err := s.CreateTarget(ctx, r)
		require.NoError(t, err)
	}
	ids := func(tenant string) map[string]string {
		ts, err := s.Targets(ctx, tenant)
		require.NoError(t, err)
		out := map[string]string{}
		for _, x := range ts {
			out[x.ID] = string(x.Spec)
		}
		return out
	}
	before := ids("a")
	auditLen := func(tenant string) int {
		es, err := s.Audit(ctx, tenant, registry.AuditQuery{})
		require.NoError(t, err)
		return len(es)
	}

	// Failures leave everything as it was.
	t1 := t0.Add(time.Hour)
	changed := rec("a", "change", `{"v":2}`)
	changed.UpdatedAt = t1
	audit := []registry.AuditEntry{{TenantID: "a", KeyID: "k", Action: "update", ObjectType: "target", ObjectID: "change", At: t1}}
	for name, b := range map[string]registry.TargetBatch{
		"create of an id the tenant has": {TenantID: "a", Update: []registry.TargetRecord{changed}, Create: []registry.TargetRecord{rec("a", "keep", `{}`)}, Audit: audit},
		"update of another tenant's":     {TenantID: "a", Delete: []string{"drop"}, Update: []registry.TargetRecord{rec("a", "theirs", `{}`)}},
		"delete of a missing one":        {TenantID: "a", Update: []registry.TargetRecord{changed}, Delete: []string{"drop", "nope"}},
	} {
		err := s.ApplyTargets(ctx, b)
		require.Error(t, err, name)
		assert.True(t, errors.Is(err, registry.ErrConflict) || errors.Is(err, registry.ErrNotFound), "%s: %v", name, err)
		assert.Equal(t, before, ids("a"), name)
		assert.Equal(t, 0, auditLen("a"), name)
	}
	require.Error(t, s.ApplyTargets(ctx, registry.TargetBatch{TenantID: "a", Create: []registry.TargetRecord{rec("b", "x", `{}`)}}), "records of another tenant")

	// Success: all of it, audit included; an id another tenant has is
	// free, and its target gets a key of its own.
	require.NoError(t, s.ApplyTargets(ctx, registry.TargetBatch{
		TenantID: "a",
		Create:   []registry.TargetRecord{rec("a", "new", `{"v":3}`), rec("a", "theirs", `{"v":4}`)},
		Update:   []registry.TargetRecord{changed},
		Delete:   []string{"drop"},
		Audit:    append(audit, registry.AuditEntry{TenantID: "a", KeyID: "k", Action: "create", ObjectType: "target", ObjectID: "new", At: t1}),
	}))
	assert.Equal(t, map[string]string{"keep": `{"v":1}`, "change": `{"v":2}`, "new": `{"v":3}`, "theirs": `{"v":4}`}, ids("a"))
	mine, err := s.Target(ctx, "a", "theirs")
	require.NoError(t, err)
	theirs, err := s.Target(ctx, "b", "theirs")
	require.NoError(t, err)
	assert.NotEqual(t, theirs.Key, mine.Key)
	got, err := s.Target(ctx, "a", "change")
	require.NoError(t, err)
	assert.Equal(t, t0, got.CreatedAt)
	assert.Equal(t, t1, got.UpdatedAt)
	assert.Equal(t, 2, auditLen("a"))
	assert.Equal(t, map[string]string{"theirs": `{"v":1}`}, ids("b"))
	require.NoError(t, s.ApplyTargets(ctx, registry.TargetBatch{TenantID: "a"}), "an empty batch")
}
