package prober

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/secret"
)

// Capture modes: which checks of a target keep their evidence. Each keeps
// a subset of the next: never ⊂ transitions ⊂ always, failures ⊂ always.
const (
	// CaptureFailures (the default) keeps every failed check's evidence.
	CaptureFailures = "failures"
	// CaptureTransitions keeps only the checks where a location's verdict
	// flipped: the first failure after a success (where an incident
	// starts) and the first success after a failure (where it ends). The
	// first check after a start counts when it fails.
	CaptureTransitions = "transitions"
	// CaptureAlways keeps every check's evidence.
	CaptureAlways = "always"
	// CaptureNever keeps none.
	CaptureNever = "never"
)

// Bounds of the body excerpt kept as evidence.
const (
	DefaultCaptureBytes = 4 << 10
	MaxCaptureBytes     = 64 << 10
	// evidenceMaxHeaders and evidenceMaxValue bound the headers kept: a
	// server cannot make one check's evidence large through them.
	evidenceMaxHeaders = 64
	evidenceMaxValue   = 1024
)

// Evidence is what the target said in one check: the response headers
// (http), secrets redacted, and the start of what it sent (the http body,
// the tcp reply, the dns answer). Checks keep it per the target's capture
// mode; it is stored apart from the sample.
type Evidence struct {
	// Reason is the capture mode that kept it: failures, transitions or
	// always.
	Reason  string              `json:"reason"`
	Headers map[string][]string `json:"headers,omitempty"`
	// Body is at most capture_bytes of what the target sent, as text
	// (bytes that are not UTF-8 show as U+FFFD in JSON).
	Body string `json:"body,omitempty"`
	// Truncated says the target sent more than Body holds.
	Truncated bool `json:"truncated,omitempty"`
}

// Size is about how many bytes e takes stored.
func (e *Evidence) Size() int {
	if e == nil {
		return 0
	}
	n := len(e.Reason) + len(e.Body)
	for k, vs := range e.Headers {
		n += len(k)
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}

func (t *Target) normalizeCapture() {
	if t.Capture == "" {
		t.Capture = CaptureFailures
	}
	if t.CaptureBytes == 0 {
		t.CaptureBytes = DefaultCaptureBytes
	}
}

func (t *Target) validateCapture(prefix string) []invalid.Field {
	var errs []invalid.Field
	modes := []string{CaptureFailures, CaptureTransitions, CaptureAlways, CaptureNever}
	if !slices.Contains(modes, t.Capture) {
		errs = append(errs, invalid.Field{Path: prefix + ".capture", Msg: fmt.Sprintf("must be one of %s (got %q)", strings.Join(modes, ", "), t.Capture)})
	}
	if t.CaptureBytes < 1 || t.CaptureBytes > MaxCaptureBytes {
		errs = append(errs, invalid.Field{Path: prefix + ".capture_bytes", Msg: fmt.Sprintf("must be between 1 and %d (64 KiB) (got %d)", MaxCaptureBytes, t.CaptureBytes)})
	}
	return errs
}

// wantsEvidence reports whether a check with this verdict may keep its
// evidence. Under transitions every check may: Check keeps the flips only.
func (t *Target) wantsEvidence(success bool) bool {
	switch t.Capture {
	case CaptureAlways, CaptureTransitions:
		return true
	case CaptureFailures, "":
		return !success
	}
	return false
}

// captured returns the evidence of a check with this verdict, or nil when
// the target does not keep it. hdr is redacted through the one secret list
// (and the target's own secret headers and credentials); body is cut to
// capture_bytes. total is how much the target sent.
func (t *Target) captured(success bool, hdr http.Header, body []byte, total int64) *Evidence {
	if !t.wantsEvidence(success) {
		return nil
	}
	limit := t.CaptureBytes
	if limit <= 0 {
		limit = DefaultCaptureBytes
	}
	var auth *Auth
	var marked []string
	if t.HTTP != nil {
		auth, marked = t.HTTP.Auth, t.HTTP.SecretHeaders
	}
	e := &Evidence{Truncated: total > int64(min(len(body), limit))}
	if len(body) > limit {
		body = body[:limit]
	}
	e.Body = auth.scrub(string(body))
	if len(hdr) > 0 {
		e.Headers = make(map[string][]string, min(len(hdr), evidenceMaxHeaders))
		for _, name := range slices.Sorted(maps.Keys(hdr)) {
			if len(e.Headers) == evidenceMaxHeaders {
				e.Truncated = true
				break
			}
			vals := make([]string, len(hdr[name]))
			for i, v := range hdr[name] {
				vals[i] = redactHeaderValue(name, v, marked, auth)
			}
			e.Headers[name] = vals
		}
	}
	return e
}

// redactHeaderValue is a response header value fit to store: a
// credential's value (Set-Cookie, anything the secret list names) masked,
// a URL's credentials masked, the target's own secrets scrubbed, and long
// values cut.
func redactHeaderValue(name, v string, marked []string, auth *Auth) string {
	switch {
	case secret.SensitiveHeader(name, marked):
		return secret.Redacted
	case strings.EqualFold(name, "Location"), strings.EqualFold(name, "Content-Location"), strings.EqualFold(name, "Link"):
		if strings.Contains(v, "://") || strings.Contains(v, "?") {
			v = redactURLs(v)
		}
	}
	return truncate(auth.scrub(v), evidenceMaxValue)
}

// redactURLs masks the credentials of every URL-looking word of v (a Link
// header holds several in <…>).
func redactURLs(v string) string {
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == '<' || r == '>' || r == ' ' || r == ',' || r == ';' })
	for _, f := range fields {
		if strings.Contains(f, "/") || strings.Contains(f, "?") {
			if red := secret.RedactURL(f, secret.URLCredentials); red != "<url>" && red != f {
				v = strings.ReplaceAll(v, f, red)
			}
		}
	}
	return v
}

// keep applies the capture mode to a finished check's evidence: it stamps
// the reason and, under transitions, drops the evidence of a check whose
// verdict is the same as the previous one from this prober.
func (p *Prober) keep(t *Target, r *Result) {
	if t.Capture == CaptureTransitions {
		flipped := p.edges.flipped(t.ID, r.Success)
		if !flipped {
			r.Evidence = nil
		}
	} else if !t.wantsEvidence(r.Success) {
		r.Evidence = nil
	}
	if r.Evidence != nil {
		r.Evidence.Reason = t.Capture
	}
}

// edges remembers the last verdict of each target checked under the
// transitions mode.
type edges struct {
	mu   sync.Mutex
	last map[string]bool
}

// flipped records success as id's verdict and reports whether it differs
// from the one before; a first failure counts as a flip, a first success
// does not (after a restart, a target that is up captures nothing).
func (e *edges) flipped(id string, success bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		e.last = map[string]bool{}
	}
	prev, seen := e.last[id]
	e.last[id] = success
	if !seen {
		return !success
	}
	return prev != success
}

// bodyHead holds the start of a response body the check does not keep
// otherwise, read into a pooled buffer so the success path allocates
// nothing.
type bodyHead struct {
	buf *[]byte
	n   int
}

var headPool = sync.Pool{New: func() any { b := make([]byte, MaxCaptureBytes); return &b }}

// readHead reads the first capture_bytes of r when the target captures
// evidence and the body is not kept whole already (kept).
func readHead(t *Target, kept bool, r io.Reader) (bodyHead, error) {
	if kept || t.Capture == CaptureNever || t.CaptureBytes <= 0 {
		return bodyHead{}, nil
	}
	b := headPool.Get().(*[]byte)
	n, err := io.ReadFull(r, (*b)[:min(t.CaptureBytes, MaxCaptureBytes)])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return bodyHead{buf: b, n: n}, err
}

// bytes is the head read, else kept's bytes.
func (h bodyHead) bytes(kept []byte) []byte {
	if h.buf == nil {
		return kept
	}
	return (*h.buf)[:h.n]
}

func (h bodyHead) release() {
	if h.buf != nil {
		headPool.Put(h.buf)
	}
}
