package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/schedule"
	"github.com/upwatch/upwatch/push"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
	"github.com/upwatch/upwatch/tsdb"
)

// Environment variables of the bootstrap admin key (an API key, "uw_..."),
// stored hashed for tenant "default" on a start when that tenant has no
// admin key.
const (
	EnvBootstrapKey     = "UPWATCH_BOOTSTRAP_KEY"
	EnvBootstrapKeyFile = "UPWATCH_BOOTSTRAP_KEY_FILE"
	// EnvBootstrapAgentKey and EnvBootstrapAgentLocation store one agent
	// key (hashed) for a location of tenant "default" on a start when no
	// key with its hash was ever stored, so a stack can start its agents
	// without an admin creating their key first (docker-compose.yml).
	EnvBootstrapAgentKey      = "UPWATCH_BOOTSTRAP_AGENT_KEY"
	EnvBootstrapAgentLocation = "UPWATCH_BOOTSTRAP_AGENT_LOCATION"
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

// bootstrapAgentKey stores the agent key the environment names, if any.
func bootstrapAgentKey(ctx context.Context, d apiDeps) error {
	key, loc := strings.TrimSpace(d.getenv(EnvBootstrapAgentKey)), d.getenv(EnvBootstrapAgentLocation)
	if key == "" && loc == "" {
		return nil
	}
	if key == "" || loc == "" {
		return fmt.Errorf("set both %s and %s, or neither", EnvBootstrapAgentKey, EnvBootstrapAgentLocation)
	}
	created, err := api.BootstrapAgent(ctx, d.registry, key, loc, d.now())
	if err != nil {
		return fmt.Errorf("%s: %w", EnvBootstrapAgentKey, err)
	}
	if created {
		d.log.Info("bootstrap agent key stored (hashed) for tenant default", "location", loc)
	}
	return nil
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
	pings     *push.Monitor
	targets   *targetSet
	fleet     *fleet.Fleet
	agents    api.AgentService
	now       func() time.Time
	// checksLocal reports whether this server runs the local checks now.
	checksLocal func() bool
	// resultsRoute is where agent results go (nil: here, always).
	resultsRoute func(context.Context) (*url.URL, error)
}

// startAPI stores the bootstrap key, builds the API and applies the config
// file's and every tenant's targets to the scheduler and the engine.
func startAPI(ctx context.Context, d apiDeps) (*api.Server, *liveTargets, error) {
	key, err := bootstrapKey(d.getenv)
	if err != nil {
		return nil, nil, err
	}
	created, err := api.Bootstrap(ctx, d.registry, d.registry, key, d.now())
	if err != nil {
		return nil, nil, fmt.Errorf("bootstrap key: %w", err)
	}
	if created {
		d.log.Info("bootstrap admin key stored (hashed) for tenant default")
	}
	if err := bootstrapAgentKey(ctx, d); err != nil {
		return nil, nil, err
	}
	if n, err := tenancy.Reseal(ctx, d.registry, d.masterKey); err != nil {
		d.log.Error("sealing the credentials of stored API objects", "sealed", n, "err", err)
	} else if n > 0 {
		d.log.Info("sealed the credentials of stored API objects written in clear", "count", n)
	}
	live := &liveTargets{reg: d.registry, mk: d.masterKey, engine: d.engine, sched: d.sched, pings: d.pings, targets: d.targets,
		checksLocal: d.checksLocal, fleet: d.fleet, log: d.log.With("component", "api")}
	if err := live.reload(ctx, d.cfg); err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	srv, err := api.New(api.Options{
		Stores: api.Stores{Tenants: d.registry, Keys: d.registry, KeyAuth: d.registry, Audit: d.registry,
			Targets: d.registry, Batch: d.registry, Objects: d.registry, ReportKeys: d.registry,
			StatusPages: d.registry},
		Samples: d.samples, Incidents: d.registry, Acks: d.registry, LocationEvents: d.registry, States: d.engine.State,
		MasterKey: d.masterKey, Config: live.cfg.Load, Now: d.now, Logger: d.log.With("component", "api"),
		OnChange: func(string) { live.apply(context.WithoutCancel(ctx)) },
		AuthFailures: api.AuthFailureLimit{Max: d.cfg.API.AuthFailures.Max, Window: d.cfg.API.AuthFailures.Window,
			MaxSources: d.cfg.API.AuthFailures.MaxSources},
		TrustedProxies: d.cfg.API.TrustedProxyPrefixes(),
		Agents:         d.agents, AgentClientCert: d.cfg.Server.TLS.ClientCAFile != "", ResultsRoute: d.resultsRoute,
	})
	if err != nil {
		return nil, nil, err
	}
	return srv, live, nil
}

// mountAPI serves /api/v1/ with the API, /debug/pprof/ (when dbg.PProf is
// on) to the operator's admin keys, and everything else with rest.
func mountAPI(rest http.Handler, srv *api.Server, dbg config.Debug) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(api.Prefix+"/", srv.Handler())
	if dbg.PProf {
		mux.Handle("/debug/pprof/", srv.OperatorOnly(pprofHandler()))
	}
	mux.Handle("/", rest)
	return mux
}

// liveTargets merges the config file's targets and every tenant's API
// targets into the scheduler and the alert engine, again after each API
// write and each config reload.
type liveTargets struct {
	mu      sync.Mutex
	cfg     atomic.Pointer[config.Config]
	reg     tenancy.Reader
	mk      crypt.MasterKey
	engine  *alerting.Engine
	sched   *schedule.Scheduler
	pings   *push.Monitor
	targets *targetSet
	// checksLocal, if set, says whether the targets are checked here now
	// (on a shared registry, only by the lease holder).
	checksLocal func() bool
	fleet       *fleet.Fleet // hands the targets to probe agents
	log         *slog.Logger
}

// reload runs cfg's targets with the API's, unless cfg declares an id
// tenant default already has as an API target: then it changes nothing and
// says which.
func (l *liveTargets) reload(ctx context.Context, cfg *config.Config) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ten := l.tenancy(ctx)
	if err := clashes(cfg, ten); err != nil {
		return err
	}
	l.cfg.Store(cfg)
	l.run(cfg, ten)
	return nil
}

// apply rebuilds what runs after an API write.
func (l *liveTargets) apply(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.run(l.cfg.Load(), l.tenancy(ctx))
}

// tenancy reads the API's objects; what cannot be read is left out, loudly.
func (l *liveTargets) tenancy(ctx context.Context) tenancy.Set {
	ten, err := tenancy.Load(ctx, l.reg, l.mk)
	if err != nil {
		l.log.Error("some API objects could not be loaded; they are left out", "err", err)
	}
	return ten
}

func (l *liveTargets) run(cfg *config.Config, ten tenancy.Set) {
	targets, routes, windows := tenancy.Routes(cfg, ten)
	// A paused target is not routed: it exports no state (a DOWN one would
	// keep upwatch_target_up 0 and fire TargetDown) and sends no reminders;
	// its stored state waits for it to resume.
	for _, t := range targets {
		if t.Paused {
			delete(routes, t.ID)
		}
	}
	l.engine.Update(routes, windows)
	all := l.targets.replace(targets)
	// Push targets are pinged, not checked: any server takes their pings;
	// agents and the scheduler get the others.
	l.pings.Update(all)
	checked := push.Others(all)
	l.fleet.SetTargets(checked) // agents may ask any server, leader or not
	local := localTargets(cfg, checked)
	if l.checksLocal != nil && !l.checksLocal() {
		local = nil
	}
	l.sched.Update(local)
}

// localTargets are those serve checks itself, as its own location: every
// target checked from it, unless server.check_locally is false. When that
// is all of them it is all itself, not a copy (read-only for both).
func localTargets(cfg *config.Config, all []prober.Target) []prober.Target {
	if !cfg.Server.ChecksLocally() {
		return nil
	}
	if !slices.ContainsFunc(all, func(t prober.Target) bool { return !t.CheckedFrom(cfg.Location) }) {
		return all
	}
	out := make([]prober.Target, 0, len(all))
	for _, t := range all {
		if t.CheckedFrom(cfg.Location) {
			out = append(out, t)
		}
	}
	return out
}

// clashes names the config file's targets whose id tenant default also
// uses for an API target. Such a file is refused: one id, two targets.
// (One pass over each side: a config of 250,000 targets meets many API ones.)
func clashes(cfg *config.Config, ten tenancy.Set) error {
	apiIDs := map[string]bool{}
	for _, ti := range ten.Targets {
		if ti.TenantID == registry.DefaultTenant {
			apiIDs[ti.Target.ID] = true
		}
	}
	var errs []error
	for i, t := range cfg.Targets {
		if apiIDs[t.ID] {
			errs = append(errs, fmt.Errorf("%s: id %q is already an API target of tenant default; rename one of them", cfg.TargetPath(i), t.ID))
		}
	}
	return errors.Join(errs...)
}
