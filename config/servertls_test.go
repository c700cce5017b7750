package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober/probertest"
)

func TestServerTLS(t *testing.T) {
	ca := probertest.NewCA(t)
	cert, key := probertest.WriteKeyPair(t, ca.Issue(t, probertest.CertOptions{}))
	caFile := ca.WriteFile(t)
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	parse := func(tls string) (*Config, error) {
		return Parse(strings.NewReader("server:\n  tls: "+tls+"\n"), "t.yaml", noEnv)
	}

	c, err := parse("{cert_file: " + cert + ", key_file: " + key + ", client_ca_file: " + caFile + "}")
	require.NoError(t, err)
	require.True(t, c.Server.TLS.Enabled())
	tc, err := c.Server.TLS.Config()
	require.NoError(t, err)
	require.NotNil(t, tc.ClientCAs)
	require.Len(t, tc.Certificates, 1)

	c, err = parse("{}")
	require.NoError(t, err)
	require.False(t, c.Server.TLS.Enabled(), "plain HTTP by default")

	for tls, want := range map[string]string{
		"{cert_file: " + cert + "}":                                                             "server.tls: set both cert_file and key_file",
		"{client_ca_file: " + caFile + "}":                                                      "server.tls: set both cert_file and key_file",
		"{cert_file: " + cert + ", key_file: " + cert + "}":                                     "server.tls.cert_file: cannot load the key pair with key_file",
		"{cert_file: " + cert + ", key_file: " + key + ", client_ca_file: " + notPEM + "}":      "server.tls.client_ca_file: holds no PEM certificate",
		"{cert_file: " + cert + ", key_file: " + key + ", client_ca_file: /nonexistent/ca.pem}": "server.tls.client_ca_file: open /nonexistent/ca.pem",
	} {
		_, err := parse(tls)
		require.ErrorContains(t, err, want, tls)
	}
}
