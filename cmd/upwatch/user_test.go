package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/registry"
)

func runUser(env map[string]string, stdin string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := userCmd(args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestUserAdd(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, "data_dir: "+dir+"\n")
	mk, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	env := map[string]string{"UPWATCH_CONFIG": cfg, crypt.EnvKey: mk}

	code, out, errs := runUser(env, "a long passphrase\n", "add", "-name", "alice", "-role", "admin")
	require.Equal(t, exitOK, code, errs)
	require.Equal(t, "user \"alice\" (admin) added to tenant \"default\"\n", out)
	require.NotContains(t, out+errs, "a long passphrase")

	// The user is stored with an argon2id hash, never the password.
	key, err := crypt.LoadMasterKey(func(k string) string { return env[k] })
	require.NoError(t, err)
	reg, err := registry.OpenSQLite(context.Background(), registry.SQLiteOptions{Path: filepath.Join(dir, "registry.db"), MasterKey: key, Now: time.Now})
	require.NoError(t, err)
	u, err := reg.WebUser(t.Context(), registry.DefaultTenant, "alice")
	require.NoError(t, err)
	require.NoError(t, reg.Close())
	require.Equal(t, "admin", u.Role)
	require.True(t, strings.HasPrefix(u.PasswordHash, "$argon2id$"), u.PasswordHash)
	require.NotContains(t, u.PasswordHash, "passphrase")

	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"a long passphrase\n", []string{"add", "-name", "alice", "-role", "admin"}, `name: user "alice" already exists in tenant "default"`},
		{"short\n", []string{"add", "-name", "bob"}, "password: must be at least 10 characters"},
		{"a long passphrase\n", []string{"add", "-name", "bob", "-role", "root"}, `role: must be viewer, editor or admin (got "root")`},
		{"a long passphrase\n", []string{"add", "-name", "bob", "-tenant", "nope"}, `tenant: "nope" does not exist`},
		{"", []string{"add", "-name", "bob", "a long passphrase"}, "the password is read from standard input"},
		{"", []string{"remove"}, "usage: upwatch user add"},
	} {
		code, _, errs := runUser(env, tc.stdin, tc.args...)
		require.Equal(t, exitUsage, code, tc.args)
		require.Contains(t, errs, tc.want, tc.args)
	}
}
