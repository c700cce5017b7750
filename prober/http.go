package prober

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// httpUserAgent is sent unless the target sets its own User-Agent.
const httpUserAgent = "upwatch-prober/1"

// LocationHeader names the probe location on every HTTP check's request.
const LocationHeader = "X-Upwatch-Location"

// errHTTPTooManyRedirects ends a redirect chain longer than max_redirects,
// so an endless loop fails instead of spinning until the timeout.
var errHTTPTooManyRedirects = errors.New("too many redirects")

// probeHTTP sends one request to t.HTTP.URL over a new connection, follows
// redirects as configured, reads at most max_body_bytes of the body and
// checks the assertions in order: status, latency, headers, body, JSON.
func probeHTTP(ctx context.Context, p *Prober, t *Target) Result {
	var r Result
	h := t.HTTP
	if h == nil {
		return r.Fail(ClassInternal, "http check without an http block")
	}
	start := time.Now()
	r = httpDo(ctx, p, t, h, start)
	if !r.Success {
		r.Error = h.Auth.scrub(r.Error)
		// The message travels in the Result; the log only notes the failure.
		p.log.Debug("http check failed", "target", t.ID, "class", r.ErrorClass, "status", r.StatusCode)
	}
	return r
}

func httpDo(ctx context.Context, p *Prober, t *Target, h *HTTPSpec, start time.Time) (r Result) {
	tr, err := p.oauth.transport(p, h.IPProtocol, h.TLS)
	if err != nil {
		return r.Fail(ClassInternal, err.Error())
	}
	rt, oauthUsed, err := httpAuthRoundTripper(ctx, p, t, tr)
	if err != nil {
		class, msg := Classify(err)
		if class != ClassBlocked {
			class = ClassAuth
		}
		return r.Fail(class, "oauth2 token: "+msg)
	}

	var body io.Reader
	if h.Body != "" {
		body = strings.NewReader(h.Body)
	}
	trace := &httpTrace{}
	ctx = httptrace.WithClientTrace(ctx, trace.clientTrace())
	req, err := http.NewRequestWithContext(ctx, h.Method, h.URL, body)
	if err != nil {
		return r.Fail(ClassInternal, "building request: "+redactError(err))
	}
	req.Header.Set("User-Agent", httpUserAgent)
	// Where the check runs from, so a target's owner (and a test) can tell
	// the probe locations apart; a target's own header wins.
	req.Header.Set(LocationHeader, p.location)
	for k, v := range h.Headers {
		v = h.headerValue(k, v)
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{Transport: rt, CheckRedirect: httpRedirectPolicy(h)}

	resp, err := client.Do(req)
	if err != nil {
		trace.phases(&r, time.Time{})
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			r.TLSExpiry = httpCertExpiry(verr.UnverifiedCertificates)
		}
		if errors.Is(err, errHTTPTooManyRedirects) {
			return r.Fail(ClassHTTP, fmt.Sprintf("stopped after %d redirects", h.MaxRedirects))
		}
		return r.Fail(httpClassify(err))
	}
	defer resp.Body.Close()
	r.StatusCode = resp.StatusCode
	r.HTTPVersion, r.ContentLength, r.Redirects = resp.Proto, resp.ContentLength, httpRedirects(resp)
	if resp.TLS != nil {
		r.TLSExpiry = httpCertExpiry(resp.TLS.PeerCertificates)
		r.TLSVersion = tlsVersionName(resp.TLS.Version)
		r.LastChainExpiry = tlsLastChainExpiry(resp.TLS.VerifiedChains)
	}
	if resp.StatusCode == http.StatusUnauthorized && oauthUsed {
		// The cached token may have been revoked: fetch a new one next time.
		p.oauth.forget(t.ID, h.Auth)
	}

	// Read the body, never more than max_body_bytes, keeping it only when
	// an assertion needs it.
	var buf *bytes.Buffer
	var dst io.Writer = io.Discard
	if len(h.BodyContains)+len(h.BodyNotContains)+len(h.compiledRegex)+len(h.JSONPath) > 0 || h.keepsBodyForAssertions() {
		buf = httpBufferPool.Get().(*bytes.Buffer)
		buf.Reset()
		defer httpBufferPool.Put(buf)
		dst = buf
	}
	// The evidence excerpt comes from the body kept for assertions, else
	// from its first bytes read into a pooled buffer.
	lr := io.LimitReader(resp.Body, h.MaxBodyBytes)
	head, err := readHead(t, buf != nil, lr)
	defer head.release()
	var n int64
	if err == nil {
		n, err = io.Copy(dst, lr)
	}
	n += int64(head.n)
	done := time.Now()
	r.BodyBytes = n
	trace.phases(&r, done)
	defer func() {
		var kept []byte
		if buf != nil {
			kept = buf.Bytes()
		}
		r.Evidence = t.captured(r.Success, resp.Header, head.bytes(kept), n)
	}()
	if err != nil {
		class, msg := httpClassify(err)
		return r.Fail(class, "reading body: "+msg)
	}

	if !httpStatusOK(h.statusRanges, resp.StatusCode) {
		return r.Fail(ClassStatus, fmt.Sprintf("status %d not in expected %s", resp.StatusCode, httpExpectText(h)))
	}
	if h.MaxLatency > 0 {
		if took := done.Sub(start); took > h.MaxLatency {
			return r.Fail(ClassAssertion, fmt.Sprintf("latency %s exceeds max_latency %s", took.Round(time.Millisecond), h.MaxLatency))
		}
	}
	if msg := httpCheckHeaders(h, resp.Header); msg != "" {
		r.FailedDueToRegex = true
		return r.Fail(ClassAssertion, msg)
	}
	if buf != nil {
		if msg := httpCheckBody(h, buf.Bytes()); msg != "" {
			r.FailedDueToRegex = true
			return r.Fail(ClassAssertion, msg)
		}
		if msg := httpCheckJSONPath(h, buf.Bytes()); msg != "" {
			return r.Fail(ClassAssertion, msg)
		}
	}
	var kept []byte
	if buf != nil {
		kept = buf.Bytes()
	}
	if msg := h.checkAssertions(n, kept); msg != "" {
		return r.Fail(ClassAssertion, msg)
	}
	r.Success = true
	return r
}

var httpBufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// httpRedirects counts the redirects that led to resp: each request made
// for a redirect carries the response that caused it.
func httpRedirects(resp *http.Response) int {
	n := 0
	for req := resp.Request; req != nil && req.Response != nil; req = req.Response.Request {
		n++
	}
	return n
}

// httpClassify is Classify with one refinement: an error that is not
// network, TLS or timeout is an HTTP protocol error here.
func httpClassify(err error) (ErrorClass, string) {
	class, msg := Classify(err)
	if class == ClassProtocol {
		class = ClassHTTP
	}
	return class, msg
}

func httpRedirectPolicy(h *HTTPSpec) func(*http.Request, []*http.Request) error {
	follow := h.FollowRedirects == nil || *h.FollowRedirects
	return func(_ *http.Request, via []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if len(via) > h.MaxRedirects {
			return errHTTPTooManyRedirects
		}
		return nil
	}
}

func httpStatusOK(ranges []statusRange, code int) bool {
	if len(ranges) == 0 {
		return code >= 200 && code <= 399
	}
	for _, r := range ranges {
		if r.contains(code) {
			return true
		}
	}
	return false
}

func httpExpectText(h *HTTPSpec) string {
	if len(h.ExpectStatus) == 0 {
		return "200-399"
	}
	return strings.Join(h.ExpectStatus, ", ")
}

// httpCheckHeaders returns what is wrong with the response headers, or "".
// A header passes when any of its values matches its regex.
func httpCheckHeaders(h *HTTPSpec, hdr http.Header) string {
	for name, re := range h.compiledHdr {
		vals := hdr.Values(name)
		if len(vals) == 0 {
			return fmt.Sprintf("header %s missing", name)
		}
		ok := false
		for _, v := range vals {
			ok = ok || re.MatchString(v)
		}
		if !ok {
			return fmt.Sprintf("header %s %q does not match %q", name, httpShort(vals[0]), re.String())
		}
	}
	return ""
}

// httpCheckBody returns which body keyword or regex assertion failed, or "".
func httpCheckBody(h *HTTPSpec, body []byte) string {
	for _, s := range h.BodyContains {
		if !bytes.Contains(body, []byte(s)) {
			return fmt.Sprintf("body does not contain %q", httpShort(s))
		}
	}
	for _, s := range h.BodyNotContains {
		if bytes.Contains(body, []byte(s)) {
			return fmt.Sprintf("body contains %q", httpShort(s))
		}
	}
	for _, re := range h.compiledRegex {
		if !re.Match(body) {
			return fmt.Sprintf("body does not match regex %q", httpShort(re.String()))
		}
	}
	return ""
}

// httpCheckJSONPath returns which dotted json_path assertion failed, or "".
func httpCheckJSONPath(h *HTTPSpec, body []byte) string {
	if len(h.JSONPath) == 0 {
		return ""
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return "json_path: body is not JSON: " + httpShort(err.Error())
	}
	for path, want := range h.JSONPath {
		got, err := httpJSONLookup(doc, path)
		if err != "" {
			return fmt.Sprintf("json_path %s: %s", path, err)
		}
		if got != want {
			return fmt.Sprintf("json_path %s is %q, want %q", path, httpShort(got), httpShort(want))
		}
	}
	return ""
}

// httpJSONLookup walks a dotted path (keys and array indexes) through doc
// and renders what it finds: strings without quotes, anything else as its
// JSON text. The second result says why the path does not resolve.
func httpJSONLookup(doc any, path string) (string, string) {
	cur := doc
	for _, part := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[part]
			if !ok {
				return "", fmt.Sprintf("no key %q", httpShort(part))
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(v) {
				return "", fmt.Sprintf("no index %q in array of %d", httpShort(part), len(v))
			}
			cur = v[i]
		default:
			return "", fmt.Sprintf("cannot descend into %q", httpShort(part))
		}
	}
	switch v := cur.(type) {
	case string:
		return v, ""
	case json.Number:
		return v.String(), ""
	case nil:
		return "null", ""
	case bool:
		return strconv.FormatBool(v), ""
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return "", err.Error()
	}
	return string(b), ""
}

// httpShort keeps server-controlled text in messages short.
func httpShort(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}

// httpCertExpiry is the earliest NotAfter of certs, zero for none.
func httpCertExpiry(certs []*x509.Certificate) time.Time {
	var t time.Time
	for _, c := range certs {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}

// httpTrace records phase timings. Phases of every connection of a check
// (redirects, a digest challenge) add up. Callbacks can come from the
// transport's dial goroutine, even after the request gave up, hence the
// mutex.
type httpTrace struct {
	mu                            sync.Mutex
	dnsStart, connStart, tlsStart time.Time
	wrote, firstByte              time.Time
	dns, connect, tlsDur, ttfb    time.Duration
	remote                        string
}

func (tr *httpTrace) clientTrace() *httptrace.ClientTrace {
	lock := func(f func()) { tr.mu.Lock(); f(); tr.mu.Unlock() }
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { lock(func() { tr.dnsStart = time.Now() }) },
		DNSDone: func(httptrace.DNSDoneInfo) {
			lock(func() {
				if !tr.dnsStart.IsZero() {
					tr.dns += time.Since(tr.dnsStart)
					tr.dnsStart = time.Time{}
				}
			})
		},
		ConnectStart: func(string, string) { lock(func() { tr.connStart = time.Now() }) },
		ConnectDone: func(_, _ string, err error) {
			lock(func() {
				if err == nil && !tr.connStart.IsZero() {
					tr.connect += time.Since(tr.connStart)
					tr.connStart = time.Time{}
				}
			})
		},
		TLSHandshakeStart: func() { lock(func() { tr.tlsStart = time.Now() }) },
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			lock(func() {
				if !tr.tlsStart.IsZero() {
					tr.tlsDur += time.Since(tr.tlsStart)
					tr.tlsStart = time.Time{}
				}
			})
		},
		GotConn: func(info httptrace.GotConnInfo) {
			lock(func() { tr.remote = info.Conn.RemoteAddr().String() })
		},
		WroteRequest: func(httptrace.WroteRequestInfo) { lock(func() { tr.wrote = time.Now() }) },
		GotFirstResponseByte: func() {
			lock(func() {
				tr.firstByte = time.Now()
				if !tr.wrote.IsZero() {
					tr.ttfb += tr.firstByte.Sub(tr.wrote)
					tr.wrote = time.Time{}
				}
			})
		},
	}
}

// phases copies the timings into r; done is when the body was read (zero
// when it was not).
func (tr *httpTrace) phases(r *Result, done time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r.Phases.DNS, r.Phases.Connect, r.Phases.TLS, r.Phases.TTFB = tr.dns, tr.connect, tr.tlsDur, tr.ttfb
	if !done.IsZero() && !tr.firstByte.IsZero() {
		r.Phases.Transfer = done.Sub(tr.firstByte)
	}
	r.RemoteAddr = tr.remote
}

// httpTransportTTL bounds how long a cached transport (with the CA and
// client certificate it loaded) is reused, so rotated files are picked up.
const httpTransportTTL = 5 * time.Minute

// httpTransportMax bounds the number of cached transports.
const httpTransportMax = 1024

type httpTransportEntry struct {
	tr      *checkTransport
	created time.Time
}

// httpTransports caches one checkTransport per distinct dialing and TLS
// setup. A transport holds no connection: each check opens its own, and
// sharing the transport between targets with the same setup shares nothing
// but the loaded certificates.
type httpTransports struct {
	mu sync.Mutex
	m  map[httpTransportKey]httpTransportEntry
}

// httpTransportKey is what tells transports apart; a comparable value, so
// finding one on every check builds nothing.
type httpTransportKey struct {
	ipProtocol string
	tls        TLSClient
}

func (c *httpTransports) get(p *Prober, ipProtocol string, tc TLSClient) (*checkTransport, error) {
	key := httpTransportKey{ipProtocol, tc}
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Sub(e.created) < httpTransportTTL {
		return e.tr, nil
	}
	tr, err := httpNewTransport(p, ipProtocol, tc)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[httpTransportKey]httpTransportEntry)
	}
	if len(c.m) >= httpTransportMax {
		for k, old := range c.m {
			if now.Sub(old.created) >= httpTransportTTL {
				delete(c.m, k)
			}
		}
		if len(c.m) >= httpTransportMax {
			clear(c.m)
		}
	}
	c.m[key] = httpTransportEntry{tr: tr, created: now}
	return tr, nil
}

func httpNewTransport(p *Prober, ipProtocol string, tc TLSClient) (*checkTransport, error) {
	cfg, err := httpTLSConfig(tc)
	if err != nil {
		return nil, err
	}
	return &checkTransport{p: p, ipProtocol: ipProtocol, tls: cfg}, nil
}

// httpTLSConfig builds the client TLS configuration of tc, loading the CA
// and client certificate files.
func httpTLSConfig(tc TLSClient) (*tls.Config, error) {
	cfg := &tls.Config{InsecureSkipVerify: tc.InsecureSkipVerify, ServerName: tc.ServerName} //nolint:gosec // the user's choice, per target
	if tc.CAFile != "" {
		pem, err := os.ReadFile(tc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_config.ca_file: no PEM certificate in %s", tc.CAFile)
		}
		cfg.RootCAs = pool
	}
	if tc.CertFile != "" || tc.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(tc.CertFile, tc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_config: loading client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
