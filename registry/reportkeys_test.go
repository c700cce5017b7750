package registry_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/report"
)

// TestReportKeyInfos: the metadata of a tenant's report keys, newest first,
// with the time each was retired (zero while current), and no other
// tenant's keys.
func TestReportKeyInfos(t *testing.T) {
	testReportKeyInfos(t, openSQLite(t, filepath.Join(t.TempDir(), "r.db")))
}

func testReportKeyInfos(t *testing.T, s *registry.Registry) {
	ctx := t.Context()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"a", "b"} {
		require.NoError(t, s.CreateTenant(ctx, registry.Tenant{ID: id, Name: id, CreatedAt: t0}))
	}
	none, err := s.ReportKeyInfos(ctx, "a")
	require.NoError(t, err)
	require.Empty(t, none)

	k1, err := report.NewKey(t0)
	require.NoError(t, err)
	k2, err := report.NewKey(t0.Add(time.Hour))
	require.NoError(t, err)
	kb, err := report.NewKey(t0)
	require.NoError(t, err)
	require.NoError(t, s.CreateReportKey(ctx, "a", k1))
	require.NoError(t, s.CreateReportKey(ctx, "a", k2))
	require.NoError(t, s.CreateReportKey(ctx, "b", kb))
	require.NoError(t, s.RetireReportKey(ctx, "a", k1.ID, t0.Add(time.Hour)))
	// Retiring again keeps the first time.
	require.NoError(t, s.RetireReportKey(ctx, "a", k1.ID, t0.Add(5*time.Hour)))

	got, err := s.ReportKeyInfos(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, []registry.ReportKeyInfo{
		{KID: k2.ID, CreatedAt: t0.Add(time.Hour)},
		{KID: k1.ID, CreatedAt: t0, RetiredAt: t0.Add(time.Hour)},
	}, got)
	keys, err := s.ReportKeys(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, []string{keys[0].ID, keys[1].ID}, []string{got[0].KID, got[1].KID}, "the order of ReportKeys")

	got, err = s.ReportKeyInfos(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, []registry.ReportKeyInfo{{KID: kb.ID, CreatedAt: t0}}, got)
}
