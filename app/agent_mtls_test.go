package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/agent"
	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/fleet"
	"github.com/upwatch/upwatch/internal/clock/clocktest"
	"github.com/upwatch/upwatch/prober/probertest"
)

// TestAgentMTLS: with server.tls.client_ca_file serve speaks HTTPS and its
// agent routes want a client certificate that CA signed, besides the key;
// the rest of the API does not. An agent given -tls-cert/-tls-key/-tls-ca
// registers and gets its targets; one without a certificate does not.
func TestAgentMTLS(t *testing.T) {
	ca, other := probertest.NewCA(t), probertest.NewCA(t)
	srvCert, srvKey := probertest.WriteKeyPair(t, ca.Issue(t, probertest.CertOptions{}))
	clientCert := ca.Issue(t, probertest.CertOptions{Client: true})
	clientCertFile, clientKeyFile := probertest.WriteKeyPair(t, clientCert)
	caFile := ca.WriteFile(t)

	cfg := testConfig(t, agentTestConfig)
	cfg.Server.TLS = config.ServerTLS{CertFile: srvCert, KeyFile: srvKey, ClientCAFile: caFile}
	admin, _, _, err := api.NewKey()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{Config: cfg, Listener: ln, ShutdownTimeout: 10 * time.Second, Registry: prometheus.NewRegistry(),
			Now: clocktest.Running(clocktest.Noon()), Getenv: func(n string) string { return map[string]string{EnvBootstrapKey: admin}[n] }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	base := "https://" + ln.Addr().String()

	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs}}}
	}
	call := func(c *http.Client, method, path, key string, body any) (int, map[string]any, error) {
		b, _ := json.Marshal(body)
		req, err := http.NewRequest(method, base+path, bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, nil
	}
	require.Eventually(t, func() bool {
		resp, err := client().Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 20*time.Millisecond, "serve answers /readyz over HTTPS without a client certificate")

	// The API needs no client certificate.
	st, body, err := call(client(), http.MethodPost, "/api/v1/keys", admin, map[string]any{"name": "eu", "scopes": []string{"agent"}, "location": "eu-west"})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, st, "%v", body)
	key := body["key"].(string)

	hello := fleet.Hello{ID: "a1", Name: "host"}
	st, body, err = call(client(), http.MethodPost, "/api/v1/agent/heartbeat", key, hello)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, st, "an agent key without a client certificate")
	require.Contains(t, body["detail"], "client certificate")
	st, body, err = call(client(clientCert), http.MethodPost, "/api/v1/agent/heartbeat", key, hello)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st, "%v", body)
	_, _, err = call(client(other.Issue(t, probertest.CertOptions{Client: true})), http.MethodPost, "/api/v1/agent/heartbeat", key, hello)
	require.Error(t, err, "a certificate of another CA fails the handshake")

	// Real agents: one with -tls-cert/-tls-key/-tls-ca, one with -tls-ca only.
	runAgent := func(certFile, keyFile string) *prometheus.Registry {
		tc, err := agent.ClientTLS(certFile, keyFile, caFile)
		require.NoError(t, err)
		reg := prometheus.NewRegistry()
		actx, acancel := context.WithCancel(context.Background())
		adone := make(chan error, 1)
		go func() {
			adone <- agent.Run(actx, agent.Options{Server: base, Key: key, Location: "eu-west", DataDir: t.TempDir(),
				TLS: tc, Registry: reg, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond, Wait: time.Second,
				DrainTimeout: 100 * time.Millisecond})
		}()
		t.Cleanup(func() { acancel(); require.NoError(t, <-adone) })
		return reg
	}
	good, bare := runAgent(clientCertFile, clientKeyFile), runAgent("", "")
	require.Eventually(t, func() bool {
		return gathered(t, good, "upwatch_agent_heartbeats_total") > 0 && gathered(t, good, "upwatch_agent_targets") == 2
	}, 60*time.Second, 20*time.Millisecond, "the agent with a client certificate registers and gets eu-west's targets")
	require.Eventually(t, func() bool { return gathered(t, bare, "upwatch_agent_heartbeat_errors_total") > 0 }, 60*time.Second, 20*time.Millisecond)
	require.Zero(t, gathered(t, bare, "upwatch_agent_heartbeats_total"), "an agent without a client certificate is refused")
}

func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
			return sum
		}
	}
	return 0
}
