package app

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/registry/registrytest"
	"github.com/upwatch/upwatch/secret"
)

// With registry.type postgres the whole service keeps its alert state (and
// everything else of the registry) in PostgreSQL.
func TestPostgresRegistry(t *testing.T) {
	url := registrytest.PostgresSchemaURL(t)
	srv := httptest.NewServer(&flapper{})
	defer srv.Close()
	cfg := testConfig(t, `
allow_private_targets: true
targets:
  - {name: web, kind: http, interval: 1s, timeout: 500ms, http: {url: "`+srv.URL+`/"}}
`)
	cfg.Registry.Type = "postgres"
	cfg.Registry.Postgres.URL = secret.New(url)
	mk, err := crypt.GenerateMasterKey()
	require.NoError(t, err)
	getenv := func(k string) string { return map[string]string{"UPWATCH_MASTER_KEY": mk}[k] }
	r := start(t, cfg, Options{Getenv: getenv})
	up := func() float64 { return metricValue(get(t, r.addr+"/metrics"), "upwatch_target_up", `target="web"`) }
	require.Eventually(t, func() bool { return up() == 1 }, 15*time.Second, 50*time.Millisecond)
	r.shutdown(t)

	key, err := crypt.LoadMasterKey(getenv)
	require.NoError(t, err)
	pg, err := registry.OpenPostgres(context.Background(), registry.PostgresOptions{URL: url, MasterKey: key})
	require.NoError(t, err)
	defer pg.Close()
	states, err := pg.LoadStates(context.Background())
	require.NoError(t, err)
	require.Equal(t, alerting.StatusUp, states["web"].Status)
}
