package app

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/registry"
)

// An API target stored before secret headers were sealed (its X-Api-Key in
// the clear spec) is sealed when upwatch starts, and still checked with
// the real value.
func TestStartSealsOldTargetRows(t *testing.T) {
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("X-Api-Key")
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := testConfig(t, "allow_private_targets: true\n")
	raw := bytes.Repeat([]byte{9}, crypt.KeySize)
	mk, err := crypt.NewMasterKey(raw)
	require.NoError(t, err)
	path := filepath.Join(cfg.DataDir, RegistryFile)
	ctx := context.Background()
	reg, err := registry.OpenSQLite(ctx, registry.SQLiteOptions{Path: path, MasterKey: mk})
	require.NoError(t, err)
	require.NoError(t, reg.CreateTenant(ctx, registry.Tenant{ID: registry.DefaultTenant, Name: "default", CreatedAt: time.Unix(0, 0)}))
	spec := `{"id":"old","name":"old","kind":"http","interval":"1s","timeout":"500ms","http":{"url":"` + srv.URL + `/","headers":{"X-Api-Key":"OLD-APP-S3CRET"}}}`
	_, err = reg.CreateTarget(ctx, registry.TargetRecord{TenantID: registry.DefaultTenant, ID: "old", Spec: []byte(spec),
		CreatedAt: time.Unix(0, 0), UpdatedAt: time.Unix(0, 0)})
	require.NoError(t, err)
	require.NoError(t, reg.Close())

	key := base64.StdEncoding.EncodeToString(raw)
	start(t, cfg, Options{Getenv: func(name string) string {
		if name == crypt.EnvKey {
			return key
		}
		return ""
	}})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got == "OLD-APP-S3CRET"
	}, 30*time.Second, 20*time.Millisecond, "the prober sends the stored value")

	reg, err = registry.OpenSQLite(ctx, registry.SQLiteOptions{Path: path, MasterKey: mk})
	require.NoError(t, err)
	defer reg.Close()
	rec, err := reg.Target(ctx, registry.DefaultTenant, "old")
	require.NoError(t, err)
	require.NotContains(t, string(rec.Spec), "OLD-APP-S3CRET")
	require.Contains(t, string(rec.Spec), `"X-Api-Key":"\u003csecret\u003e"`)
	require.NotEmpty(t, rec.Secrets)
}
