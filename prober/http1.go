package prober

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"

	"golang.org/x/net/idna"
)

// maxResponseHeaderBytes bounds a response's status line and headers.
const maxResponseHeaderBytes = 256 << 10

// max1xxResponses bounds the informational responses skipped before the
// final one, as net/http does.
const max1xxResponses = 5

var errResponseHeadersTooLarge = fmt.Errorf("response headers exceed %d bytes", maxResponseHeaderBytes)

// checkTransport is the HTTP/1.1 client of HTTP checks: each request goes
// over a new connection through the SSRF-guarded dialer and the connection
// closes with the response body. It replaces net/http's Transport, which
// without keep-alives buys a check nothing but cost: a dial goroutine, a
// read and a write loop goroutine per connection and its own buffers (a
// third of a check's CPU at 100,000 targets). The request is written and
// the response parsed by net/http itself (Request.Write, ReadResponse), and
// http.Client still does redirects. What the Transport did that a check
// relies on is here: Connection: close, transparent gzip, 1xx responses
// skipped, a bound on the response header, and ctx (its deadline and its
// cancellation) covering every read and write.
type checkTransport struct {
	p          *Prober
	ipProtocol string
	tls        *tls.Config
}

var (
	checkReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 2<<10) }}
	checkWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 1<<10) }}
)

func (t *checkTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.roundTrip(req)
	if err != nil && req.Body != nil {
		_ = req.Body.Close() // a RoundTripper closes the body, even on error
	}
	return resp, err
}

func (t *checkTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		return nil, errors.New("http: nil request URL")
	}
	scheme := req.URL.Scheme
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("unsupported protocol scheme %q", scheme)
	}
	host, err := asciiHost(req.URL.Hostname())
	if err != nil {
		return nil, err
	}
	if host == "" {
		return nil, errors.New("http: no Host in request URL")
	}
	port := req.URL.Port()
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)

	conn, err := t.p.DialContext(ctx, "tcp", net.JoinHostPort(host, port), t.ipProtocol)
	if err != nil {
		return nil, err
	}
	// From here ctx reaches the connection by closing it once ctx ends,
	// and only then, so a check that fails that way finds ctx ended (a
	// connection deadline could fire a moment before ctx does, and the
	// check would miss that it timed out).
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	fail := func(err error) (*http.Response, error) {
		stop()
		_ = conn.Close()
		return nil, err
	}

	var state *tls.ConnectionState
	if scheme == "https" {
		cfg := t.tls // shared by connections; copied only to name the host
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
		if trace != nil && trace.TLSHandshakeStart != nil {
			trace.TLSHandshakeStart()
		}
		tc := tls.Client(conn, cfg)
		err := tc.HandshakeContext(ctx)
		cs := tc.ConnectionState()
		if trace != nil && trace.TLSHandshakeDone != nil {
			trace.TLSHandshakeDone(cs, err)
		}
		if err != nil {
			return fail(err)
		}
		conn, state = tc, &cs
	}
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: conn})
	}

	out, gzipped := outgoing(req)
	bw := checkWriters.Get().(*bufio.Writer)
	bw.Reset(conn)
	err = out.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	checkWriters.Put(bw)
	if trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{Err: err})
	}
	if err != nil {
		return fail(err)
	}

	lim := &headerLimit{r: conn, n: maxResponseHeaderBytes}
	br := checkReaders.Get().(*bufio.Reader)
	br.Reset(lim)
	release := func() { br.Reset(nil); checkReaders.Put(br) }
	if _, err := br.Peek(1); err != nil {
		release()
		return fail(err)
	}
	if trace != nil && trace.GotFirstResponseByte != nil {
		trace.GotFirstResponseByte()
	}
	var resp *http.Response
	for n := 0; ; n++ {
		resp, err = http.ReadResponse(br, req)
		if err != nil {
			release()
			return fail(err)
		}
		// Informational answers (100 Continue, 103 Early Hints) precede
		// the response; 101 is final.
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if n >= max1xxResponses {
			release()
			return fail(errors.New("too many 1xx informational responses"))
		}
	}
	lim.n = math.MaxInt64 // the body's bound is the caller's (max_body_bytes)
	resp.TLS = state
	body := &checkBody{body: resp.Body, conn: conn, stop: stop, release: release}
	resp.Body = body
	if gzipped && resp.Header.Get("Content-Encoding") == "gzip" {
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
		resp.Uncompressed = true
		resp.Body = &gunzipBody{body: body}
	}
	return resp, nil
}

// outgoing is req as it goes on the wire: Connection: close, and gzip
// asked for unless the caller chose an encoding (or a range, or HEAD), as
// net/http's Transport asks, so checks see what they saw with it. The
// second result says whether gzip was asked for here, so the body is
// decoded here too. req itself is left as it was.
func outgoing(req *http.Request) (*http.Request, bool) {
	out := new(http.Request)
	*out = *req
	out.Close = true
	gzipped := req.Method != http.MethodHead && req.Header.Get("Accept-Encoding") == "" && req.Header.Get("Range") == ""
	if gzipped {
		// A shallow copy: Set below replaces a value, never changes one
		// req's header shares.
		out.Header = make(http.Header, len(req.Header)+1)
		maps.Copy(out.Header, req.Header)
		out.Header.Set("Accept-Encoding", "gzip")
	}
	return out, gzipped
}

// asciiHost is host as dialled and named in TLS: punycode for an
// internationalised name.
func asciiHost(host string) (string, error) {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			ascii, err := idna.Lookup.ToASCII(host)
			if err != nil {
				return "", fmt.Errorf("invalid host name %q: %w", host, err)
			}
			return ascii, nil
		}
	}
	return host, nil
}

// headerLimit fails reads past n bytes, bounding the response header; the
// body lifts it.
type headerLimit struct {
	r io.Reader
	n int64
}

func (l *headerLimit) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errResponseHeadersTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// checkBody is a response body that closes its connection (and returns
// the read buffer) when closed. Its first error sticks, as with net/http's
// Transport: a body cut short says so on every later read, not just once
// (net/http's own body answers io.EOF after io.ErrUnexpectedEOF).
type checkBody struct {
	body    io.ReadCloser
	conn    net.Conn
	stop    func() bool
	release func()
	err     error
	closed  bool
}

func (b *checkBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("http: read on closed response body")
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	b.err = err
	return n, err
}

func (b *checkBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	b.stop()
	err := b.conn.Close()
	b.release()
	return err
}

// gunzipBody decodes a gzip body, starting the decoder at the first read
// so a body that is never read costs nothing.
type gunzipBody struct {
	body *checkBody
	zr   *gzip.Reader
	err  error
}

func (g *gunzipBody) Read(p []byte) (int, error) {
	if g.zr == nil && g.err == nil {
		g.zr, g.err = gzip.NewReader(g.body)
	}
	if g.err != nil {
		return 0, g.err
	}
	return g.zr.Read(p)
}

func (g *gunzipBody) Close() error { return g.body.Close() }
