package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/store"
	"github.com/upwatch/upwatch/store/storetest"
)

func openSQLite(t *testing.T, path string) *store.SQLite {
	t.Helper()
	mk, err := crypt.NewMasterKey(bytes.Repeat([]byte{9}, crypt.KeySize))
	require.NoError(t, err)
	s, err := store.OpenSQLite(t.Context(), store.SQLiteOptions{Path: path, MasterKey: mk})
	require.NoError(t, err)
	return s
}

func TestSQLiteContract(t *testing.T) {
	storetest.Run(t,
		func(t *testing.T) store.Store {
			return openSQLite(t, filepath.Join(t.TempDir(), "registry.db"))
		},
		storetest.WithReopen(func(t *testing.T, s store.Store) store.Store {
			return openSQLite(t, s.(*store.SQLite).Path())
		}),
	)
}

func TestOpenSQLiteErrorsNamePath(t *testing.T) {
	ctx := context.Background()
	_, err := store.OpenSQLite(ctx, store.SQLiteOptions{})
	require.Error(t, err)

	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o600))
	bad := filepath.Join(file, "registry.db") // parent is a file
	_, err = store.OpenSQLite(ctx, store.SQLiteOptions{Path: bad})
	require.Error(t, err)
	require.Contains(t, err.Error(), bad)
	require.NotContains(t, err.Error(), "\n")
	require.Equal(t, 1, strings.Count(err.Error(), bad), "path named once: %v", err)

	garbage := filepath.Join(dir, "garbage.db")
	require.NoError(t, os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 512)), 0o600))
	_, err = store.OpenSQLite(ctx, store.SQLiteOptions{Path: garbage})
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
			s, err := store.OpenSQLite(t.Context(), store.SQLiteOptions{Path: path, MasterKey: mk})
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
	testReleaseLeases(t, func() *store.Registry {
		s := openSQLite(t, path)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
