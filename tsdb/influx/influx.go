// Package influx stores samples in InfluxDB through its v2 HTTP API
// (InfluxDB 2.x, or 1.8+ with flux-enabled = true and bucket "db/rp"). It
// implements tsdb.Store and passes the tsdbtest contract suite.
//
// Every sample is one point of the measurement upwatch_check (see
// docs/influxdb.md for the schema). Writes go out in line protocol through
// influxdb-client-go's blocking write API, one request per batch. With a
// spool directory set, a batch InfluxDB cannot take (connection refused,
// timeout, 5xx, 429, 401/403/404) is appended to a bounded on-disk spool and
// replayed when InfluxDB answers again; while the spool holds
// anything, new batches queue behind it. Replay sends a few spooled batches
// at once (Options.Replay.InFlight) and advances the spool's cursor past a
// batch only once it and every batch before it were written. Replaying a
// batch that had in fact been written is harmless, and so is writing batches
// out of order: a point is identified by its series and timestamp, so
// writing it again overwrites it with itself.
//
// Reads are Flux queries that use only functions of Flux 0.65 (InfluxDB
// 1.8's): range, filter, limit, last, pivot, group, sort, keep.
package influx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/tsdb"
	"github.com/upwatch/upwatch/tsdb/spool"
)

// Schema names; see docs/influxdb.md.
const (
	Measurement   = "upwatch_check"
	DefaultTenant = "default"
)

// Defaults for Options.
const (
	DefaultTimeout = 10 * time.Second
	// DefaultReplayInFlight is how many spooled batches are replayed at
	// once: one request at a time runs at InfluxDB's single-request ingest
	// rate, while a few overlap its parsing and WAL writes.
	DefaultReplayInFlight = 4
)

// Options configure Open. URL and Bucket are required.
type Options struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8086.
	URL string
	// Org is the organization (InfluxDB 2.x; ignored by 1.8).
	Org string
	// Bucket is the bucket (2.x) or "database/retention-policy" (1.8; the
	// retention policy may be left out for the default one).
	Bucket string
	// Token is the API token (2.x), "user:password" or empty (1.8).
	Token string
	// Tenant is the value of the tenant tag (default "default").
	Tenant string
	// HTTPClient sends every request (default: a client with Timeout).
	HTTPClient *http.Client
	// Timeout bounds each request when HTTPClient is nil (default 10s).
	Timeout time.Duration

	// Spool, if its Dir is set, makes writes durable: what InfluxDB cannot
	// take is spooled there and replayed. Its Registerer and Logger default
	// to the ones below.
	Spool spool.Options
	// Replay tunes the spool replayer: its backoff, and how many batches it
	// sends at once (default DefaultReplayInFlight).
	Replay spool.ReplayOptions

	// Registerer receives the store's and the spool's metrics; nil
	// registers none.
	Registerer prometheus.Registerer
	// Logger receives spooling and replay messages (default: discard).
	Logger *slog.Logger
}

// Store is the InfluxDB backend. It is safe for concurrent use.
type Store struct {
	o      Options
	client influxdb2.Client
	write  api.WriteAPIBlocking
	bucket string // as a Flux string literal

	spool    *spool.Spool
	mu       sync.Mutex // orders the direct-or-spool decision of WriteSamples
	spooling bool       // the last direct write failed (for logging transitions)
	stop     context.CancelFunc
	done     chan struct{}

	rejected prometheus.Counter

	closeOnce sync.Once
	closeErr  error
}

var _ tsdb.Store = (*Store)(nil)

// Open returns a store for the server at o.URL. It does not contact the
// server (it may be down: writes then go to the spool); Ping does. With a
// spool it starts the replayer, which Close stops.
func Open(o Options) (*Store, error) {
	if o.URL == "" {
		return nil, errors.New("influx store: no URL given")
	}
	if o.Bucket == "" {
		return nil, errors.New("influx store: no bucket given")
	}
	if o.Tenant == "" {
		o.Tenant = DefaultTenant
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Replay.InFlight <= 0 {
		o.Replay.InFlight = DefaultReplayInFlight
	}
	if o.HTTPClient == nil {
		// Keep a connection per replay request alive (the default
		// transport keeps two per host).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, o.Replay.InFlight+1)
		o.HTTPClient = &http.Client{Timeout: o.Timeout, Transport: t}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	opts := influxdb2.DefaultOptions().
		SetHTTPClient(o.HTTPClient).
		SetPrecision(time.Nanosecond).
		SetMaxRetries(0).
		SetUseGZip(false).
		SetLogLevel(0)
	client := influxdb2.NewClientWithOptions(strings.TrimRight(o.URL, "/"), o.Token, opts)
	s := &Store{
		o:      o,
		client: client,
		write:  client.WriteAPIBlocking(o.Org, o.Bucket),
		bucket: fluxString(o.Bucket),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_influx_rejected_samples_total",
			Help: "Samples InfluxDB refused for good (HTTP 400, 413 or 422, e.g. a field type conflict); they are dropped.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.rejected)
	}
	if o.Spool.Dir != "" {
		so := o.Spool
		if so.Registerer == nil {
			so.Registerer = o.Registerer
		}
		if so.Logger == nil {
			so.Logger = o.Logger
		}
		sp, err := spool.Open(so)
		if err != nil {
			client.Close()
			return nil, fmt.Errorf("influx store: %w", err)
		}
		s.spool = sp
		ctx, cancel := context.WithCancel(context.Background())
		s.stop, s.done = cancel, make(chan struct{})
		go func() {
			defer close(s.done)
			sp.Replay(ctx, s.replay, o.Replay)
		}()
	}
	return s, nil
}

// Ping asks the server's /health endpoint whether it is ready.
func (s *Store) Ping(ctx context.Context) error {
	h, err := s.client.Health(ctx)
	if err != nil {
		return fmt.Errorf("influx store: %w", err)
	}
	if h.Status != "pass" {
		msg := ""
		if h.Message != nil {
			msg = ": " + *h.Message
		}
		return fmt.Errorf("influx store: health %s%s", h.Status, msg)
	}
	return nil
}

// SpoolStats returns what waits in the spool; ok is false without a spool.
func (s *Store) SpoolStats() (st spool.Stats, ok bool) {
	if s.spool == nil {
		return spool.Stats{}, false
	}
	return s.spool.Stats(), true
}

// Close stops the replayer and closes the spool (what it holds is replayed
// after the next Open) and the client. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.spool != nil {
			s.stop()
			<-s.done
			s.closeErr = s.spool.Close()
		}
		s.client.Close()
	})
	return s.closeErr
}

// fluxString quotes v as a Flux string literal. Flux 0.65 has no escape for
// "${" (interpolation), so it is split by concatenation.
func fluxString(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "${", `$" + "{`)
	return `"` + r.Replace(v) + `"`
}

// queryAPI returns a QueryAPI for one query. The library's QueryAPI caches
// its URL on first use without a lock, so one shared between goroutines is
// a data race (seen under -race in CI); a new one costs a small struct.
func (s *Store) queryAPI() api.QueryAPI { return s.client.QueryAPI(s.o.Org) }
