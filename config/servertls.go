package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/upwatch/upwatch/internal/invalid"
)

// ServerTLS makes serve speak HTTPS itself, and optionally ask probe
// agents for a client certificate (mTLS).
type ServerTLS struct {
	// CertFile and KeyFile are the server's certificate (chain) and key,
	// PEM. Both or neither; neither serves plain HTTP (behind a proxy).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, PEM, signs the agents' client certificates: with it
	// the agent routes (/api/v1/agent/*) refuse a request without a
	// certificate it verifies, on top of the agent key. Other clients may
	// still connect without one.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether serve speaks HTTPS.
func (t ServerTLS) Enabled() bool { return t.CertFile != "" }

// Config reads the files into a TLS server config. An error is an
// invalid.Field naming the setting.
func (t ServerTLS) Config() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, invalid.Field{Path: "server.tls.cert_file", Msg: fmt.Sprintf("cannot load the key pair with key_file: %v", err)}
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, invalid.Field{Path: "server.tls.client_ca_file", Msg: err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, invalid.Field{Path: "server.tls.client_ca_file", Msg: "holds no PEM certificate"}
		}
		// Verified when given, required by the agent routes alone: the
		// API, the web interface and /metrics keep working without one.
		c.ClientCAs, c.ClientAuth = pool, tls.VerifyClientCertIfGiven
	}
	return c, nil
}

func (t ServerTLS) validate() []invalid.Field {
	switch {
	case t.CertFile == "" && t.KeyFile == "" && t.ClientCAFile == "":
		return nil
	case t.CertFile == "" || t.KeyFile == "":
		return []invalid.Field{{Path: "server.tls", Msg: "set both cert_file and key_file (client_ca_file needs them too)"}}
	}
	if _, err := t.Config(); err != nil {
		var f invalid.Field
		if errors.As(err, &f) {
			return []invalid.Field{f}
		}
		return []invalid.Field{{Path: "server.tls", Msg: err.Error()}}
	}
	return nil
}
