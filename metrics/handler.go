package metrics

import (
	"bufio"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// contentType is the Prometheus text format, which every scraper accepts.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the exposition for GET /metrics: every family g gathers,
// then what each of extra writes (a Probe). Family names must not repeat
// between them. The body is gzip-compressed (at the fastest level: at
// 100,000 targets the default level costs more time than it saves bytes)
// when the request accepts gzip, as Prometheus does.
func Handler(g prometheus.Gatherer, extra ...io.WriterTo) http.Handler {
	gzips := sync.Pool{New: func() any {
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return zw
	}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mfs, err := g.Gather()
		if err != nil {
			// A partial exposition would make series vanish for a
			// scrape; fail the scrape instead (promhttp's default).
			http.Error(w, "An error has occurred while gathering metrics:\n\n"+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Add("Vary", "Accept-Encoding")
		var body io.Writer = w
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			zw := gzips.Get().(*gzip.Writer)
			zw.Reset(w)
			defer func() {
				zw.Close()
				zw.Reset(nil)
				gzips.Put(zw)
			}()
			body = zw
		}
		bw := bufio.NewWriterSize(body, 64<<10)
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(bw, mf); err != nil {
				return // the client went away; the status is sent
			}
		}
		for _, x := range extra {
			if _, err := x.WriteTo(bw); err != nil {
				return
			}
		}
		bw.Flush()
	})
}

// acceptsGzip reports whether an Accept-Encoding header value allows gzip
// (listed, and not with q=0).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		name, q, found := strings.Cut(strings.TrimSpace(params), "=")
		if !found || !strings.EqualFold(strings.TrimSpace(name), "q") {
			return true
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(q), 64)
		return err != nil || v > 0
	}
	return false
}
