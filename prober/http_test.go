package prober_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/probertest"
)

// htTarget returns a normalised, validated http target for url, after mod
// has adjusted its http block.
func htTarget(t testing.TB, url string, mod func(*prober.HTTPSpec)) *prober.Target {
	t.Helper()
	tg := &prober.Target{Name: "web", Kind: "http", Timeout: 5 * time.Second, HTTP: &prober.HTTPSpec{URL: url}}
	if mod != nil {
		mod(tg.HTTP)
	}
	tg.Normalize()
	require.Empty(t, tg.Validate("t"))
	return tg
}

// htProber allows loopback targets, as every test server is on 127.0.0.1.
func htProber() *prober.Prober { return prober.New(prober.Options{AllowPrivate: true}) }

func htCheck(t testing.TB, p *prober.Prober, tg *prober.Target) prober.Result {
	t.Helper()
	return p.Check(context.Background(), tg)
}

// htTLSServer starts a TLS server on 127.0.0.1 with cert; with clientCAs it
// requires and verifies a client certificate.
func htTLSServer(t testing.TB, h http.Handler, cert tls.Certificate, clientCAs *x509.CertPool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		srv.TLS.ClientCAs = clientCAs
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.Config.ErrorLog = htQuietLog()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func htServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = htQuietLog()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func htPtr[T any](v T) *T { return &v }

// testApp answers the table test's requests.
func htApp() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Version", "1.4.2")
		io.WriteString(w, "hello upwatch, all systems operational")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"up","version":2,"ratio":0.5,"ok":true,"none":null,
			"data":{"items":[{"status":"up"},{"status":"down","tags":["a","b"]}]}}`)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "method=%s x-test=%s host=%s ua=%s body=%s", r.Method, r.Header.Get("X-Test"), r.Host, r.UserAgent(), b)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(20 * time.Millisecond)
	})
	return mux
}

func TestHTTPCheck(t *testing.T) {
	srv := htServer(t, htApp())
	p := htProber()
	tests := []struct {
		name    string
		path    string
		mod     func(*prober.HTTPSpec)
		class   prober.ErrorClass // ClassNone: must succeed
		errPart string            // part of the message
		status  int
	}{
		{name: "plain 200", path: "/ok", status: 200},
		{name: "default accepts 3xx not followed", path: "/status/302", mod: func(h *prober.HTTPSpec) { h.FollowRedirects = htPtr(false) }, status: 302},
		{name: "500 fails by default", path: "/status/500", class: prober.ClassStatus, errPart: "status 500 not in expected 200-399", status: 500},
		{name: "404 fails by default", path: "/status/404", class: prober.ClassStatus, status: 404},
		{name: "expected exact code", path: "/status/404", mod: func(h *prober.HTTPSpec) { h.ExpectStatus = []string{"404"} }, status: 404},
		{name: "expected class", path: "/status/503", mod: func(h *prober.HTTPSpec) { h.ExpectStatus = []string{"2xx", "5xx"} }, status: 503},
		{name: "expected range", path: "/status/204", mod: func(h *prober.HTTPSpec) { h.ExpectStatus = []string{"200-204"} }, status: 204},
		{name: "outside range", path: "/status/205", mod: func(h *prober.HTTPSpec) { h.ExpectStatus = []string{"200-204", "301"} }, class: prober.ClassStatus, errPart: "200-204, 301"},
		{name: "exact code excludes others", path: "/ok", mod: func(h *prober.HTTPSpec) { h.ExpectStatus = []string{"201"} }, class: prober.ClassStatus},

		{name: "method headers body", path: "/echo", mod: func(h *prober.HTTPSpec) {
			h.Method = "post"
			h.Headers = map[string]string{"X-Test": "yes", "Host": "status.example", "User-Agent": "custom/1"}
			h.Body = `{"ping":1}`
			h.BodyContains = []string{`method=POST`, `x-test=yes`, `host=status.example`, `ua=custom/1`, `body={"ping":1}`}
		}},
		{name: "default user agent", path: "/echo", mod: func(h *prober.HTTPSpec) { h.BodyContains = []string{"ua=upwatch"} }},

		{name: "body contains", path: "/ok", mod: func(h *prober.HTTPSpec) { h.BodyContains = []string{"hello", "operational"} }},
		{name: "body contains fails", path: "/ok", mod: func(h *prober.HTTPSpec) { h.BodyContains = []string{"hello", "degraded"} },
			class: prober.ClassAssertion, errPart: `body does not contain "degraded"`},
		{name: "body not contains", path: "/ok", mod: func(h *prober.HTTPSpec) { h.BodyNotContains = []string{"error"} }},
		{name: "body not contains fails", path: "/ok", mod: func(h *prober.HTTPSpec) { h.BodyNotContains = []string{"error", "systems"} },
			class: prober.ClassAssertion, errPart: `body contains "systems"`},
		{name: "body regex", path: "/ok", mod: func(h *prober.HTTPSpec) { h.BodyRegex = []string{`^hello \w+,`, `all \w+ operational$`} }},
		{name: "body regex fails", path: "/ok", mod: func(h *prober.HTTPSpec) { h.BodyRegex = []string{`^goodbye`} },
			class: prober.ClassAssertion, errPart: `body does not match regex "^goodbye"`},
		{name: "status checked before body", path: "/status/500", mod: func(h *prober.HTTPSpec) { h.BodyContains = []string{"x"} }, class: prober.ClassStatus},

		{name: "json path values", path: "/json", mod: func(h *prober.HTTPSpec) {
			h.JSONPath = map[string]string{
				"status":              "up",
				"version":             "2",
				"ratio":               "0.5",
				"ok":                  "true",
				"none":                "null",
				"data.items.0.status": "up",
				"data.items.1.status": "down",
				"data.items.1.tags":   `["a","b"]`,
				"data.items.1.tags.1": "b",
				"data.items.0":        `{"status":"up"}`,
			}
		}},
		{name: "json path mismatch", path: "/json", mod: func(h *prober.HTTPSpec) { h.JSONPath = map[string]string{"data.items.1.status": "up"} },
			class: prober.ClassAssertion, errPart: `json_path data.items.1.status is "down", want "up"`},
		{name: "json string is not its quoted form", path: "/json", mod: func(h *prober.HTTPSpec) { h.JSONPath = map[string]string{"status": `"up"`} },
			class: prober.ClassAssertion},
		{name: "json path missing key", path: "/json", mod: func(h *prober.HTTPSpec) { h.JSONPath = map[string]string{"data.nope": "x"} },
			class: prober.ClassAssertion, errPart: `json_path data.nope: no key "nope"`},
		{name: "json path index out of range", path: "/json", mod: func(h *prober.HTTPSpec) { h.JSONPath = map[string]string{"data.items.7.status": "up"} },
			class: prober.ClassAssertion, errPart: "no index"},
		{name: "json path into scalar", path: "/json", mod: func(h *prober.HTTPSpec) { h.JSONPath = map[string]string{"status.x": "up"} },
			class: prober.ClassAssertion, errPart: "cannot descend"},
		{name: "json path on non JSON", path: "/ok", mod: func(h *prober.HTTPSpec) { h.JSONPath = map[string]string{"a": "b"} },
			class: prober.ClassAssertion, errPart: "body is not JSON"},

		{name: "header match", path: "/ok", mod: func(h *prober.HTTPSpec) {
			h.HeaderMatch = map[string]string{"content-type": `^text/plain`, "X-Version": `^1\.4\.\d+$`}
		}},
		{name: "header mismatch", path: "/ok", mod: func(h *prober.HTTPSpec) { h.HeaderMatch = map[string]string{"X-Version": `^2\.`} },
			class: prober.ClassAssertion, errPart: `header X-Version "1.4.2" does not match`},
		{name: "header missing", path: "/ok", mod: func(h *prober.HTTPSpec) { h.HeaderMatch = map[string]string{"X-Missing": `.`} },
			class: prober.ClassAssertion, errPart: "header X-Missing missing"},

		{name: "max latency exceeded", path: "/slow", mod: func(h *prober.HTTPSpec) { h.MaxLatency = time.Nanosecond },
			class: prober.ClassAssertion, errPart: "exceeds max_latency"},
		{name: "max latency met", path: "/ok", mod: func(h *prober.HTTPSpec) { h.MaxLatency = time.Minute }},
		{name: "assertions see only max_body_bytes", path: "/ok", mod: func(h *prober.HTTPSpec) {
			h.MaxBodyBytes = 5
			h.BodyContains = []string{"operational"}
		}, class: prober.ClassAssertion, errPart: `body does not contain "operational"`},
		{name: "HEAD", path: "/ok", mod: func(h *prober.HTTPSpec) { h.Method = "HEAD" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := htTarget(t, srv.URL+tc.path, tc.mod)
			res := htCheck(t, p, tg)
			require.Equal(t, tc.class, res.ErrorClass, "error: %s", res.Error)
			require.Equal(t, tc.class == prober.ClassNone, res.Success)
			require.Contains(t, res.Error, tc.errPart)
			if tc.status != 0 {
				require.Equal(t, tc.status, res.StatusCode)
			}
			require.Equal(t, "http", res.Kind)
			require.Equal(t, "web", res.TargetID)
		})
	}
}

// An HTTP check says where it runs from; a target's own header wins.
func TestHTTPLocationHeader(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get(prober.LocationHeader))
	}))
	defer srv.Close()
	p := prober.New(prober.Options{AllowPrivate: true, Location: "eu-west"})
	require.True(t, htCheck(t, p, htTarget(t, srv.URL, nil)).Success)
	require.Equal(t, "eu-west", got.Load())
	require.True(t, htCheck(t, htProber(), htTarget(t, srv.URL, nil)).Success)
	require.Equal(t, "local", got.Load())
	own := htTarget(t, srv.URL, func(h *prober.HTTPSpec) { h.Headers = map[string]string{prober.LocationHeader: "mine"} })
	require.True(t, htCheck(t, p, own).Success)
	require.Equal(t, "mine", got.Load())
}

func TestHTTPResultFields(t *testing.T) {
	srv := htServer(t, htApp())
	p := htProber()

	t.Run("plain", func(t *testing.T) {
		res := htCheck(t, p, htTarget(t, srv.URL+"/ok", nil))
		require.True(t, res.Success, res.Error)
		require.Equal(t, 200, res.StatusCode)
		require.Equal(t, int64(len("hello upwatch, all systems operational")), res.BodyBytes)
		require.Equal(t, srv.Listener.Addr().String(), res.RemoteAddr)
		require.NotZero(t, res.Phases.Connect)
		require.NotZero(t, res.Phases.TTFB)
		require.Zero(t, res.Phases.TLS)
		require.Zero(t, res.Phases.DNS, "an IP literal needs no lookup")
		require.True(t, res.TLSExpiry.IsZero())
		require.NotZero(t, res.Duration)
	})

	t.Run("name lookup with ip4", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		res := htCheck(t, p, htTarget(t, "http://localhost:"+port+"/ok", func(h *prober.HTTPSpec) { h.IPProtocol = "ip4" }))
		require.True(t, res.Success, res.Error)
		require.Equal(t, srv.Listener.Addr().String(), res.RemoteAddr)
	})

	t.Run("ip6 preference cannot reach an ip4 server", func(t *testing.T) {
		res := htCheck(t, p, htTarget(t, srv.URL+"/ok", func(h *prober.HTTPSpec) { h.IPProtocol = "ip6" }))
		require.False(t, res.Success, "%+v", res)
		require.Equal(t, prober.ClassConnect, res.ErrorClass, res.Error)
	})

	t.Run("tls", func(t *testing.T) {
		ca := probertest.NewCA(t)
		cert := ca.Issue(t, probertest.CertOptions{})
		tsrv := htTLSServer(t, htApp(), cert, nil)
		res := htCheck(t, p, htTarget(t, tsrv.URL+"/ok", func(h *prober.HTTPSpec) { h.TLS.CAFile = ca.WriteFile(t) }))
		require.True(t, res.Success, res.Error)
		require.NotZero(t, res.Phases.TLS)
		require.NotZero(t, res.Phases.Connect)
		require.True(t, res.TLSExpiry.Equal(cert.Leaf.NotAfter), "tls expiry %s, want %s", res.TLSExpiry, cert.Leaf.NotAfter)
	})
}

// TestHTTPNewConnectionPerCheck proves no connection is reused between
// checks, so connect and TLS timings are real every time.
func TestHTTPNewConnectionPerCheck(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(htApp())
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p := htProber()
	tg := htTarget(t, srv.URL+"/ok", nil)
	for range 5 {
		res := htCheck(t, p, tg)
		require.True(t, res.Success, res.Error)
		require.NotZero(t, res.Phases.Connect)
	}
	require.EqualValues(t, 5, conns.Load())
}

func TestHTTPRedirects(t *testing.T) {
	var hops atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/middle", http.StatusFound) })
	mux.HandleFunc("/middle", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/final", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/final", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "landed") })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		hops.Add(1)
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	srv := htServer(t, mux)
	p := htProber()

	t.Run("followed", func(t *testing.T) {
		res := htCheck(t, p, htTarget(t, srv.URL+"/start", func(h *prober.HTTPSpec) {
			h.BodyContains = []string{"landed"}
			h.ExpectStatus = []string{"200"}
		}))
		require.True(t, res.Success, res.Error)
		require.Equal(t, 200, res.StatusCode)
	})
	t.Run("not followed", func(t *testing.T) {
		res := htCheck(t, p, htTarget(t, srv.URL+"/start", func(h *prober.HTTPSpec) {
			h.FollowRedirects = htPtr(false)
			h.ExpectStatus = []string{"302"}
		}))
		require.True(t, res.Success, res.Error)
		require.Equal(t, 302, res.StatusCode)
	})
	t.Run("more than max", func(t *testing.T) {
		res := htCheck(t, p, htTarget(t, srv.URL+"/start", func(h *prober.HTTPSpec) { h.MaxRedirects = 1 }))
		require.Equal(t, prober.ClassHTTP, res.ErrorClass, res.Error)
		require.Contains(t, res.Error, "stopped after 1 redirects")
	})
	t.Run("endless loop", func(t *testing.T) {
		hops.Store(0)
		res := htCheck(t, p, htTarget(t, srv.URL+"/loop", func(h *prober.HTTPSpec) { h.MaxRedirects = 3 }))
		require.False(t, res.Success, "%+v", res)
		require.Equal(t, prober.ClassHTTP, res.ErrorClass, res.Error)
		require.EqualValues(t, 4, hops.Load(), "the first request and three redirects")
	})
	t.Run("endless loop default max", func(t *testing.T) {
		res := htCheck(t, p, htTarget(t, srv.URL+"/loop", nil))
		require.Equal(t, prober.ClassHTTP, res.ErrorClass, res.Error)
		require.Contains(t, res.Error, "stopped after 10 redirects")
	})
}

// htInfinite never ends.
type htInfinite struct{}

func (htInfinite) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = 'x'
	}
	return len(b), nil
}

func TestHTTPHugeBodyIsCapped(t *testing.T) {
	srv := htServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.Copy(w, io.LimitReader(htInfinite{}, 1<<30)) // 1 GiB, cut short when the client leaves
	}))
	p := htProber()
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("buffered=%v", keep), func(t *testing.T) {
			res := htCheck(t, p, htTarget(t, srv.URL, func(h *prober.HTTPSpec) {
				h.MaxBodyBytes = 64 << 10
				if keep {
					h.BodyContains = []string{"xxxx"}
					h.BodyNotContains = []string{"y"}
				}
			}))
			require.True(t, res.Success, res.Error)
			require.Equal(t, int64(64<<10), res.BodyBytes)
		})
	}
}

func TestHTTPSlowServersTimeOut(t *testing.T) {
	mux := http.NewServeMux()
	// Slowloris: headers at once, then a byte every 50ms, forever.
	mux.HandleFunc("/dribble", trickle)
	// Never answers.
	mux.HandleFunc("/silent", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := htServer(t, mux)

	// A server that accepts and never speaks HTTP.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var held sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held.Go(func() { io.Copy(io.Discard, c); c.Close() })
		}
	}()

	p := htProber()
	for _, url := range []string{srv.URL + "/dribble", srv.URL + "/silent", "http://" + ln.Addr().String() + "/"} {
		t.Run(url, func(t *testing.T) {
			tg := htTarget(t, url, func(h *prober.HTTPSpec) { h.BodyContains = []string{"never"} })
			tg.Timeout = 300 * time.Millisecond
			res := htCheck(t, p, tg)
			require.False(t, res.Success, "%+v", res)
			require.Equal(t, prober.ClassTimeout, res.ErrorClass, res.Error)
		})
	}
}

func TestHTTPTLS(t *testing.T) {
	ca := probertest.NewCA(t)
	caFile := ca.WriteFile(t)
	self := htTLSServer(t, htApp(), probertest.SelfSigned(t, probertest.CertOptions{}), nil)
	expiredCert := ca.Issue(t, probertest.CertOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	expired := htTLSServer(t, htApp(), expiredCert, nil)
	other := htTLSServer(t, htApp(), ca.Issue(t, probertest.CertOptions{Hosts: []string{"status.example.com"}}), nil)
	good := htTLSServer(t, htApp(), ca.Issue(t, probertest.CertOptions{}), nil)
	p := htProber()

	tests := []struct {
		name  string
		url   string
		tls   prober.TLSClient
		class prober.ErrorClass
	}{
		{"self-signed", self.URL, prober.TLSClient{}, prober.ClassTLS},
		{"self-signed skip verify", self.URL, prober.TLSClient{InsecureSkipVerify: true}, prober.ClassNone},
		{"unknown CA", good.URL, prober.TLSClient{}, prober.ClassTLS},
		{"CA file", good.URL, prober.TLSClient{CAFile: caFile}, prober.ClassNone},
		{"expired", expired.URL, prober.TLSClient{CAFile: caFile}, prober.ClassTLS},
		{"expired skip verify", expired.URL, prober.TLSClient{InsecureSkipVerify: true}, prober.ClassNone},
		{"wrong hostname", other.URL, prober.TLSClient{CAFile: caFile}, prober.ClassTLS},
		{"server name override", other.URL, prober.TLSClient{CAFile: caFile, ServerName: "status.example.com"}, prober.ClassNone},
		{"server name override wrong", good.URL, prober.TLSClient{CAFile: caFile, ServerName: "status.example.com"}, prober.ClassTLS},
		{"missing CA file", good.URL, prober.TLSClient{CAFile: "/nonexistent/ca.pem"}, prober.ClassInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := htCheck(t, p, htTarget(t, tc.url+"/ok", func(h *prober.HTTPSpec) { h.TLS = tc.tls }))
			require.Equal(t, tc.class, res.ErrorClass, res.Error)
			require.Equal(t, tc.class == prober.ClassNone, res.Success)
		})
	}

	t.Run("expiry reported for a rejected certificate", func(t *testing.T) {
		res := htCheck(t, p, htTarget(t, expired.URL, func(h *prober.HTTPSpec) { h.TLS.CAFile = caFile }))
		require.Equal(t, prober.ClassTLS, res.ErrorClass)
		require.True(t, res.TLSExpiry.Equal(expiredCert.Leaf.NotAfter))
	})
	t.Run("plain http to a tls port", func(t *testing.T) {
		res := htCheck(t, p, htTarget(t, strings.Replace(good.URL, "https://", "http://", 1), nil))
		require.False(t, res.Success, "%+v", res)
		require.Equal(t, 400, res.StatusCode, res.Error) // Go's TLS server answers plain HTTP with 400
		require.Equal(t, prober.ClassStatus, res.ErrorClass)
	})
}

func TestHTTPMisbehavingServers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("handler exploded") })
	mux.HandleFunc("/abort", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/hangup", func(w http.ResponseWriter, _ *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	})
	mux.HandleFunc("/garbage", func(w http.ResponseWriter, _ *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n")
		c.Close()
	})
	mux.HandleFunc("/badlength", func(w http.ResponseWriter, _ *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
		c.Close()
	})
	srv := htServer(t, mux)
	p := htProber()
	for _, path := range []string{"/panic", "/abort", "/hangup", "/garbage", "/badlength"} {
		t.Run(path, func(t *testing.T) {
			res := htCheck(t, p, htTarget(t, srv.URL+path, nil))
			require.False(t, res.Success, "%+v", res)
			require.Equal(t, prober.ClassHTTP, res.ErrorClass, res.Error)
			require.NotEmpty(t, res.Error)
		})
	}
}

func TestHTTPConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	res := htCheck(t, htProber(), htTarget(t, "http://"+addr+"/", nil))
	require.Equal(t, prober.ClassConnect, res.ErrorClass, res.Error)
}

func TestHTTPSSRFGuard(t *testing.T) {
	var hits atomic.Int64
	srv := htServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	p := prober.New(prober.Options{}) // private addresses not allowed
	for _, url := range []string{srv.URL + "/", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/"} {
		res := htCheck(t, p, htTarget(t, url, nil))
		require.Equal(t, prober.ClassBlocked, res.ErrorClass, res.Error)
	}
	require.Zero(t, hits.Load(), "the guard must stop the request before it is sent")

	t.Run("oauth2 token endpoint", func(t *testing.T) {
		for _, tokenURL := range []string{srv.URL + "/token", "http://[64:ff9b::a9fe:a9fe]/token"} {
			res := htCheck(t, p, htTarget(t, "http://192.0.2.1/", func(h *prober.HTTPSpec) {
				h.Auth = &prober.Auth{Type: "oauth2", TokenURL: tokenURL, ClientID: "id", ClientSecret: htSecret("s3cret-value")}
			}))
			require.Equal(t, prober.ClassBlocked, res.ErrorClass, res.Error)
			require.Contains(t, res.Error, "oauth2 token", "the token fetch, not the target, was refused")
		}
		require.Zero(t, hits.Load())
	})

	// Ranges and embedded forms the guard once let through: the metadata
	// address behind NAT64 failed as "connect", not "blocked". Refused
	// before any packet is sent, so none of these leaves the machine.
	t.Run("special-purpose and embedded forms", func(t *testing.T) {
		for _, host := range []string{
			"[64:ff9b::a9fe:a9fe]", "[64:ff9b::7f00:1]", "[2002:a9fe:a9fe::1]", "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
			"240.0.0.1", "192.0.2.1", "198.51.100.1", "203.0.113.1", "192.88.99.1", "[3fff::1]", "[5f00::1]",
		} {
			res := htCheck(t, p, htTarget(t, "http://"+host+"/", nil))
			require.Equal(t, prober.ClassBlocked, res.ErrorClass, "%s: %s", host, res.Error)
		}
	})
}

// TestHTTPSSRFGuardHostAddress: a service bound to 0.0.0.0 answers on
// every address of the host; the guard refuses them all, not only
// loopback. Allowing private targets reaches it, so the address is live.
func TestHTTPSSRFGuardHostAddress(t *testing.T) {
	var ip net.IP
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("the host has no non-loopback interface address")
	}
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if ip.To4() == nil {
		ln, err = net.Listen("tcp", "[::]:0")
	}
	require.NoError(t, err)
	var hits atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }), ErrorLog: htQuietLog()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)) + "/"

	res := htCheck(t, prober.New(prober.Options{}), htTarget(t, url, nil))
	require.Equal(t, prober.ClassBlocked, res.ErrorClass, res.Error)
	require.Zero(t, hits.Load())

	res = htCheck(t, htProber(), htTarget(t, url, nil))
	require.True(t, res.Success, res.Error)
	require.EqualValues(t, 1, hits.Load())
}

// TestHTTPConcurrentChecks runs many checks of several targets on one
// Prober at once; with -race it proves the shared caches are safe.
func TestHTTPConcurrentChecks(t *testing.T) {
	srv := htServer(t, htApp())
	p := htProber()
	targets := []*prober.Target{
		htTarget(t, srv.URL+"/ok", nil),
		htTarget(t, srv.URL+"/json", func(h *prober.HTTPSpec) { h.JSONPath = map[string]string{"status": "up"} }),
		htTarget(t, srv.URL+"/status/500", func(h *prober.HTTPSpec) { h.ExpectStatus = []string{"5xx"} }),
		htTarget(t, srv.URL+"/ok", func(h *prober.HTTPSpec) { h.IPProtocol = "ip4" }),
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 64 {
		wg.Go(func() {
			for j := range 5 {
				if res := p.Check(context.Background(), targets[(i+j)%len(targets)]); !res.Success {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	require.Zero(t, failed.Load())
}

// BenchmarkHTTPCheck measures end-to-end checks per second against a
// loopback server, a new connection per check, run as the scheduler runs
// them (CheckInline).
//
//	go test -run '^$' -bench HTTPCheck -benchtime 3s -cpu 2 ./prober/
func BenchmarkHTTPCheck(b *testing.B) {
	srv := htServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	p := htProber()
	tg := htTarget(b, srv.URL+"/", func(h *prober.HTTPSpec) { h.BodyContains = []string{"ok"} })
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := p.CheckInline(context.Background(), tg); !res.Success {
				failed.Add(1)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d checks failed", n, b.N)
	}
}

// Header lines and bodies larger than the connection's buffers are read
// whole: a 16 KiB header value and a body whose marker sits past 100 KiB.
func TestHTTPLargeHeadersAndBody(t *testing.T) {
	long := strings.Repeat("v", 16<<10)
	srv := htServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Long", long+"end")
		io.WriteString(w, strings.Repeat("x", 100<<10)+"marker")
	}))
	tg := htTarget(t, srv.URL+"/", func(h *prober.HTTPSpec) {
		h.HeaderMatch = map[string]string{"X-Long": `^v+end$`}
		h.BodyContains = []string{"marker"}
	})
	r := htCheck(t, htProber(), tg)
	require.True(t, r.Success, "%s: %s", r.ErrorClass, r.Error)
	require.Equal(t, int64(100<<10+len("marker")), r.BodyBytes)
}
