package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/crypt"
)

// TestWrongMasterKeyRefusesToStart follows the README: a first start
// without a master key makes <data_dir>/master.key; a target with
// credentials and a report key are created; a restart with another
// UPWATCH_MASTER_KEY used to drop the target silently (and answer 500). It
// now stops at start naming both keys' sources; the right key, or a
// rotation list holding it, starts.
func TestWrongMasterKeyRefusesToStart(t *testing.T) {
	cfg := testConfig(t, "allow_private_targets: true\n")
	admin, _, _, err := api.NewKey()
	require.NoError(t, err)
	other, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	env := func(vars map[string]string) func(string) string {
		return func(name string) string {
			if name == EnvBootstrapKey {
				return admin
			}
			return vars[name]
		}
	}

	r := start(t, cfg, Options{Getenv: env(nil)})
	status, body := apiCall(t, http.MethodPost, r.addr+"/api/v1/targets", admin, map[string]any{
		"id": "secured", "name": "Secured", "kind": "http", "interval": "1m",
		"http": map[string]any{"url": "http://127.0.0.1:9/", "auth": map[string]any{"type": "bearer", "token": "t0ken"}},
	})
	require.Equal(t, http.StatusCreated, status, body)
	status, body = apiCall(t, http.MethodPost, r.addr+"/api/v1/report-keys", admin, nil)
	require.Equal(t, http.StatusCreated, status, body)
	r.shutdown(t)

	keyFile := filepath.Join(cfg.DataDir, MasterKeyFile)
	sealer, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	// Bounded, so a start that does not refuse fails the test instead of
	// serving forever.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wrong := *cfg
	wrong.Listen = "127.0.0.1:0"
	err = Run(ctx, Options{Config: &wrong, Getenv: env(map[string]string{crypt.EnvKey: other})})
	require.NoError(t, ctx.Err(), "Run returned at once")
	require.EqualError(t, err, fmt.Sprintf("the master key from UPWATCH_MASTER_KEY does not open the secrets stored in %s "+
		"(credentials of 1 target, report keys of 1 tenant): they were sealed with the key in %s (UPWATCH_MASTER_KEY_FILE=%s); "+
		"start with that key, or rotate by listing the new key first and the old one after it (UPWATCH_MASTER_KEY=new,old)",
		filepath.Join(cfg.DataDir, RegistryFile), keyFile, keyFile))

	// The key that sealed them, named explicitly, starts; so does a
	// rotation list with the new key first.
	r = start(t, cfg, Options{Getenv: env(map[string]string{crypt.EnvKeyFile: keyFile})})
	r.shutdown(t)
	r = start(t, cfg, Options{Getenv: env(map[string]string{crypt.EnvKey: other + "," + strings.TrimSpace(string(sealer))})})
	status, body = apiCall(t, http.MethodGet, r.addr+"/api/v1/targets/secured", admin, nil)
	require.Equal(t, http.StatusOK, status, body)
	r.shutdown(t)
}
