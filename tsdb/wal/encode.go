package wal

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/upwatch/upwatch/prober"
)

// encodeResult is json.Marshal(r), byte for byte, without reflection: the
// log encodes every check (2 % of the service's CPU at 50,000 targets went
// to json.Marshal here). Anything it does not render itself (a string
// json escapes, a time outside years 0-9999) it leaves to encoding/json,
// so the output is always what json.Marshal gives, and TestEncodeResult
// holds it to that.
func encodeResult(r prober.Result) ([]byte, error) {
	return appendResult(make([]byte, 0, 384), r)
}

// appendResult appends encodeResult(r) to b.
func appendResult(b []byte, r prober.Result) ([]byte, error) {
	var err error
	b = append(b, `{"target_id":`...)
	b = appendString(b, r.TargetID)
	b = append(b, `,"target":`...)
	b = appendString(b, r.Target)
	b = append(b, `,"kind":`...)
	b = appendString(b, r.Kind)
	b = append(b, `,"location":`...)
	b = appendString(b, r.Location)
	b = append(b, `,"start":`...)
	if b, err = appendTime(b, r.Start); err != nil {
		return nil, err
	}
	if !r.Scheduled.IsZero() {
		b = append(b, `,"scheduled":`...)
		if b, err = appendTime(b, r.Scheduled); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"duration":`...)
	b = strconv.AppendInt(b, int64(r.Duration), 10)
	b = append(b, `,"phases":{"dns":`...)
	b = strconv.AppendInt(b, int64(r.Phases.DNS), 10)
	b = append(b, `,"connect":`...)
	b = strconv.AppendInt(b, int64(r.Phases.Connect), 10)
	b = append(b, `,"tls":`...)
	b = strconv.AppendInt(b, int64(r.Phases.TLS), 10)
	b = append(b, `,"ttfb":`...)
	b = strconv.AppendInt(b, int64(r.Phases.TTFB), 10)
	b = append(b, `,"transfer":`...)
	b = strconv.AppendInt(b, int64(r.Phases.Transfer), 10)
	b = append(b, `},"success":`...)
	b = strconv.AppendBool(b, r.Success)
	if r.ErrorClass != "" {
		b = append(b, `,"error_class":`...)
		b = appendString(b, string(r.ErrorClass))
	}
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, r.Error)
	}
	if r.StatusCode != 0 {
		b = append(b, `,"status_code":`...)
		b = strconv.AppendInt(b, int64(r.StatusCode), 10)
	}
	b = append(b, `,"tls_expiry":`...)
	if b, err = appendTime(b, r.TLSExpiry); err != nil {
		return nil, err
	}
	if r.BodyBytes != 0 {
		b = append(b, `,"body_bytes":`...)
		b = strconv.AppendInt(b, r.BodyBytes, 10)
	}
	if r.RemoteAddr != "" {
		b = append(b, `,"remote_addr":`...)
		b = appendString(b, r.RemoteAddr)
	}
	// The rarer nested parts (icmp, grpc, evidence) are json's to write.
	if b, err = appendJSON(b, "icmp", r.ICMP); err != nil {
		return nil, err
	}
	if b, err = appendJSON(b, "grpc", r.GRPC); err != nil {
		return nil, err
	}
	if r.HTTPVersion != "" {
		b = append(b, `,"http_version":`...)
		b = appendString(b, r.HTTPVersion)
	}
	if r.Redirects != 0 {
		b = append(b, `,"redirects":`...)
		b = strconv.AppendInt(b, int64(r.Redirects), 10)
	}
	if r.ContentLength != 0 {
		b = append(b, `,"content_length":`...)
		b = strconv.AppendInt(b, r.ContentLength, 10)
	}
	if r.TLSVersion != "" {
		b = append(b, `,"tls_version":`...)
		b = appendString(b, r.TLSVersion)
	}
	if !r.LastChainExpiry.IsZero() {
		b = append(b, `,"last_chain_expiry":`...)
		if b, err = appendTime(b, r.LastChainExpiry); err != nil {
			return nil, err
		}
	}
	if r.FailedDueToRegex {
		b = append(b, `,"failed_due_to_regex":true`...)
	}
	if b, err = appendJSON(b, "evidence", r.Evidence); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendJSON writes ,"name":v as json does, or nothing for a nil v.
func appendJSON[T any](b []byte, name string, v *T) ([]byte, error) {
	if v == nil {
		return b, nil
	}
	q, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return append(b, q...), nil
}

// appendString quotes s as encoding/json does: printable ASCII other than
// the characters it escapes goes as is, anything else through json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime is time.Time's MarshalJSON without its allocation.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		q, err := json.Marshal(t) // json's own error
		return append(b, q...), err
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}
