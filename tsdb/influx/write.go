package influx

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb/spool"
)

// AppendLine appends r as one line of line protocol (newline included) to
// b: measurement upwatch_check, tags in key order, every field but
// tls_expiry always present, timestamp in ns.
func AppendLine(b []byte, r *prober.Result, tenant string) []byte {
	b = append(b, Measurement...)
	b = appendTag(b, "kind", r.Kind)
	b = appendTag(b, "location", r.Location)
	b = appendTag(b, "target", r.Target)
	b = appendTag(b, "target_id", r.TargetID)
	b = appendTag(b, "tenant", tenant)
	up := 0
	if r.Success {
		up = 1
	}
	b = append(b, " up="...)
	b = strconv.AppendInt(b, int64(up), 10)
	b = append(b, 'i')
	b = appendSeconds(b, ",duration_seconds=", int64(r.Duration))
	b = appendSeconds(b, ",dns_seconds=", int64(r.Phases.DNS))
	b = appendSeconds(b, ",connect_seconds=", int64(r.Phases.Connect))
	b = appendSeconds(b, ",tls_seconds=", int64(r.Phases.TLS))
	b = appendSeconds(b, ",ttfb_seconds=", int64(r.Phases.TTFB))
	b = appendSeconds(b, ",transfer_seconds=", int64(r.Phases.Transfer))
	b = append(b, ",status_code="...)
	b = strconv.AppendInt(b, int64(r.StatusCode), 10)
	b = append(b, 'i')
	b = appendStringField(b, ",error_class=", string(r.ErrorClass))
	b = appendStringField(b, ",error=", r.Error)
	if !r.TLSExpiry.IsZero() {
		b = append(b, ",tls_expiry="...)
		b = strconv.AppendInt(b, r.TLSExpiry.Unix(), 10)
		b = append(b, 'i')
	}
	b = append(b, ",body_bytes="...)
	b = strconv.AppendInt(b, r.BodyBytes, 10)
	b = append(b, 'i')
	b = appendStringField(b, ",remote_addr=", r.RemoteAddr)
	b = append(b, ' ')
	b = strconv.AppendInt(b, r.Start.UnixNano(), 10)
	return append(b, '\n')
}

// appendSeconds writes ns as seconds in the shortest form that parses back
// to the same float64, from which the reader recovers ns exactly.
func appendSeconds(b []byte, key string, ns int64) []byte {
	b = append(b, key...)
	return strconv.AppendFloat(b, float64(ns)/1e9, 'g', -1, 64)
}

// appendTag writes ",key=value"; an empty value is left out (line protocol
// has no empty tags, and a missing tag reads back as "").
func appendTag(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',')
	b = append(b, key...)
	b = append(b, '=')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case ',', '=', ' ':
			b = append(b, '\\', c)
		case '\n', '\r', '\t':
			b = append(b, '\\', ' ') // line protocol cannot carry these in a tag
		case '\\':
			// Kept literally, except where it would escape what follows or
			// the end of the value: line protocol (1.x) cannot carry that.
			if i+1 == len(v) || strings.IndexByte(",= \\", v[i+1]) >= 0 {
				b = append(b, '/')
			} else {
				b = append(b, c)
			}
		default:
			b = append(b, c)
		}
	}
	return b
}

func appendStringField(b []byte, key, v string) []byte {
	b = append(b, key...)
	b = append(b, '"')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, v[i])
	}
	return append(b, '"')
}

// Encode returns samples as line protocol.
func Encode(samples []prober.Result, tenant string) []byte {
	b := make([]byte, 0, len(samples)*400)
	for i := range samples {
		b = AppendLine(b, &samples[i], tenant)
	}
	return b
}

// WriteSamples writes the batch. Without a spool it is one synchronous
// request and any failure is returned. With a spool, a batch InfluxDB cannot
// take now is appended to the spool (a nil error then means it is on disk),
// and while the spool holds anything new batches go behind it. A batch
// InfluxDB refuses for good (400, 413, 422) is then dropped and counted in
// upwatch_influx_rejected_samples_total, since retrying cannot help.
func (s *Store) WriteSamples(ctx context.Context, samples []prober.Result) error {
	if len(samples) == 0 {
		return nil
	}
	lp := Encode(samples, s.o.Tenant)
	if s.spool == nil {
		return s.send(ctx, lp, len(samples))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spool.Empty() {
		err := s.send(ctx, lp, len(samples))
		switch {
		case err == nil:
			if s.spooling {
				s.o.Logger.Info("influx store: writing directly again")
				s.spooling = false
			}
			return nil
		case spool.IsPermanent(err):
			s.o.Logger.Error("influx store: InfluxDB refused samples; dropped", "samples", len(samples), "err", err)
			return nil
		}
		if !s.spooling {
			s.o.Logger.Warn("influx store: InfluxDB unavailable; spooling samples to disk", "err", err)
			s.spooling = true
		}
	}
	if err := s.spool.Append(ctx, spool.Record{Samples: len(samples), Data: lp}); err != nil {
		return fmt.Errorf("influx store: %w", err)
	}
	return nil
}

// replay sends one spooled batch.
func (s *Store) replay(ctx context.Context, r spool.Record) error {
	return s.send(ctx, r.Data, r.Samples)
}

// send writes line protocol in one request. A refusal retrying cannot fix
// is counted and wrapped with spool.Permanent.
func (s *Store) send(ctx context.Context, lp []byte, samples int) error {
	err := s.write.WriteRecord(ctx, string(lp))
	if err == nil {
		return nil
	}
	err = fmt.Errorf("influx store: write %d samples: %w", samples, err)
	if permanent(err) {
		s.rejected.Add(float64(samples))
		return spool.Permanent(err)
	}
	return err
}

// permanent reports whether the server refused the data itself: sending it
// again would be refused again.
func permanent(err error) bool {
	var he *ihttp.Error
	if !errors.As(err, &he) {
		return false
	}
	switch he.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}
