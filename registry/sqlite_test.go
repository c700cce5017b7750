package registry_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/registry/registrytest"
)

func openSQLite(t *testing.T, path string) *registry.SQLite {
	t.Helper()
	mk, err := crypt.NewMasterKey(bytes.Repeat([]byte{9}, crypt.KeySize))
	require.NoError(t, err)
	s, err := registry.OpenSQLite(t.Context(), registry.SQLiteOptions{Path: path, MasterKey: mk})
	require.NoError(t, err)
	return s
}

func TestSQLiteContract(t *testing.T) {
	registrytest.Run(t,
		func(t *testing.T) registrytest.Store {
			return openSQLite(t, filepath.Join(t.TempDir(), "registry.db"))
		},
		registrytest.WithReopen(func(t *testing.T, s registrytest.Store) registrytest.Store {
			return openSQLite(t, s.(*registry.SQLite).Path())
		}),
	)
}

func TestOpenSQLiteErrorsNamePath(t *testing.T) {
	ctx := context.Background()
	_, err := registry.OpenSQLite(ctx, registry.SQLiteOptions{})
	require.Error(t, err)

	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	bad := filepath.Join(file, "registry.db") // parent is a file
	_, err = registry.OpenSQLite(ctx, registry.SQLiteOptions{Path: bad})
	require.Error(t, err)
	require.Contains(t, err.Error(), bad)
	require.NotContains(t, err.Error(), "\n")
	require.Equal(t, 1, strings.Count(err.Error(), bad), "path named once: %v", err)

	garbage := filepath.Join(dir, "garbage.db")
	require.NoError(t, os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 512)), 0o600))
	_, err = registry.OpenSQLite(ctx, registry.SQLiteOptions{Path: garbage})
	require.Error(t, err)
	require.Contains(t, err.Error(), garbage)
}

func TestOpenSQLiteCreatesDirectoryAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "registry.db")
	s := openSQLite(t, path)
	require.NoError(t, s.Ping(t.Context()))
	require.Equal(t, path, s.Path())
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	s = openSQLite(t, path) // migrations already applied
	require.NoError(t, s.Close())
}

func TestOpenSQLiteConcurrentFirstOpen(t *testing.T) {
	// Two processes starting at once on a new file both migrate safely.
	path := filepath.Join(t.TempDir(), "registry.db")
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			mk, err := crypt.NewMasterKey(bytes.Repeat([]byte{9}, crypt.KeySize))
			require.NoError(t, err)
			s, err := registry.OpenSQLite(t.Context(), registry.SQLiteOptions{Path: path, MasterKey: mk})
			if err == nil {
				err = s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
}

func TestReleaseLeases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.db")
	testReleaseLeases(t, func() *registry.Registry {
		s := openSQLite(t, path)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
