// Package agent is upwatch's remote prober (upwatch agent): it registers
// with a server under an agent key, pulls the targets the server assigns
// it (a full snapshot after each (re)connect, then changes by long poll),
// checks them with the same prober and scheduler as serve, and pushes the
// results in batches. It holds no registry and no sample store.
//
// Every result goes to a spool on disk (tsdb/spool, the InfluxDB backend's
// format) before it is pushed, and leaves it only once the server has
// taken it: while the server is away the agent keeps checking and the
// spool fills; when it is back the spool is replayed in order. The server
// takes each result once (by target, location and scheduled time), so a
// batch sent again after a lost answer or a crash is harmless.
package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/internal/clock"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/schedule"
	"github.com/upwatch/upwatch/tsdb/spool"
)

// Options configure Run. Server, Key, Location and DataDir are required.
type Options struct {
	// Server is serve's base URL (https://mon.example.com).
	Server string
	// Key is an API key with scope agent, bound to Location.
	Key      string
	Location string
	// DataDir holds the agent's id and its spool.
	DataDir string
	// SpoolMaxBytes bounds the spool (default spool.DefaultMaxBytes); when
	// full the oldest results are dropped, and counted.
	SpoolMaxBytes int64
	// Name and Version describe the agent to operators (default: host
	// name, "dev").
	Name, Version string
	// AllowPrivateTargets turns the SSRF guard off, as serve's option does.
	AllowPrivateTargets bool
	Workers             int
	// StartWindow: the checks due within each window of this length start
	// together (schedule.Options.Coalesce); 0 starts each at its slot.
	StartWindow time.Duration
	// Listen, if set, serves /metrics there; Listener is used instead if
	// set (tests bind 127.0.0.1:0).
	Listen   string
	Listener net.Listener
	// PushMetrics, if set, is a URL the metrics are pushed to every
	// PushInterval (default 15s) in the Prometheus text format
	// (VictoriaMetrics' /api/v1/import/prometheus, a Pushgateway...).
	PushMetrics  string
	PushInterval time.Duration
	// Wait is how long a poll for changed assignments waits (default 25s).
	Wait time.Duration
	// FlushInterval is how often checked results are spooled as a batch
	// (default 1s).
	FlushInterval time.Duration
	// RetryMin and RetryMax bound the backoff while the server is away
	// (default 200ms and 5s).
	RetryMin, RetryMax time.Duration
	HTTPClient         *http.Client
	// TLS, if set, is the client's TLS config (a client certificate for
	// mTLS, a CA for the server); see ClientTLS. Unused with HTTPClient.
	TLS      *tls.Config
	Registry *prometheus.Registry
	Logger   *slog.Logger
	Now      func() time.Time
	// DrainTimeout bounds how long a stopping agent goes on pushing what
	// it spooled (default 5s); what is left is pushed after a restart.
	DrainTimeout time.Duration
	// Ready, if set, is called once the agent runs.
	Ready func(metricsAddr net.Addr)
}

func (o *Options) defaults() error {
	var missing []string
	for _, f := range []struct{ name, v string }{{"-server", o.Server}, {"-key", o.Key}, {"-location", o.Location}, {"-data-dir", o.DataDir}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("agent: %s required", strings.Join(missing, ", "))
	}
	u, err := url.Parse(o.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("agent: -server: want an http or https URL, got %q", o.Server)
	}
	o.Server = strings.TrimRight(o.Server, "/")
	if !prober.ValidLocation(o.Location) {
		return fmt.Errorf("agent: -location: must be 1-64 letters, digits, '-', '_' or '.' (got %q)", o.Location)
	}
	if o.StartWindow < 0 || o.StartWindow > schedule.MaxCoalesce {
		return fmt.Errorf("agent: -start-window: must be between 0 and %s (got %s)", schedule.MaxCoalesce, o.StartWindow)
	}
	if o.Name == "" {
		o.Name, _ = os.Hostname()
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Wait <= 0 {
		o.Wait = 25 * time.Second
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 200 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(5*time.Second, o.RetryMin)
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.PushInterval <= 0 {
		o.PushInterval = 15 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = newHTTPClient(o.Wait, o.TLS)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
		o.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	o.Now = clock.Or(o.Now)
	return nil
}

// agent is one running agent.
type agent struct {
	o     Options
	id    string
	log   *slog.Logger
	c     *client
	sp    *spool.Spool
	sched *schedule.Scheduler
	batch *batcher
	m     *agentMetrics

	kick chan struct{} // asks for a heartbeat now (the server forgot us)

	current map[string]prober.Target // the assignment, by target key (assignmentLoop only)

	mu       sync.Mutex
	maxBatch int
	ttl      time.Duration
}

// Run runs the agent until ctx ends, then stops checking, spools what was
// checked and returns. It fails only if it cannot start (bad options, a
// data dir it cannot use, a listen address it cannot bind).
func Run(ctx context.Context, o Options) error {
	if err := o.defaults(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return fmt.Errorf("agent: data dir: %w", err)
	}
	id, err := agentID(o.DataDir)
	if err != nil {
		return err
	}
	log := o.Logger.With("agent", id, "location", o.Location)
	sp, err := spool.Open(spool.Options{Dir: filepath.Join(o.DataDir, "spool"), MaxBytes: o.SpoolMaxBytes,
		Registerer: o.Registry, Logger: log.With("component", "spool")})
	if err != nil {
		return fmt.Errorf("agent: spool: %w", err)
	}
	defer sp.Close()
	a := &agent{o: o, id: id, log: log, sp: sp, m: newAgentMetrics(o.Registry),
		c: &client{base: o.Server, key: o.Key, http: o.HTTPClient}, maxBatch: 1000, ttl: 15 * time.Second,
		kick: make(chan struct{}, 1)}
	a.batch = newBatcher(sp, a.currentMaxBatch, log)
	a.m.watch(o.Registry, sp, a.batch)
	p := prober.New(prober.Options{Location: o.Location, AllowPrivate: o.AllowPrivateTargets, Now: o.Now, Logger: log.With("component", "prober")})
	a.sched = schedule.New(schedule.Options{Check: p.CheckInline, Overran: p.Overran, Coalesce: o.StartWindow, Workers: o.Workers, Sink: a.batch.add,
		Registerer: o.Registry, Logger: log.With("component", "scheduler"), Now: o.Now})

	var srv *http.Server
	ln := o.Listener
	if ln == nil && o.Listen != "" {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return fmt.Errorf("agent: -listen %s: %w", o.Listen, err)
		}
	}
	if ln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{}))
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
	}
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	if o.PushMetrics != "" {
		if err := pushMetrics(bg, o, id); err != nil {
			stopBG()
			return err
		}
	}

	var wg sync.WaitGroup
	checks := make(chan struct{})
	wg.Go(func() { a.heartbeatLoop(bg) })
	wg.Go(func() { a.assignmentLoop(bg) })
	wg.Go(func() {
		sp.Replay(bg, a.push, spool.ReplayOptions{RetryMin: o.RetryMin, RetryMax: o.RetryMax})
	})
	go func() { _ = a.sched.Run(ctx); close(checks) }()
	go a.batch.run(ctx, o.FlushInterval)
	log.Info("upwatch agent started", "server", o.Server, "data_dir", o.DataDir)
	if o.Ready != nil {
		var addr net.Addr
		if ln != nil {
			addr = ln.Addr()
		}
		o.Ready(addr)
	}
	<-ctx.Done()
	<-checks // running checks end, their results reach the batcher
	if err := a.batch.flush(context.WithoutCancel(ctx)); err != nil {
		log.Error("results not spooled at shutdown", "err", err)
	}
	a.drain(o.DrainTimeout)
	stopBG()
	wg.Wait()
	if srv != nil {
		_ = srv.Close()
	}
	log.Info("upwatch agent stopped", "spooled_results", sp.Stats().Samples)
	return nil
}

// agentID is the agent's stable id, kept in the data dir so a restarted
// agent rejoins as itself.
func agentID(dir string) (string, error) {
	path := filepath.Join(dir, "agent-id")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("agent: %w", err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := "agt-" + hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("agent: %w", err)
	}
	return id, nil
}

// drain waits for the spool to empty, for at most d.
func (a *agent) drain(d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !a.sp.Empty() {
		select {
		case <-deadline.C:
			a.log.Warn("stopping with results not pushed; they are pushed after a restart", "results", a.sp.Stats().Samples)
			return
		case <-tick.C:
		}
	}
}

func (a *agent) currentMaxBatch() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxBatch
}

// heartbeatLoop keeps the agent alive on the server: every TTL/3, sooner
// after a failure (with backoff).
func (a *agent) heartbeatLoop(ctx context.Context) {
	b := a.backoff()
	var lastErr string
	for {
		var wel fleet.Welcome
		err := a.c.do(ctx, http.MethodPost, "/agent/heartbeat", nil,
			fleet.Hello{ID: a.id, Name: a.o.Name, Version: a.o.Version}, &wel)
		wait := b.next()
		if err == nil {
			if lastErr != "" {
				a.log.Info("server reachable again")
			}
			lastErr = ""
			b.reset()
			a.mu.Lock()
			if ttl, perr := time.ParseDuration(wel.TTL); perr == nil && ttl > 0 {
				a.ttl = ttl
			}
			if wel.MaxBatch > 0 {
				a.maxBatch = wel.MaxBatch
			}
			wait = a.ttl / 3
			a.mu.Unlock()
			a.m.heartbeats.Inc()
		} else if ctx.Err() == nil {
			a.m.heartbeatErrors.Inc()
			if err.Error() != lastErr {
				a.log.Warn("heartbeat failed; checking on and spooling results", "err", err)
				lastErr = err.Error()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-time.After(wait):
		}
	}
}

// assignmentLoop keeps the scheduler's targets the server's: a snapshot
// after each (re)connect, then long polls for changes. While the server is
// away the targets it last gave stay scheduled.
func (a *agent) assignmentLoop(ctx context.Context) {
	b := a.backoff()
	since := "" // "" asks for a snapshot
	var lastErr string
	for ctx.Err() == nil {
		q := url.Values{"agent": {a.id}}
		if since != "" {
			q.Set("since", since)
			q.Set("wait", a.o.Wait.String())
		}
		var as fleet.Assignment
		err := a.c.do(ctx, http.MethodGet, "/agent/assignments", q, nil, &as)
		if err == nil && !as.Unchanged {
			err = a.apply(as)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var se *statusError
			if errors.As(err, &se) && se.status == http.StatusConflict {
				select { // not alive on the server (it restarted, or we were away): heartbeat now
				case a.kick <- struct{}{}:
				default:
				}
			}
			since = ""
			if err.Error() != lastErr {
				a.log.Warn("assignments not fetched; keeping the current targets", "err", err)
				lastErr = err.Error()
			}
			if !sleep(ctx, b.next()) {
				return
			}
			continue
		}
		lastErr = ""
		b.reset()
		since = as.Version
	}
}

// apply schedules an assignment: a snapshot replaces the targets, changes
// update them. A target that does not decode is left out, loudly.
func (a *agent) apply(as fleet.Assignment) error {
	if as.Version == "" {
		return errors.New("assignment without a version")
	}
	if as.Full || a.current == nil {
		a.current = make(map[string]prober.Target, len(as.Targets))
	}
	for _, id := range as.Removed {
		delete(a.current, id)
	}
	for _, w := range as.Targets {
		t, err := fleet.DecodeTarget(w)
		if err != nil {
			a.log.Error("assigned target left out", "err", err)
			continue
		}
		a.current[t.ID] = t
	}
	ts := slices.Collect(maps.Values(a.current))
	a.sched.Update(ts)
	a.m.targets.Set(float64(len(ts)))
	a.log.Info("assignment received", "version", as.Version, "full", as.Full, "changed", len(as.Targets), "removed", len(as.Removed), "targets", len(ts))
	return nil
}

// push sends one spooled batch; Replay retries it until the server takes it.
func (a *agent) push(ctx context.Context, rec spool.Record) error {
	results, err := decodeBatch(rec.Data)
	if err != nil {
		a.log.Error("spooled batch unreadable; dropped", "results", rec.Samples, "err", err)
		return spool.Permanent(err)
	}
	return a.pushResults(ctx, results)
}

// pushResults sends results in one request, or in halves when the server
// finds the request too large: a batch within the count can pass the
// server's byte bound when its results carry evidence. The server takes
// each result once, so a half it already took is harmless to send again.
func (a *agent) pushResults(ctx context.Context, results []prober.Result) error {
	var reply fleet.BatchReply
	err := a.c.do(ctx, http.MethodPost, "/agent/results", nil, fleet.Batch{Results: results}, &reply)
	var se *statusError
	switch {
	case err == nil:
		a.m.pushed.Add(float64(reply.Accepted))
		a.m.duplicates.Add(float64(reply.Duplicates))
		a.m.rejected.Add(float64(reply.Rejected))
		return nil
	case errors.As(err, &se) && se.status == http.StatusRequestEntityTooLarge && len(results) > 1:
		half := len(results) / 2
		if err := a.pushResults(ctx, results[:half]); err != nil {
			return err
		}
		return a.pushResults(ctx, results[half:])
	case permanent(err):
		a.m.rejected.Add(float64(len(results)))
		a.log.Error("server refused a batch for good; dropped", "results", len(results), "err", err)
		return spool.Permanent(err)
	}
	a.m.pushErrors.Inc()
	return err
}

func (a *agent) backoff() *backoff {
	return &backoff{min: a.o.RetryMin, max: a.o.RetryMax, cur: a.o.RetryMin}
}

// backoff doubles a wait from min to max.
type backoff struct{ min, max, cur time.Duration }

func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	return d
}

func (b *backoff) reset() { b.cur = b.min }

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
