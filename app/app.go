// Package app wires upwatch's parts together and runs them: the store, the
// write buffer, the prober, the scheduler and the HTTP server. cmd/upwatch
// calls Run; so do the end-to-end tests, in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/demo"
	"github.com/upwatch/upwatch/internal/clock"
	"github.com/upwatch/upwatch/metrics"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/schedule"
	"github.com/upwatch/upwatch/store"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/influx"
	"github.com/upwatch/upwatch/tsdb/spool"
	"github.com/upwatch/upwatch/tsdb/sqlite"
	"github.com/upwatch/upwatch/tsdb/victoria"
	"github.com/upwatch/upwatch/tsdb/wal"
)

// Options are what Run needs. Config is required; the rest have defaults.
type Options struct {
	Config *config.Config
	// ConfigPath is re-read on Reload; empty disables reloading.
	ConfigPath string
	Getenv     func(string) string
	Logger     *slog.Logger
	// Listener, if set, is used instead of listening on Config.Listen
	// (tests pass one bound to 127.0.0.1:0).
	Listener net.Listener
	// Reload asks for the config file to be read again (SIGHUP).
	Reload <-chan struct{}
	// Registry receives every metric; a fresh one is made if nil.
	Registry          *prometheus.Registry
	Version, Revision string
	// ShutdownTimeout bounds the drain after ctx ends (default 30s).
	ShutdownTimeout time.Duration
	// Ready, if set, is called once everything is serving.
	Ready func(addr net.Addr)
	// Now is the one clock of every component (default time.Now): tests
	// run the service at the date they choose.
	Now func() time.Time
}

// File names inside the data dir: the samples and the registry (alert
// state, incidents, outbox).
const (
	DBFile       = "upwatch.db"
	RegistryFile = "registry.db"
)

// Run starts upwatch and blocks until ctx ends, then shuts down in order:
// stop taking HTTP requests, let in-flight checks finish, flush buffered
// samples, close the store. It returns the first fatal error.
func Run(ctx context.Context, o Options) error {
	if o.Config == nil {
		return errors.New("app: no config")
	}
	cfg := o.Config
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	o.Now = clock.Or(o.Now)
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	metrics.RegisterBuildInfo(reg, o.Version, o.Revision)

	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.release()

	samples, spoolStats, err := openStore(ctx, cfg, o.Now, log, reg)
	if err != nil {
		return err
	}
	defer samples.Close()

	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen %s: %w", cfg.Listen, errors.Unwrap(err))
		}
	}

	masterKey, keySource, err := loadMasterKey(cfg, o.Getenv, log)
	if err != nil {
		return err
	}
	registry, ownsRegistry, err := openRegistry(ctx, cfg, masterKey, o.Now, log.With("component", "registry"))
	if err != nil {
		return err
	}
	defer registry.Close()
	if err := checkMasterKey(ctx, cfg, registry, masterKey, keySource); err != nil {
		return err
	}

	wlog, err := openWAL(ctx, cfg, samples, log.With("component", "wal"), reg)
	if err != nil {
		return err
	}
	defer wlog.Close()
	bufOpts := tsdb.BufferOptions{Registerer: reg, Logger: log.With("component", "buffer"), Log: wlog}
	if cfg.Storage.Type == "influxdb" {
		bufOpts.BatchSize, bufOpts.FlushInterval = cfg.Storage.InfluxDB.BatchSize, cfg.Storage.InfluxDB.FlushInterval
	}
	buffer := tsdb.NewBuffer(samples, bufOpts)
	buffer.Start()
	mirror, err := openMirror(cfg, log, reg)
	if err != nil {
		return err
	}
	probe := metrics.NewProbe(reg)
	p := prober.New(prober.Options{Location: cfg.Location, AllowPrivate: cfg.AllowPrivateTargets, Now: o.Now, Logger: log.With("component", "prober")})

	renderer, err := notify.NewRenderer(cfg.Alerting.TemplatesDir)
	if err != nil {
		return err
	}
	dispatcher := alerting.NewDispatcher(alerting.DispatcherOptions{
		Outbox: registry, Notifiers: buildNotifiers(cfg, p), Now: o.Now,
		Registerer: reg, Logger: log.With("component", "dispatcher"),
	})
	// The engine asks the scheduler (made next: its sink feeds the engine)
	// for an immediate check of a parent a child's DOWN waits for.
	var sched *schedule.Scheduler
	engine, err := alerting.NewEngine(ctx, alerting.EngineOptions{
		Store: registry, Renderer: renderer, Link: cfg.Alerting.Link, Wake: dispatcher.Wake, Now: o.Now,
		CheckNow:   func(id string) { sched.CheckNow(id) },
		Registerer: reg, Logger: log.With("component", "alerting"),
	})
	if err != nil {
		return err
	}
	// Alert state is committed in groups from here on; Stop (below, once
	// the checks are done) commits what is left before the dispatcher's
	// last round. The deferred one covers an early return.
	engine.Start()
	defer func() { _ = engine.Stop(context.WithoutCancel(ctx)) }()

	sched = schedule.New(schedule.Options{
		Check:   p.Check,
		Workers: cfg.Workers,
		Sink: func(ctx context.Context, r prober.Result) {
			// The write-ahead log first: nothing else sees a check the
			// log does not have.
			if err := buffer.Record(ctx, r); err != nil {
				log.Error("sample not recorded", "target", r.TargetID, "err", err)
			}
			probe.Observe(r)
			mirror.record(r)
			if err := engine.Observe(ctx, r); err != nil {
				log.Error("alert state not committed; retried with the next result", "target", r.TargetID, "err", err)
			}
		},
		Registerer: reg,
		Logger:     log.With("component", "scheduler"),
		Now:        o.Now,
	})
	targets := newTargetSet(probe)
	apiHandler, live, err := startAPI(ctx, apiDeps{cfg: cfg, getenv: o.Getenv, log: log, registry: registry, samples: samples,
		masterKey: masterKey, engine: engine, sched: sched, targets: targets, now: o.Now})
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           mountAPI(routes(reg, samples, spoolStats, sched, cfg, o.Now), apiHandler),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	runCtx, stopChecks := context.WithCancel(ctx)
	defer stopChecks()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := sched.Run(runCtx); err != nil {
			log.Error("scheduler stopped", "err", err)
		}
	})
	if o.ConfigPath != "" && o.Reload != nil {
		wg.Go(func() { reloadLoop(runCtx, o, log, live) })
	}
	wg.Go(func() { engine.Run(runCtx, time.Second) })
	// The dispatcher outlives the checks, so the last transitions' messages
	// are handed over; what is still queued is sent after a restart.
	// A process that owns the embedded registry alone knows that leases
	// still held were left by a crash of its own, and their messages should
	// go out now. A shared registry's leases may be another dispatcher's.
	if ownsRegistry {
		if n, err := registry.ReleaseLeases(ctx); err != nil {
			log.Error("releasing stale outbox leases", "err", err)
		} else if n > 0 {
			log.Info("released outbox leases left by an earlier run", "notifications", n)
		}
	}
	dispatchCtx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDispatch()
	dispatched := make(chan struct{})
	go func() { dispatcher.Run(dispatchCtx); close(dispatched) }()
	log.Info("upwatch started", "listen", ln.Addr().String(), "targets", len(cfg.Targets),
		"data_dir", cfg.DataDir, "location", cfg.Location)
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}

	var fatal error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		fatal = fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down")
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stopChecks()
	// In-flight checks end by their own timeout and their samples are
	// recorded; the shutdown timeout bounds the wait all the same.
	checksDone := make(chan struct{})
	go func() { wg.Wait(); close(checksDone) }()
	select {
	case <-checksDone:
	case <-drainCtx.Done():
		log.Error("checks still running at the shutdown timeout; not waiting for them", "timeout", o.ShutdownTimeout)
	}
	if err := engine.Stop(drainCtx); err != nil {
		log.Error("alert state left uncommitted at the shutdown timeout", "err", err)
	}
	dispatcher.Wake()
	stopDispatch()
	<-dispatched
	if err := buffer.Close(drainCtx); err != nil {
		fatal = errors.Join(fatal, fmt.Errorf("flushing samples: %w", err))
	}
	mirror.close(drainCtx, log)
	log.Info("stopped")
	return fatal
}

// registryStore is what upwatch needs of the registry; the embedded
// SQLite file and PostgreSQL both provide it.
type registryStore interface {
	api.TenantStore
	api.KeyStore
	api.KeyAuthenticator
	api.AuditLog
	api.TargetStore
	api.TargetBatcher
	api.ObjectStore
	api.ReportKeyStore
	api.IncidentReader
	alerting.StateStore
	alerting.Outbox
	ReleaseLeases(ctx context.Context) (int64, error)
	Close() error
}

// openRegistry opens the configured registry and says whether this process
// owns it alone (the embedded file) or shares it (PostgreSQL).
func openRegistry(ctx context.Context, cfg *config.Config, mk crypt.MasterKey, now func() time.Time, log *slog.Logger) (registryStore, bool, error) {
	if cfg.Registry.Type == "postgres" {
		pg, err := store.OpenPostgres(ctx, store.PostgresOptions{URL: cfg.Registry.Postgres.URL.Reveal(), MasterKey: mk, Now: now, Logger: log})
		return pg, false, err
	}
	db, err := store.OpenSQLite(ctx, store.SQLiteOptions{
		Path: filepath.Join(cfg.DataDir, RegistryFile), Logger: log, MasterKey: mk, Now: now,
	})
	return db, true, err
}

// spoolStats says what waits in the sample store's spool; ok is false
// without one. Only InfluxDB has a spool; openStore returns nil for the rest.
type spoolStats func() (st spool.Stats, ok bool)

func openStore(ctx context.Context, cfg *config.Config, now func() time.Time, log *slog.Logger, reg prometheus.Registerer) (tsdb.Store, spoolStats, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, errors.Unwrap(err))
	}
	if in := cfg.Storage.InfluxDB; cfg.Storage.Type == "influxdb" {
		s, err := influx.Open(influx.Options{
			URL: in.URL, Org: in.Org, Bucket: in.Bucket, Token: in.Token.Reveal(), Timeout: in.Timeout,
			Spool:      spool.Options{Dir: in.Spool.Dir, MaxBytes: in.Spool.MaxBytes, Full: spool.FullPolicy(in.Spool.Full)},
			Registerer: reg, Logger: log.With("component", "store"),
		})
		if err != nil {
			return nil, nil, err
		}
		return s, s.SpoolStats, nil
	}
	s, err := sqlite.Open(ctx, sqlite.Options{
		Path:            filepath.Join(cfg.DataDir, DBFile),
		RawRetention:    cfg.Storage.Retention.RawRetention(),
		RollupRetention: cfg.Storage.Retention.RollupRetention(),
		Now:             now,
		Logger:          log.With("component", "store"),
	})
	return s, nil, err
}

// openWAL opens the write-ahead log and writes what an earlier run left in
// it to the store, before any new check: that run may have been killed
// before its buffer wrote them. It waits for the store until ctx ends.
func openWAL(ctx context.Context, cfg *config.Config, store tsdb.Writer, log *slog.Logger, reg prometheus.Registerer) (*wal.WAL, error) {
	wc := cfg.Storage.WAL
	w, err := wal.Open(wal.Options{
		Dir: wc.Path(cfg.DataDir), MaxBytes: wc.MaxBytes, SyncInterval: wc.SyncInterval, Full: spool.FullPolicy(wc.Full),
		Registerer: reg, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("storage.wal: %w", err)
	}
	if st := w.Stats(); st.Samples > 0 {
		log.Info("write-ahead log holds samples from an earlier run; writing them to the store", "samples", st.Samples)
	}
	n, err := w.Replay(ctx, 0, store.WriteSamples)
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("write-ahead log replayed", "samples", n)
	}
	return w, nil
}

// mirror copies samples to the optional VictoriaMetrics write target
// through its own Buffer, so a slow or absent server only fills that queue:
// record never waits, and a sample that finds the queue full is dropped and
// counted. A nil mirror does nothing.
type mirror struct {
	buf     *tsdb.Buffer
	dropped prometheus.Counter
	timeout time.Duration
}

// noWait is an already cancelled context: Buffer.Record with it takes a
// sample only if the queue has room.
var noWait = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func openMirror(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*mirror, error) {
	vm := cfg.Storage.VictoriaMetrics
	if vm.URL == "" {
		return nil, nil
	}
	w, err := victoria.New(victoria.Options{URL: vm.URL, Timeout: vm.Timeout, Registerer: reg, Logger: log.With("component", "victoriametrics")})
	if err != nil {
		return nil, err
	}
	m := &mirror{
		buf: tsdb.NewBuffer(w, tsdb.BufferOptions{
			MetricPrefix: "upwatch_victoriametrics", Registerer: reg, Logger: log.With("component", "victoriametrics"),
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_victoriametrics_dropped_samples_total",
			Help: "Samples not sent to VictoriaMetrics because its queue was full.",
		}),
		timeout: vm.Timeout,
	}
	reg.MustRegister(m.dropped)
	m.buf.Start()
	return m, nil
}

func (m *mirror) record(r prober.Result) {
	if m != nil && m.buf.Record(noWait, r) != nil {
		m.dropped.Inc()
	}
}

// close sends what is queued, for at most the request timeout: the mirror
// is best effort and does not hold up shutdown for long.
func (m *mirror) close(ctx context.Context, log *slog.Logger) {
	if m == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	if err := m.buf.Close(ctx); err != nil {
		log.Warn("samples not sent to VictoriaMetrics", "err", err)
	}
}

// reloadLoop re-reads the config file on each reload request. A file that
// does not validate is refused whole and the running targets stay.
func reloadLoop(ctx context.Context, o Options, log *slog.Logger, live *liveTargets) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.Reload:
		}
		cfg, err := config.Load(o.ConfigPath, o.Getenv)
		if err != nil {
			log.Error("config reload refused; keeping the running config", "err", err)
			continue
		}
		if restartOnly(o.Config, cfg) {
			log.Warn("config reload: only targets are reloaded; listen, data_dir, storage, location, workers, demo, api and metrics need a restart")
		}
		if err := live.reload(ctx, cfg); err != nil {
			log.Error("config reload refused; keeping the running config", "err", err)
			continue
		}
		log.Info("config reloaded", "targets", len(cfg.Targets))
	}
}

func restartOnly(old, cur *config.Config) bool {
	return old.Listen != cur.Listen || old.DataDir != cur.DataDir || old.Storage != cur.Storage ||
		old.Location != cur.Location || old.Workers != cur.Workers || old.Demo != cur.Demo ||
		old.AllowPrivateTargets != cur.AllowPrivateTargets || old.API != cur.API || old.Metrics != cur.Metrics
}

// targetSet keeps the probe series to the targets that are checked, so
// removed and paused ones lose theirs.
type targetSet struct {
	probe *metrics.Probe
}

func newTargetSet(probe *metrics.Probe) *targetSet {
	return &targetSet{probe: probe}
}

func (s *targetSet) replace(targets []prober.Target) []prober.Target {
	ids := make([]string, 0, len(targets))
	for _, t := range targets {
		if !t.Paused {
			ids = append(ids, t.ID)
		}
	}
	s.probe.Retain(ids)
	return targets
}

// spooled, when not nil, reports the sample store's spool: a store that
// cannot be reached while samples spool to disk is still ready.
func routes(reg *prometheus.Registry, store tsdb.Store, spooled spoolStats, sched *schedule.Scheduler, cfg *config.Config, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", protectMetrics(cfg.Metrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: false})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{"store": "ok", "scheduler": "ok"}
		status := http.StatusOK
		var st spool.Stats
		var spooling bool
		if spooled != nil {
			st, spooling = spooled()
		}
		if spooling {
			checks["spool"] = fmt.Sprintf("%d samples waiting (%d bytes)", st.Samples, st.Bytes)
		}
		if err := store.Ping(ctx); err != nil && spooling {
			// Still ready: samples wait in the spool and are replayed.
			checks["store"] = "unreachable, samples spooled to disk: " + err.Error()
		} else if err != nil {
			checks["store"], status = "unreachable: "+err.Error(), http.StatusServiceUnavailable
		}
		if !sched.Running() {
			checks["scheduler"], status = "not running", http.StatusServiceUnavailable
		}
		writeJSON(w, status, checks)
	})
	if cfg.Demo {
		mux.Handle("GET /demo/", demo.Handler(now))
	}
	return mux
}
