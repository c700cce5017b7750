package prober_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

// The check client asks for gzip as net/http's Transport does, and
// assertions, body size and evidence see the decoded body; a target that
// names its own Accept-Encoding gets the bytes as sent.
func TestHTTPGzipBodyIsDecoded(t *testing.T) {
	const text = "all systems operational"
	var asked []string
	srv := htServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.Header.Get("Accept-Encoding"))
		if r.Header.Get("Accept-Encoding") != "gzip" {
			io.WriteString(w, text)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, text)
		zw.Close()
	}))
	p := htProber()

	res := htCheck(t, p, htTarget(t, srv.URL+"/", func(h *prober.HTTPSpec) { h.BodyContains = []string{"operational"} }))
	require.True(t, res.Success, res.Error)
	require.EqualValues(t, len(text), res.BodyBytes)
	require.EqualValues(t, -1, res.ContentLength, "the length sent is the compressed one, so it is unknown decoded")

	res = htCheck(t, p, htTarget(t, srv.URL+"/", func(h *prober.HTTPSpec) {
		h.Headers = map[string]string{"Accept-Encoding": "identity"}
		h.BodyContains = []string{"operational"}
	}))
	require.True(t, res.Success, res.Error)
	require.Equal(t, []string{"gzip", "identity"}, asked)

	// HEAD has no body to decode: nothing is asked for.
	asked = nil
	res = htCheck(t, p, htTarget(t, srv.URL+"/", func(h *prober.HTTPSpec) { h.Method = http.MethodHead }))
	require.True(t, res.Success, res.Error)
	require.Equal(t, []string{""}, asked)
}

// A body that claims gzip but is not fails as a protocol error, not a
// pass with garbage counted.
func TestHTTPBrokenGzipFails(t *testing.T) {
	srv := htServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		io.WriteString(w, "not gzip at all")
	}))
	res := htCheck(t, htProber(), htTarget(t, srv.URL+"/", nil))
	require.False(t, res.Success)
	require.Equal(t, prober.ClassHTTP, res.ErrorClass, res.Error)
	require.Contains(t, res.Error, "gzip")
}

// rawServer answers every connection on 127.0.0.1 with reply after reading
// the request's header, and records each request's header lines.
func rawServer(t *testing.T, reply string) (url string, requests <-chan []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	got := make(chan []string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				var lines []string
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					if line == "" {
						break
					}
					lines = append(lines, line)
				}
				got <- lines
				io.WriteString(c, reply)
			}()
		}
	}()
	return "http://" + ln.Addr().String(), got
}

// Informational responses (103 Early Hints, 100 Continue) come before the
// real one and are skipped; the request says the connection closes.
func TestHTTPSkipsInformationalResponses(t *testing.T) {
	url, requests := rawServer(t, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"+
		"HTTP/1.1 100 Continue\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
	res := htCheck(t, htProber(), htTarget(t, url+"/", func(h *prober.HTTPSpec) { h.BodyContains = []string{"ok"} }))
	require.True(t, res.Success, res.Error)
	require.Equal(t, 200, res.StatusCode)
	lines := <-requests
	require.Equal(t, "GET / HTTP/1.1", lines[0])
	require.Contains(t, lines, "Connection: close")
	require.Contains(t, lines, "User-Agent: upwatch-prober/1")
}

// A server that never ends its header is cut off at 256 KiB, long before
// the check's timeout.
func TestHTTPResponseHeaderIsBounded(t *testing.T) {
	url, _ := rawServer(t, "HTTP/1.1 200 OK\r\nX-Flood: "+strings.Repeat("a", 300<<10)+"\r\n\r\n")
	tg := htTarget(t, url+"/", nil)
	tg.Timeout = time.Minute
	began := time.Now()
	res := htCheck(t, htProber(), tg)
	require.False(t, res.Success)
	require.Equal(t, prober.ClassHTTP, res.ErrorClass, res.Error)
	require.Contains(t, res.Error, "response headers exceed 262144 bytes")
	require.Less(t, time.Since(began), 30*time.Second)
}

// A check cancelled while the server holds the response back returns at
// once, reported as cancelled, and its connection is closed.
func TestHTTPCancelClosesTheConnection(t *testing.T) {
	closed := make(chan struct{})
	srv := htServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the server sees the client go
		close(closed)
	}))
	tg := htTarget(t, srv.URL+"/", nil)
	tg.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan prober.Result, 1)
	go func() { done <- htProber().Check(ctx, tg) }()
	time.Sleep(50 * time.Millisecond) // let the request reach the server; the test holds either way
	cancel()
	select {
	case res := <-done:
		require.False(t, res.Success)
		require.Equal(t, prober.ClassCanceled, res.ErrorClass, res.Error)
	case <-time.After(30 * time.Second):
		t.Fatal("the check did not return after its context was cancelled")
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the server never saw the connection close")
	}
}
