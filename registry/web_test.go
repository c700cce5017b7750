package registry_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/registry"
)

func TestWebUsersSessionsAndNotes(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "registry.db"))
	ctx := t.Context()
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"a", "b"} {
		require.NoError(t, s.CreateTenant(ctx, registry.Tenant{ID: id, Name: id, CreatedAt: at}))
	}
	u := registry.WebUser{TenantID: "a", Name: "ada", PasswordHash: "$argon2id$x", Role: "admin", CreatedAt: at}
	require.NoError(t, s.CreateWebUser(ctx, u))
	require.ErrorIs(t, s.CreateWebUser(ctx, u), registry.ErrConflict)
	require.ErrorIs(t, s.CreateWebUser(ctx, registry.WebUser{TenantID: "nope", Name: "x", PasswordHash: "h", Role: "viewer"}), registry.ErrConflict, "the tenant must exist")
	require.NoError(t, s.CreateWebUser(ctx, registry.WebUser{TenantID: "b", Name: "ada", PasswordHash: "h", Role: "viewer", CreatedAt: at}), "names are per tenant")
	got, err := s.WebUser(ctx, "a", "ada")
	require.NoError(t, err)
	require.Equal(t, u, got)
	_, err = s.WebUser(ctx, "a", "nobody")
	require.ErrorIs(t, err, registry.ErrNotFound)
	u.Role = "viewer"
	require.NoError(t, s.UpdateWebUser(ctx, u))
	list, err := s.WebUsers(ctx, "a")
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, "viewer", list[0].Role)

	for i, h := range [][]byte{{1}, {2}} {
		require.NoError(t, s.CreateWebSession(ctx, registry.WebSession{Hash: h, TenantID: "a", UserName: "ada", CSRF: "c", CreatedAt: at,
			ExpiresAt: at.Add(time.Duration(i+1) * time.Hour)}))
	}
	require.NoError(t, s.CreateWebSession(ctx, registry.WebSession{Hash: []byte{3}, TenantID: "b", UserName: "ada", CSRF: "c", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}))
	ws, err := s.WebSession(ctx, []byte{2})
	require.NoError(t, err)
	require.Equal(t, at.Add(2*time.Hour), ws.ExpiresAt)
	n, err := s.DeleteExpiredWebSessions(ctx, at.Add(90*time.Minute))
	require.NoError(t, err)
	require.Equal(t, int64(2), n)
	require.NoError(t, s.DeleteWebSessions(ctx, "a", "ada"))
	_, err = s.WebSession(ctx, []byte{2})
	require.ErrorIs(t, err, registry.ErrNotFound)

	require.NoError(t, s.CreateWebSession(ctx, registry.WebSession{Hash: []byte{4}, TenantID: "a", UserName: "ada", CSRF: "c", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}))
	require.NoError(t, s.DeleteWebUser(ctx, "a", "ada"))
	_, err = s.WebSession(ctx, []byte{4})
	require.ErrorIs(t, err, registry.ErrNotFound, "a deleted user's sessions go with them")
	require.ErrorIs(t, s.DeleteWebUser(ctx, "a", "ada"), registry.ErrNotFound)

	require.NoError(t, s.AddIncidentNote(ctx, registry.IncidentNote{TenantID: "a", IncidentID: "i1", UserName: "ed", Kind: "ack", At: at}))
	require.NoError(t, s.AddIncidentNote(ctx, registry.IncidentNote{TenantID: "a", IncidentID: "i1", UserName: "ed", Kind: "note", Text: "on it", At: at}))
	require.NoError(t, s.AddIncidentNote(ctx, registry.IncidentNote{TenantID: "b", IncidentID: "i1", UserName: "x", Kind: "note", Text: "theirs", At: at}))
	require.Error(t, s.AddIncidentNote(ctx, registry.IncidentNote{TenantID: "a", IncidentID: "i1", UserName: "ed", Kind: "shout"}))
	notes, err := s.IncidentNotes(ctx, "a", []string{"i1", "i2"})
	require.NoError(t, err)
	require.Len(t, notes, 2)
	require.Equal(t, "ack", notes[0].Kind)
	require.Equal(t, "on it", notes[1].Text)
	require.Equal(t, at, notes[1].At)
	notes, err = s.IncidentNotes(ctx, "a", nil)
	require.NoError(t, err)
	require.Empty(t, notes)
}
