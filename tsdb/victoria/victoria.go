// Package victoria mirrors samples to VictoriaMetrics: the same line
// protocol as tsdb/influx (measurement upwatch_check), posted to
// <url>/api/v2/write, where VictoriaMetrics names each numeric field's series
// upwatch_check_<field>. It is a write-only tsdb.Writer; put a tsdb.Buffer
// in front of it for batching and retries.
package victoria

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/influx"
)

// Options configure New.
type Options struct {
	// URL is the server's base URL, e.g. http://vm:8428.
	URL string
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// Tenant is the value of the tenant tag (default "default", as in tsdb/influx).
	Tenant string
	// Registerer receives upwatch_victoriametrics_rejected_samples_total; nil registers none.
	Registerer prometheus.Registerer
	// Logger receives refused batches (default: discard).
	Logger *slog.Logger
	// Client is the HTTP client (default: one with Timeout).
	Client *http.Client
}

// Writer posts samples to VictoriaMetrics.
type Writer struct {
	endpoint string
	client   *http.Client
	o        Options
	rejected prometheus.Counter
}

// New returns a Writer for o.URL. It does not contact the server.
func New(o Options) (*Writer, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("victoriametrics: invalid url %q", o.URL)
	}
	if u.User != nil {
		return nil, errors.New("victoriametrics: url must not hold credentials")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Tenant == "" {
		o.Tenant = influx.DefaultTenant
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	w := &Writer{
		endpoint: strings.TrimSuffix(u.String(), "/") + "/api/v2/write",
		client:   o.Client,
		o:        o,
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "upwatch_victoriametrics_rejected_samples_total",
			Help: "Samples VictoriaMetrics refused for good (HTTP 400, 413 or 422) and that were dropped.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(w.rejected)
	}
	return w, nil
}

// WriteSamples posts the batch in one request. A network error or a 5xx
// answer is returned, to be retried; a batch the server refuses for good
// (400, 413, 422) is dropped, logged and counted, and nil is returned.
func (w *Writer) WriteSamples(ctx context.Context, samples []prober.Result) error {
	if len(samples) == 0 {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint, bytes.NewReader(influx.Encode(samples, w.o.Tenant)))
	if err != nil {
		return fmt.Errorf("victoriametrics: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("victoriametrics: write %d samples: %w", len(samples), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("victoriametrics: write %d samples: %s: %s", len(samples), resp.Status, bytes.TrimSpace(body))
	switch resp.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		w.rejected.Add(float64(len(samples)))
		w.o.Logger.Error("VictoriaMetrics refused samples; dropped", "samples", len(samples), "err", err)
		return nil
	}
	return err
}
