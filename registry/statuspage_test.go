package registry_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/registry"
)

// testStatusPageStore runs the status page methods on one registry.
func testStatusPageStore(t *testing.T, s *registry.Registry) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"a", "b"} {
		require.NoError(t, s.CreateTenant(ctx, registry.Tenant{ID: id, Name: id, CreatedAt: t0}))
	}
	page := registry.StatusPage{TenantID: "a", ID: "sp1", Slug: "acme", Domain: "status.acme.example.com", Spec: []byte(`{"title":"A"}`), CreatedAt: t0, UpdatedAt: t0}
	require.NoError(t, s.CreateStatusPage(ctx, page))
	require.ErrorIs(t, s.CreateStatusPage(ctx, registry.StatusPage{TenantID: "b", ID: "x", Slug: "acme", Spec: []byte(`{}`)}), registry.ErrConflict, "slugs are unique across tenants")
	require.ErrorIs(t, s.CreateStatusPage(ctx, registry.StatusPage{TenantID: "b", ID: "x", Slug: "other", Domain: "status.acme.example.com", Spec: []byte(`{}`)}), registry.ErrConflict, "so are domains")
	require.NoError(t, s.CreateStatusPage(ctx, registry.StatusPage{TenantID: "b", ID: "x", Slug: "b-one", Spec: []byte(`{}`)}), "no domain")
	require.NoError(t, s.CreateStatusPage(ctx, registry.StatusPage{TenantID: "b", ID: "y", Slug: "b-two", Spec: []byte(`{}`)}), "no domain twice")

	got, err := s.StatusPage(ctx, "a", "sp1")
	require.NoError(t, err)
	require.Equal(t, page, got)
	_, err = s.StatusPage(ctx, "b", "sp1")
	require.ErrorIs(t, err, registry.ErrNotFound, "another tenant's page")
	got, err = s.StatusPageBySlug(ctx, "acme", "")
	require.NoError(t, err)
	require.Equal(t, "sp1", got.ID)
	got, err = s.StatusPageBySlug(ctx, "", "status.acme.example.com")
	require.NoError(t, err)
	require.Equal(t, "sp1", got.ID)
	_, err = s.StatusPageBySlug(ctx, "", "")
	require.ErrorIs(t, err, registry.ErrNotFound)

	page.Slug, page.Domain, page.UpdatedAt = "acme-2", "", t0.Add(time.Hour)
	require.NoError(t, s.UpdateStatusPage(ctx, page))
	require.ErrorIs(t, s.UpdateStatusPage(ctx, registry.StatusPage{TenantID: "b", ID: "sp1", Slug: "z", Spec: []byte(`{}`)}), registry.ErrNotFound)
	require.ErrorIs(t, s.UpdateStatusPage(ctx, registry.StatusPage{TenantID: "b", ID: "x", Slug: "acme-2", Spec: []byte(`{}`)}), registry.ErrConflict)
	ps, err := s.StatusPages(ctx, "b")
	require.NoError(t, err)
	require.Len(t, ps, 2)

	inc := registry.StatusIncident{TenantID: "a", PageID: "sp1", ID: "i1", Title: "Down", CreatedAt: t0,
		Updates: []registry.StatusUpdate{{ID: "u1", Status: "investigating", Body: "Looking", At: t0}}}
	require.NoError(t, s.CreateStatusIncident(ctx, inc))
	require.NoError(t, s.AddStatusUpdate(ctx, "a", "i1", registry.StatusUpdate{ID: "u2", Status: "resolved", Body: "Fixed", At: t0.Add(time.Minute)}))
	require.ErrorIs(t, s.AddStatusUpdate(ctx, "b", "i1", registry.StatusUpdate{ID: "u3", Status: "resolved", Body: "x", At: t0}), registry.ErrNotFound)
	require.NoError(t, s.UpdateStatusIncidentTitle(ctx, "a", "i1", "Down (EU)"))
	require.ErrorIs(t, s.UpdateStatusIncidentTitle(ctx, "b", "i1", "x"), registry.ErrNotFound)
	one, err := s.StatusIncident(ctx, "a", "i1")
	require.NoError(t, err)
	require.Equal(t, "Down (EU)", one.Title)
	require.Equal(t, []string{"investigating", "resolved"}, []string{one.Updates[0].Status, one.Updates[1].Status})
	_, err = s.StatusIncident(ctx, "b", "i1")
	require.ErrorIs(t, err, registry.ErrNotFound)
	require.NoError(t, s.CreateStatusIncident(ctx, registry.StatusIncident{TenantID: "a", PageID: "sp1", ID: "i0", Title: "Old", CreatedAt: t0.Add(-time.Hour),
		Updates: []registry.StatusUpdate{{ID: "u0", Status: "resolved", Body: "Gone", At: t0.Add(-time.Hour)}}}))
	incs, err := s.StatusIncidents(ctx, "a", "sp1", time.Time{})
	require.NoError(t, err)
	require.Equal(t, []string{"i1", "i0"}, []string{incs[0].ID, incs[1].ID}, "newest first")
	incs, err = s.StatusIncidents(ctx, "a", "sp1", t0)
	require.NoError(t, err)
	require.Len(t, incs, 1, "since")

	require.NoError(t, s.DeleteStatusIncident(ctx, "a", "i0"))
	require.ErrorIs(t, s.DeleteStatusIncident(ctx, "a", "i0"), registry.ErrNotFound)
	require.ErrorIs(t, s.DeleteStatusPage(ctx, "b", "sp1"), registry.ErrNotFound)
	require.NoError(t, s.DeleteStatusPage(ctx, "a", "sp1"))
	_, err = s.StatusIncident(ctx, "a", "i1")
	require.ErrorIs(t, err, registry.ErrNotFound, "a page's incidents go with it")

	b := registry.Badge{Token: "tok", TenantID: "a", TargetID: "web", TargetKey: "k1", CreatedAt: t0}
	require.NoError(t, s.CreateBadge(ctx, b))
	require.ErrorIs(t, s.CreateBadge(ctx, registry.Badge{Token: "tok2", TenantID: "a", TargetID: "web", TargetKey: "k1"}), registry.ErrConflict, "one badge per target")
	gb, err := s.BadgeByToken(ctx, "tok")
	require.NoError(t, err)
	require.Equal(t, b, gb)
	gb, err = s.TargetBadge(ctx, "a", "web")
	require.NoError(t, err)
	require.Equal(t, b, gb)
	_, err = s.TargetBadge(ctx, "b", "web")
	require.ErrorIs(t, err, registry.ErrNotFound)
	require.ErrorIs(t, s.DeleteBadge(ctx, "b", "web"), registry.ErrNotFound)
	require.NoError(t, s.DeleteBadge(ctx, "a", "web"))
	_, err = s.BadgeByToken(ctx, "tok")
	require.ErrorIs(t, err, registry.ErrNotFound)
}

func TestSQLiteStatusPages(t *testing.T) {
	testStatusPageStore(t, openSQLite(t, filepath.Join(t.TempDir(), "r.db")))
}

func TestPostgresStatusPages(t *testing.T) {
	testStatusPageStore(t, openPostgres(t, postgresSchemaURL(t)))
}
