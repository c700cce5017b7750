package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/schedule"
	"github.com/upwatch/upwatch/store"
	"github.com/upwatch/upwatch/tsdb"
)

// Environment variables of the bootstrap admin key (an API key, "uw_..."),
// stored hashed for tenant "default" on a start when that tenant has no
// admin key.
const (
	EnvBootstrapKey     = "UPWATCH_BOOTSTRAP_KEY"
	EnvBootstrapKeyFile = "UPWATCH_BOOTSTRAP_KEY_FILE"
)

// MasterKeyFile is created in the data dir when no master key is configured.
const MasterKeyFile = "master.key"

// loadMasterKey reads the master key from the environment; without one it
// uses <data_dir>/master.key, creating it (0600) on first start, and warns:
// that key sits beside the data it protects. It also says where the key
// came from, for messages.
func loadMasterKey(cfg *config.Config, getenv func(string) string, log *slog.Logger) (crypt.MasterKey, string, error) {
	mk, err := loadKey(cfg, getenv, log)
	switch {
	case getenv(crypt.EnvKeyFile) != "":
		return mk, crypt.EnvKeyFile + " (" + getenv(crypt.EnvKeyFile) + ")", err
	case getenv(crypt.EnvKey) != "":
		return mk, crypt.EnvKey, err
	}
	return mk, filepath.Join(cfg.DataDir, MasterKeyFile), err
}

func loadKey(cfg *config.Config, getenv func(string) string, log *slog.Logger) (crypt.MasterKey, error) {
	mk, err := crypt.LoadMasterKey(getenv)
	if err == nil || !errors.Is(err, crypt.ErrNoMasterKey) || getenv(crypt.EnvKey) != "" || getenv(crypt.EnvKeyFile) != "" {
		return mk, err
	}
	path := filepath.Join(cfg.DataDir, MasterKeyFile)
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return mk, fmt.Errorf("data dir %s: %w", cfg.DataDir, errors.Unwrap(err))
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		k, err := crypt.GenerateMasterKey()
		if err != nil {
			return mk, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return mk, fmt.Errorf("creating master key: %w", err)
		}
		_, werr := f.WriteString(k + "\n")
		if err := errors.Join(werr, f.Close()); err != nil {
			return mk, fmt.Errorf("creating master key: %w", err)
		}
		log.Warn("no master key configured: created one in the data dir; keep a copy elsewhere and set "+crypt.EnvKey+" or "+crypt.EnvKeyFile+" (a key beside the data it protects protects little)",
			"path", path)
	} else {
		log.Warn("no master key configured: using the one in the data dir; set "+crypt.EnvKey+" or "+crypt.EnvKeyFile, "path", path)
	}
	return crypt.LoadMasterKey(func(name string) string {
		if name == crypt.EnvKeyFile {
			return path
		}
		return ""
	})
}

// bootstrapKey reads the bootstrap admin key from the environment.
func bootstrapKey(getenv func(string) string) (string, error) {
	key, file := getenv(EnvBootstrapKey), getenv(EnvBootstrapKeyFile)
	switch {
	case key != "" && file != "":
		return "", fmt.Errorf("set %s or %s, not both", EnvBootstrapKey, EnvBootstrapKeyFile)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", EnvBootstrapKeyFile, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return strings.TrimSpace(key), nil
}

type apiDeps struct {
	cfg       *config.Config
	getenv    func(string) string
	log       *slog.Logger
	registry  registryStore
	samples   tsdb.Reader
	masterKey crypt.MasterKey
	engine    *alerting.Engine
	sched     *schedule.Scheduler
	targets   *targetSet
}

// startAPI stores the bootstrap key, builds the API and applies the config
// file's and every tenant's targets to the scheduler and the engine.
func startAPI(ctx context.Context, d apiDeps) (http.Handler, *liveTargets, error) {
	key, err := bootstrapKey(d.getenv)
	if err != nil {
		return nil, nil, err
	}
	created, err := api.Bootstrap(ctx, d.registry, key, time.Now())
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap key: %w", err)
	}
	if created {
		d.log.Info("bootstrap admin key stored (hashed) for tenant default")
	}
	live := &liveTargets{reg: d.registry, mk: d.masterKey, engine: d.engine, sched: d.sched, targets: d.targets,
		log: d.log.With("component", "api")}
	live.cfg.Store(d.cfg)
	live.apply(ctx)
	srv, err := api.New(api.Options{
		Store: d.registry, Samples: d.samples, Incidents: d.registry, States: d.engine.State,
		MasterKey: d.masterKey, Config: live.cfg.Load, Logger: d.log.With("component", "api"),
		OnChange: func(string) { live.apply(context.WithoutCancel(ctx)) },
		AuthFailures: api.AuthFailureLimit{Max: d.cfg.API.AuthFailures.Max, Window: d.cfg.API.AuthFailures.Window,
			MaxSources: d.cfg.API.AuthFailures.MaxSources},
	})
	if err != nil {
		return nil, nil, err
	}
	return srv.Handler(), live, nil
}

// mountAPI serves /api/v1/ with the API and everything else with rest.
func mountAPI(rest, apiHandler http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", apiHandler)
	mux.Handle("/", rest)
	return mux
}

// liveTargets merges the config file's targets and every tenant's API
// targets into the scheduler and the alert engine, again after each API
// write and each config reload.
type liveTargets struct {
	mu      sync.Mutex
	cfg     atomic.Pointer[config.Config]
	reg     api.Registry
	mk      crypt.MasterKey
	engine  *alerting.Engine
	sched   *schedule.Scheduler
	targets *targetSet
	log     *slog.Logger
}

func (l *liveTargets) reload(ctx context.Context, cfg *config.Config) {
	l.cfg.Store(cfg)
	l.apply(ctx)
}

// apply rebuilds what runs. A failure to read the registry keeps what runs.
func (l *liveTargets) apply(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cfg := l.cfg.Load()
	ten, err := api.LoadTenancy(ctx, l.reg, l.mk)
	if err != nil {
		l.log.Error("some API objects could not be loaded; they are left out", "err", err)
	}
	targets, routes, windows := merge(cfg, ten)
	l.engine.Update(routes, windows)
	l.sched.Update(l.targets.replace(targets))
}

// merge builds the scheduler's targets and the engine's routes and windows
// from the config file (tenant "default") and the API's objects. A window
// covers only targets of its own tenant: it is resolved to the list of
// those it applies to.
func merge(cfg *config.Config, ten api.Tenancy) ([]prober.Target, map[string]alerting.Route, []alerting.Window) {
	targets := cfg.ProberTargets()
	routes, _ := alertRoutes(cfg)
	byTenant := map[string][]config.Target{store.DefaultTenant: cfg.Targets}
	for _, ti := range ten.Targets {
		byTenant[ti.TenantID] = append(byTenant[ti.TenantID], ti.Target)
	}
	globalHook := ""
	if cfg.Alerting.Webhook != nil {
		globalHook = cfg.Alerting.Webhook.URL
	}
	for _, ti := range ten.Targets {
		if _, dup := routes[ti.Target.ID]; dup {
			continue // a config target took the id since; the config wins
		}
		t := ti.Target
		targets = append(targets, t.Target)
		groups := map[string]config.ContactGroup{}
		policies := map[string]config.AlertPolicy{}
		if ti.TenantID == store.DefaultTenant {
			for _, g := range cfg.ContactGroups {
				groups[g.Name] = g
			}
			for _, p := range cfg.Policies {
				policies[p.Name] = p
			}
		}
		for _, g := range ten.Groups[ti.TenantID] {
			groups[g.Name] = g
		}
		for _, p := range ten.Policies[ti.TenantID] {
			policies[p.Name] = p
		}
		r := alerting.Route{Name: t.Name, URL: targetURL(t.Target), Labels: t.Labels, DependsOn: t.DependsOn}
		if pol, ok := policies[t.AlertPolicy]; ok {
			r.Policy = pol.Policy
			r.Channels = pol.Channels
			r.Recipients = recipients(groups, pol.ContactGroups, globalHook)
			r.Escalation = recipients(groups, pol.EscalateTo, globalHook)
		}
		routes[t.ID] = r
	}
	var windows []alerting.Window
	resolve := func(tenant string, ws []alerting.Window) {
		for _, w := range ws {
			var ids []string
			for _, t := range byTenant[tenant] {
				if w.Applies(t.ID, t.Labels) {
					ids = append(ids, t.ID)
				}
			}
			if len(ids) == 0 {
				continue
			}
			w.Targets, w.Labels = ids, nil
			windows = append(windows, w)
		}
	}
	resolve(store.DefaultTenant, cfg.Maintenance)
	for tenant, ws := range ten.Windows {
		resolve(tenant, ws)
	}
	return targets, routes, windows
}
