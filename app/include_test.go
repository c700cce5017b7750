package app

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/tenancy"
)

// TestIncludedTargetsRunAndReload: the targets of an included file are
// checked, and a reload re-reads the included files (a changed one, a new
// one) while the including file stays as it was.
func TestIncludedTargetsRunAndReload(t *testing.T) {
	srv := httptest.NewServer(&flapper{})
	defer srv.Close()
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "targets.d"), 0o700))
	path := filepath.Join(dir, "upwatch.yaml")
	require.NoError(t, os.WriteFile(path, []byte("allow_private_targets: true\ndata_dir: "+filepath.Join(dir, "data")+
		"\ninclude: [targets.d/*.yaml]\n"), 0o600))
	write := func(file string, names ...string) {
		var b strings.Builder
		b.WriteString("targets:\n")
		for _, name := range names {
			fmt.Fprintf(&b, "  - {name: %s, kind: http, interval: 1s, timeout: 500ms, http: {url: %q}}\n", name, srv.URL)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "targets.d", file), []byte(b.String()), 0o600))
	}
	write("eu.yaml", "eu-1")
	cfg, err := config.Load(path, func(string) string { return "" })
	require.NoError(t, err)
	reload := make(chan struct{})
	r := start(t, cfg, Options{ConfigPath: path, Reload: reload})
	has := r.checks(t)
	require.Eventually(t, func() bool { return has("eu-1") }, 10*time.Second, 50*time.Millisecond)

	write("eu.yaml", "eu-2")
	write("us.yaml", "us-1")
	reload <- struct{}{}
	require.Eventually(t, func() bool { return has("eu-2") && has("us-1") && !has("eu-1") }, 30*time.Second, 50*time.Millisecond)

	// An included file that does not validate refuses the reload whole.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "targets.d", "us.yaml"), []byte("targets:\n  - {name: bad, kind: http, interval: 10ms}\n"), 0o600))
	reload <- struct{}{}
	reload <- struct{}{} // the loop has taken the first one: the bad file was read and refused
	require.True(t, has("eu-2") && has("us-1"), "a refused reload keeps the running targets")
	r.shutdown(t)
}

// TestClashesNameTheIncludedFile: a config target whose id tenant default
// uses for an API target is named where it is written, an included file
// too; other tenants' ids do not clash.
func TestClashesNameTheIncludedFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "more.yaml"), []byte(
		"targets:\n  - {name: x, kind: tcp, tcp: {address: \"example.com:1\"}}\n  - {name: web, kind: tcp, tcp: {address: \"example.com:1\"}}\n"), 0o600))
	path := filepath.Join(dir, "upwatch.yaml")
	require.NoError(t, os.WriteFile(path, []byte(
		"include: [more.yaml]\ntargets:\n  - {name: db, kind: tcp, tcp: {address: \"example.com:1\"}}\n"), 0o600))
	cfg, err := config.Load(path, func(string) string { return "" })
	require.NoError(t, err)
	api := func(tenant, id string) tenancy.TargetInfo {
		ti := tenancy.TargetInfo{TenantID: tenant, Source: tenancy.SourceAPI}
		ti.Target.ID = id
		return ti
	}
	err = clashes(cfg, tenancy.Set{Targets: []tenancy.TargetInfo{api("default", "web"), api("other", "db"), api("default", "db")}})
	require.EqualError(t, err, `targets[0]: id "db" is already an API target of tenant default; rename one of them`+"\n"+
		`targets[1] in `+filepath.Join(dir, "more.yaml")+`: id "web" is already an API target of tenant default; rename one of them`)
	require.NoError(t, clashes(cfg, tenancy.Set{Targets: []tenancy.TargetInfo{api("other", "web")}}))
}
