package agent

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
	"net/url"
	"os"
	"time"
)

// client talks to serve's agent routes with the agent key.
type client struct {
	base string // server URL, no trailing slash
	key  string
	http *http.Client
}

// statusError is an answer the server gave with a status other than 200.
type statusError struct {
	status int
	detail string
}

func (e *statusError) Error() string {
	if e.detail != "" {
		return fmt.Sprintf("server answered %d: %s", e.status, e.detail)
	}
	return fmt.Sprintf("server answered %d", e.status)
}

// permanent reports whether sending the same request again cannot help:
// a client error other than auth (a key may be restored), timeouts and
// rate limits.
func permanent(err error) bool {
	var se *statusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusConflict,
		http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return se.status >= 400 && se.status < 500
}

// do sends body (JSON, if not nil) to path under /api/v1 and decodes a 200
// answer into out.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + "/api/v1" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Detail string `json:"detail"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = json.Unmarshal(b, &p)
		return &statusError{status: resp.StatusCode, detail: p.Detail}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// newHTTPClient is the agent's client: bounded in every phase, with room
// for a long poll of up to wait; tc, if set, is its TLS config.
func newHTTPClient(wait time.Duration, tc *tls.Config) *http.Client {
	c := &http.Client{Timeout: wait + 30*time.Second}
	if tc != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc
		c.Transport = t
	}
	return c
}

// ClientTLS builds the agent's TLS config from PEM files: certFile and
// keyFile (both or neither) are its client certificate for servers that
// require one (server.tls.client_ca_file); caFile, if set, is the only CA
// it trusts for the server, instead of the system's.
func ClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case (certFile == "") != (keyFile == ""):
		return nil, errors.New("agent: give -tls-cert and -tls-key together")
	case certFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("agent: -tls-cert, -tls-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("agent: -tls-ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("agent: -tls-ca %s: holds no PEM certificate", caFile)
		}
	}
	return c, nil
}
