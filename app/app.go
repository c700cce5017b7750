// Package app wires upwatch's parts together and runs them: the store, the
// write buffer, the prober, the scheduler and the HTTP server. New builds
// them (releasing what it made if a step fails), Start runs them, Stop ends
// them in reverse order. cmd/upwatch calls Run, which does all three; so do
// the end-to-end tests, in-process.
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
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/demo"
	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/lease"
	"github.com/upwatch/upwatch/metrics"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/schedule"
	"github.com/upwatch/upwatch/push"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/statuspage"
	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/influx"
	"github.com/upwatch/upwatch/tsdb/spool"
	"github.com/upwatch/upwatch/tsdb/sqlite"
	"github.com/upwatch/upwatch/tsdb/victoria"
	"github.com/upwatch/upwatch/tsdb/wal"
	"github.com/upwatch/upwatch/web"
)

// Options are what Run needs. Config is required; the rest have defaults.
type Options struct {
	Config *config.Config
	// ConfigPath is re-read on Reload; empty disables reloading.
	ConfigPath string
	Getenv     func(string) string
	Logger     *slog.Logger
	// Listener, if set, is used instead of listening on Config.Listen
	// (tests pass one bound to 127.0.0.1:0). upwatch owns it: it is closed
	// on Stop and when New fails.
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

// Run starts upwatch and blocks until ctx ends or the HTTP server fails,
// then stops it (see Stop) within Options.ShutdownTimeout. It returns the
// first fatal error. A failure while starting releases whatever was made.
func Run(ctx context.Context, o Options) error {
	s, err := New(ctx, o)
	if err != nil {
		return err
	}
	s.Start(ctx)
	if s.o.Ready != nil {
		s.o.Ready(s.Addr())
	}
	var fatal error
	select {
	case <-ctx.Done():
	case err := <-s.serveErr:
		fatal = fmt.Errorf("http server: %w", err)
	}
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ShutdownTimeout)
	defer cancel()
	return errors.Join(fatal, s.Stop(drainCtx))
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
	api.StatusPageStore
	statuspage.Store
	api.IncidentReader
	api.IncidentAcker
	alerting.AckReader
	api.LocationEventReader
	RecordLocationEvent(ctx context.Context, ev alerting.LocationEvent) error
	alerting.StateStore
	alerting.Outbox
	web.UserStore
	web.SessionStore
	web.NoteStore
	web.NotificationReader
	fleet.Store
	resultClaimer
	ReleaseLeases(ctx context.Context) (int64, error)
	lease.Store
	holderReader
	Fenced(name string, token lease.Token, reg prometheus.Registerer) *registry.Fenced
	Close() error
}

// openRegistry opens the configured registry and says whether this process
// owns it alone (the embedded file) or shares it (PostgreSQL).
func openRegistry(ctx context.Context, cfg *config.Config, mk crypt.MasterKey, now func() time.Time, log *slog.Logger) (registryStore, bool, error) {
	if cfg.Registry.Type == "postgres" {
		pg, err := registry.OpenPostgres(ctx, registry.PostgresOptions{URL: cfg.Registry.Postgres.URL.Reveal(), MasterKey: mk, Now: now, Logger: log})
		return pg, false, err
	}
	db, err := registry.OpenSQLite(ctx, registry.SQLiteOptions{
		Path: filepath.Join(cfg.DataDir, RegistryFile), Logger: log, MasterKey: mk, Now: now,
	})
	return db, true, err
}

// spoolStats says what waits in the sample store's spool; ok is false
// without one. Only InfluxDB has a spool; openSamples returns nil for the rest.
type spoolStats func() (st spool.Stats, ok bool)

func openSamples(ctx context.Context, cfg *config.Config, now func() time.Time, log *slog.Logger, reg prometheus.Registerer) (tsdb.Store, spoolStats, error) {
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
		// Evidence stays in the embedded store's file: InfluxDB keeps
		// numbers, not kilobytes of text per check.
		ev, err := openEmbedded(ctx, cfg, now, log)
		if err != nil {
			_ = s.Close()
			return nil, nil, err
		}
		return evidenceBeside{Store: s, ev: ev}, s.SpoolStats, nil
	}
	s, err := openEmbedded(ctx, cfg, now, log)
	return s, nil, err
}

func openEmbedded(ctx context.Context, cfg *config.Config, now func() time.Time, log *slog.Logger) (*sqlite.Store, error) {
	return sqlite.Open(ctx, sqlite.Options{
		Path:            filepath.Join(cfg.DataDir, DBFile),
		RawRetention:    cfg.Storage.Retention.RawRetention(),
		RollupRetention: cfg.Storage.Retention.RollupRetention(),
		Now:             now,
		Logger:          log.With("component", "store"),
	})
}

// evidenceBeside is a sample store that keeps no evidence (InfluxDB) with
// the embedded store beside it for the evidence alone.
type evidenceBeside struct {
	tsdb.Store
	ev *sqlite.Store
}

var _ tsdb.EvidenceReader = evidenceBeside{}

// WriteSamples stores the evidence first: if the samples then fail, the
// batch is written again and the evidence is not stored twice.
func (e evidenceBeside) WriteSamples(ctx context.Context, samples []prober.Result) error {
	if err := e.ev.WriteEvidence(ctx, samples); err != nil {
		return err
	}
	return e.Store.WriteSamples(ctx, samples)
}

func (e evidenceBeside) Evidence(ctx context.Context, targetID string, from, to time.Time, limit int) ([]tsdb.EvidenceRecord, error) {
	return e.ev.Evidence(ctx, targetID, from, to, limit)
}

func (e evidenceBeside) Close() error { return errors.Join(e.Store.Close(), e.ev.Close()) }

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
			log.Warn("config reload: only targets are reloaded; listen, data_dir, storage, location, workers, demo, api, metrics, debug, server and agents need a restart")
		}
		if err := live.reload(ctx, cfg); err != nil {
			log.Error("config reload refused; keeping the running config", "err", err)
			continue
		}
		log.Info("config reloaded", "targets", len(cfg.Targets))
	}
}

func restartOnly(old, cur *config.Config) bool {
	return old.Server.ChecksLocally() != cur.Server.ChecksLocally() || old.Agents != cur.Agents || old.Listen != cur.Listen || old.DataDir != cur.DataDir || old.Storage != cur.Storage ||
		old.Location != cur.Location || old.Workers != cur.Workers || old.Demo != cur.Demo ||
		old.AllowPrivateTargets != cur.AllowPrivateTargets ||
		old.API.AuthFailures != cur.API.AuthFailures || !slices.Equal(old.API.TrustedProxies, cur.API.TrustedProxies) || old.Metrics != cur.Metrics || old.Debug != cur.Debug
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

// exposition serves /metrics. spooled, when not nil, reports the sample
// store's spool: a store that cannot be reached while samples spool to
// disk is still ready.
func routes(exposition http.Handler, store tsdb.Store, spooled spoolStats, sched *schedule.Scheduler, pings *push.Monitor, cfg *config.Config, now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	// Push targets' pings carry their token, not an API key.
	mux.Handle("/ping/", pings.Handler())
	mux.Handle("GET /metrics", protectMetrics(cfg.Metrics, exposition))
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
