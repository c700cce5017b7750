package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/internal/clock"
	"github.com/upwatch/upwatch/lease"
	"github.com/upwatch/upwatch/metrics"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/schedule"
	"github.com/upwatch/upwatch/push"
	"github.com/upwatch/upwatch/statuspage"
	"github.com/upwatch/upwatch/tsdb"
)

// Service is upwatch built: New makes every part, Start runs them, Stop
// ends them.
type Service struct {
	o   Options
	log *slog.Logger
	reg *prometheus.Registry

	samples      tsdb.Store
	spool        spoolStats // nil without a spool
	ln           net.Listener
	masterKey    crypt.MasterKey
	registry     registryStore
	ownsRegistry bool
	buffer       *tsdb.Buffer
	mirror       *mirror
	probe        *metrics.Probe
	dispatcher   *alerting.Dispatcher
	engine       *alerting.Engine
	// elector and leader are set on a shared registry: only the holder
	// of the alerting lease evaluates alerts, sends and runs local checks.
	elector  *lease.Elector
	leader   *leadership
	evaluate Evaluator
	sched    *schedule.Scheduler
	agents   *agentService
	claims   resultClaimer // fenced by the alerting lease on a shared registry
	pings    *push.Monitor // push targets: pinged, not checked
	live     *liveTargets
	srv      *http.Server
	pages    *statuspage.Handler
	serveErr chan error

	mu      sync.Mutex
	state   int // built, started or stopped
	cleanup stack

	stopOnce sync.Once
	stopErr  error
}

const (
	built = iota
	started
	stopped
)

// stack holds what was made, in order, to release it in reverse.
type stack []func(context.Context) error

func (s *stack) push(f func(context.Context) error) { *s = append(*s, f) }

// closer pushes a release whose error is only worth a log line.
func (s *stack) closer(log *slog.Logger, what string, close func() error) {
	s.push(func(context.Context) error {
		if err := close(); err != nil {
			log.Warn("closing "+what, "err", err)
		}
		return nil
	})
}

// unwind releases everything, last made first, and joins the errors.
func (s *stack) unwind(ctx context.Context) error {
	var errs []error
	for i := len(*s) - 1; i >= 0; i-- {
		errs = append(errs, (*s)[i](ctx))
	}
	*s = nil
	return errors.Join(errs...)
}

// New builds upwatch: it takes the data dir's lock, opens the stores and
// the write-ahead log (replaying it), listens, and makes the alerting and
// the API, applying the configured targets. Nothing is checked or sent
// before Start. On error, what was already made is released.
func New(ctx context.Context, o Options) (_ *Service, err error) {
	if o.Config == nil {
		return nil, errors.New("app: no config")
	}
	s := &Service{o: withDefaults(o), serveErr: make(chan error, 1)}
	s.log, s.reg = s.o.Logger, s.o.Registry
	defer func() {
		if err != nil {
			releaseCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ShutdownTimeout)
			defer cancel()
			err = errors.Join(err, s.cleanup.unwind(releaseCtx))
		}
	}()
	if s.o.Listener != nil {
		s.adopt(s.o.Listener)
	}
	metrics.RegisterBuildInfo(s.reg, s.o.Version, s.o.Revision)
	for _, step := range []func(context.Context) error{s.openData, s.listen, s.openRegistry, s.openWrites, s.buildChecks, s.buildHTTP} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func withDefaults(o Options) Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	o.Now = clock.Or(o.Now)
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	return o
}

// openData locks the data dir and opens the sample store.
func (s *Service) openData(ctx context.Context) error {
	lock, err := lockDataDir(s.o.Config.DataDir)
	if err != nil {
		return err
	}
	s.cleanup.push(func(context.Context) error { lock.release(); return nil })
	if s.samples, s.spool, err = openSamples(ctx, s.o.Config, s.o.Now, s.log, s.reg); err != nil {
		return err
	}
	s.cleanup.closer(s.log, "the sample store", s.samples.Close)
	return nil
}

func (s *Service) listen(context.Context) error {
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.o.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.o.Config.Listen, errors.Unwrap(err))
	}
	s.adopt(ln)
	return nil
}

// adopt makes ln the service's; serving closes it too, so a second close
// has nothing to report.
func (s *Service) adopt(ln net.Listener) {
	s.ln = ln
	s.cleanup.push(func(context.Context) error { _ = ln.Close(); return nil })
}

// openRegistry loads the master key, opens the registry and checks that
// the key opens what the registry holds.
func (s *Service) openRegistry(ctx context.Context) error {
	cfg := s.o.Config
	var keySource string
	var err error
	if s.masterKey, keySource, err = loadMasterKey(cfg, s.o.Getenv, s.log); err != nil {
		return err
	}
	if s.registry, s.ownsRegistry, err = openRegistry(ctx, cfg, s.masterKey, s.o.Now, s.log.With("component", "registry")); err != nil {
		return err
	}
	s.cleanup.closer(s.log, "the registry", s.registry.Close)
	return checkMasterKey(ctx, cfg, s.registry, s.masterKey, keySource)
}

// openWrites opens the write-ahead log, the write buffer in front of the
// sample store and the optional VictoriaMetrics mirror.
func (s *Service) openWrites(ctx context.Context) error {
	cfg := s.o.Config
	wlog, err := openWAL(ctx, cfg, s.samples, s.log.With("component", "wal"), s.reg)
	if err != nil {
		return err
	}
	s.cleanup.closer(s.log, "the write-ahead log", wlog.Close)
	bufOpts := tsdb.BufferOptions{Registerer: s.reg, Logger: s.log.With("component", "buffer"), Log: wlog}
	if cfg.Storage.Type == "influxdb" {
		bufOpts.BatchSize, bufOpts.FlushInterval = cfg.Storage.InfluxDB.BatchSize, cfg.Storage.InfluxDB.FlushInterval
	}
	s.buffer = tsdb.NewBuffer(s.samples, bufOpts)
	s.buffer.Start()
	s.cleanup.push(func(ctx context.Context) error {
		if err := s.buffer.Close(ctx); err != nil {
			return fmt.Errorf("flushing samples: %w", err)
		}
		return nil
	})
	if s.mirror, err = openMirror(cfg, s.log, s.reg); err != nil {
		return err
	}
	s.cleanup.push(func(ctx context.Context) error { s.mirror.close(ctx, s.log); return nil })
	return nil
}

// buildChecks makes the prober, the alerting and the scheduler whose
// results feed them all.
func (s *Service) buildChecks(ctx context.Context) error {
	cfg, log := s.o.Config, s.log
	s.probe = metrics.NewProbe(metrics.ProbeOptions{Full: cfg.Metrics.PerTarget == config.PerTargetFull, Registerer: s.reg})
	p := prober.New(prober.Options{Location: cfg.Location, AllowPrivate: cfg.AllowPrivateTargets, Now: s.o.Now, Logger: log.With("component", "prober")})
	renderer, err := notify.NewRenderer(cfg.Alerting.TemplatesDir)
	if err != nil {
		return err
	}
	// On a shared registry the engine's commits and the dispatcher's
	// claims are fenced by the alerting lease.
	var alertStore interface {
		alerting.StateStore
		alerting.Outbox
	} = s.registry
	s.claims = s.registry
	if !s.ownsRegistry {
		if s.elector, err = lease.New(lease.Options{
			Store: s.registry, Name: alertingLease, TTL: cfg.Registry.Lease.TTL, Renew: cfg.Registry.Lease.Renew,
			URL: advertiseURL(cfg, s.ln.Addr()), Registerer: s.reg, Logger: log.With("component", "lease"),
		}); err != nil {
			return err
		}
		fenced := s.registry.Fenced(alertingLease, s.elector.Token, s.reg)
		alertStore, s.claims = fenced, fenced
	} else {
		alwaysLeader(s.reg)
	}
	s.dispatcher = alerting.NewDispatcher(alerting.DispatcherOptions{
		Outbox: alertStore, Notifiers: buildNotifiers(cfg, p), Now: s.o.Now,
		Registerer: s.reg, Logger: log.With("component", "dispatcher"),
	})
	// The engine asks the scheduler (made next: its sink feeds the engine)
	// for an immediate check of a parent a child's DOWN waits for.
	s.engine, err = alerting.NewEngine(ctx, alerting.EngineOptions{
		Store: alertStore, Renderer: renderer, Link: cfg.Alerting.Link, Wake: s.dispatcher.Wake, Now: s.o.Now,
		CheckNow:   func(id string) { s.sched.CheckNow(id) },
		Acks:       s.registry,
		Registerer: s.reg, Logger: log.With("component", "alerting"),
		Locations: cfg.Alerting.Locations.Options(),
		OnLocationEvent: func(ev alerting.LocationEvent) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := s.registry.RecordLocationEvent(ctx, ev); err != nil {
				log.Error("recording a probe location event", "location", ev.Location, "kind", ev.Kind, "err", err)
			}
		},
	})
	if err != nil {
		return err
	}
	// Alert state is committed in groups from here on (on a shared
	// registry, from taking the lease on). Stopping the checks commits
	// what is left before the dispatcher's last round; this covers a start
	// that fails later (Stop is idempotent).
	s.evaluate = s.engine
	if s.elector != nil {
		s.leader = newLeadership(s.engine, s.reg)
		s.evaluate = s.leader
	} else {
		s.engine.Start()
	}
	s.cleanup.push(func(ctx context.Context) error { return s.engine.Stop(ctx) })
	s.sched = schedule.New(schedule.Options{
		// The scheduler bounds overruns, so checks run on its workers.
		Check:      p.CheckInline,
		Overran:    p.Overran,
		Coalesce:   cfg.StartWindowOrDefault(),
		Workers:    cfg.Workers,
		Sink:       s.record,
		Registerer: s.reg,
		Logger:     log.With("component", "scheduler"),
		Now:        s.o.Now,
	})
	s.pings = push.New(push.Options{Sink: s.record, Location: cfg.Location, Now: s.o.Now, Logger: log.With("component", "push")})
	return nil
}

// record takes one check's result to everything that wants it.
func (s *Service) record(ctx context.Context, r prober.Result) {
	// The write-ahead log first: nothing else sees a check the log does
	// not have.
	if err := s.buffer.Record(ctx, r); err != nil {
		s.log.Error("sample not recorded", "target", r.TargetID, "err", err)
	}
	s.probe.Observe(r)
	s.mirror.record(r)
	if err := s.evaluate.Observe(ctx, r); err != nil {
		s.log.Error("alert state not committed; retried with the next result", "target", r.TargetID, "err", err)
	}
}

// buildHTTP makes the API, applies the targets to the scheduler and the
// engine, and makes the HTTP server.
func (s *Service) buildHTTP(ctx context.Context) error {
	cfg := s.o.Config
	fl := fleet.New(fleet.Options{Store: s.registry, TTL: cfg.Agents.TTL, Now: s.o.Now})
	s.agents = &agentService{fleet: fl, claims: s.claims, record: s.record, maxBatch: cfg.Agents.MaxBatch,
		now: s.o.Now, log: s.log.With("component", "agents")}
	deps := apiDeps{cfg: cfg, getenv: s.o.Getenv, log: s.log, registry: s.registry, samples: s.samples,
		masterKey: s.masterKey, engine: s.engine, sched: s.sched, pings: s.pings, targets: newTargetSet(s.probe), fleet: fl, agents: s.agents, now: s.o.Now,
		checksLocal: s.checksLocal}
	if s.elector != nil {
		// Only the lease holder evaluates alerts: the others hand it the
		// agents' results (see resultsRoute).
		deps.resultsRoute = (&resultsRoute{holders: s.registry, self: s.elector.Holder(), leading: s.checksLocal}).route
	}
	apiServer, live, err := startAPI(ctx, deps)
	if err != nil {
		return err
	}
	s.live = live
	webServer, err := startWeb(ctx, apiDeps{cfg: cfg, log: s.log, registry: s.registry, samples: s.samples, engine: s.engine, now: s.o.Now}, apiServer)
	if err != nil {
		return err
	}
	pages, err := newStatusPages(apiServer, s.registry, s.samples, s.engine, s.o.Now, s.log)
	if err != nil {
		return err
	}
	s.pages = pages
	rest := routes(metrics.Handler(s.reg, s.probe, s.engine), s.samples, s.spool, s.sched, s.pings, cfg, s.o.Now)
	s.srv = &http.Server{
		// A status page's custom domain is matched first, then the web
		// interface's / and /ui/, then the API, /metrics and the rest.
		Handler:           mountPublic(mountWeb(mountAPI(rest, apiServer, cfg.Debug), webServer), pages, cfg.StatusPages.CustomDomains),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if cfg.Server.TLS.Enabled() {
		if s.srv.TLSConfig, err = cfg.Server.TLS.Config(); err != nil {
			return err
		}
	}
	return nil
}

// checksLocal reports whether this server runs the local checks now: on
// a shared registry only the lease holder does, so no target is checked
// twice.
func (s *Service) checksLocal() bool {
	return s.leader == nil || s.leader.leading.Load()
}

// Addr is where the service listens.
func (s *Service) Addr() net.Addr { return s.ln.Addr() }

// Start serves HTTP, starts the dispatcher, then the checks, the alert
// engine's clock and the config reloads. ctx carries values only: Stop
// ends what Start began. Start after Start or Stop does nothing.
func (s *Service) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != built {
		return
	}
	s.state = started
	go func() {
		if s.srv.TLSConfig != nil {
			s.serveErr <- s.srv.ServeTLS(s.ln, "", "") // server.tls
			return
		}
		s.serveErr <- s.srv.Serve(s.ln)
	}()
	if s.elector != nil {
		s.startLeadership(ctx)
	} else {
		s.startDispatcher(ctx)
	}
	s.startChecks(ctx)
	s.log.Info("upwatch started", "listen", s.ln.Addr().String(), "targets", len(s.o.Config.Targets),
		"data_dir", s.o.Config.DataDir, "location", s.o.Config.Location)
}

// startDispatcher sends the outbox's messages. It is stopped after the
// checks, so the last transitions' messages are handed over; what is still
// queued is sent after a restart.
func (s *Service) startDispatcher(ctx context.Context) {
	// A process that owns the embedded registry alone knows that leases
	// still held were left by a crash of its own, and their messages should
	// go out now. A shared registry's leases may be another dispatcher's.
	if s.ownsRegistry {
		if n, err := s.registry.ReleaseLeases(ctx); err != nil {
			s.log.Error("releasing stale outbox leases", "err", err)
		} else if n > 0 {
			s.log.Info("released outbox leases left by an earlier run", "notifications", n)
		}
	}
	dispatchCtx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	dispatched := make(chan struct{})
	go func() { s.dispatcher.Run(dispatchCtx); close(dispatched) }()
	s.cleanup.push(func(ctx context.Context) error {
		s.dispatcher.Wake()
		stopDispatch()
		select {
		case <-dispatched:
		case <-ctx.Done():
			s.log.Error("dispatcher still sending at the shutdown timeout; not waiting for it", "timeout", s.o.ShutdownTimeout)
		}
		return nil
	})
}

func (s *Service) startChecks(ctx context.Context) {
	runCtx, stopChecks := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.sched.Run(runCtx); err != nil {
			s.log.Error("scheduler stopped", "err", err)
		}
	})
	if s.o.ConfigPath != "" && s.o.Reload != nil {
		wg.Go(func() { reloadLoop(runCtx, s.o, s.log, s.live) })
	}
	if s.elector == nil { // else only while leading
		wg.Go(func() { s.engine.Run(runCtx, time.Second) })
	}
	wg.Go(func() { s.agents.pruneLoop(runCtx, 10*time.Minute) })
	wg.Go(func() { warmStatusPages(runCtx, s.pages, s.registry, s.log) })
	if s.elector == nil { // else only while leading: one server reports missed pings
		wg.Go(func() { s.pings.Run(runCtx, time.Second) })
	}
	s.cleanup.push(func(ctx context.Context) error {
		stopChecks()
		// In-flight checks end by their own timeout and their samples are
		// recorded; ctx bounds the wait all the same.
		checksDone := make(chan struct{})
		go func() { wg.Wait(); close(checksDone) }()
		select {
		case <-checksDone:
		case <-ctx.Done():
			s.log.Error("checks still running at the shutdown timeout; not waiting for them", "timeout", s.o.ShutdownTimeout)
		}
		if err := s.engine.Stop(ctx); err != nil {
			s.log.Error("alert state left uncommitted at the shutdown timeout", "err", err)
		}
		return nil
	})
}

// Stop stops taking HTTP requests, then ends the rest in reverse order of
// making: the checks, the dispatcher, the samples' flush, the write-ahead
// log, the stores, the data dir's lock. ctx bounds every wait. A second
// Stop returns the first one's result.
func (s *Service) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.state = stopped
		s.mu.Unlock()
		s.log.Info("shutting down")
		if err := s.srv.Shutdown(ctx); err != nil {
			s.log.Warn("http shutdown", "err", err)
		}
		s.stopErr = s.cleanup.unwind(ctx)
		s.log.Info("stopped")
	})
	return s.stopErr
}
