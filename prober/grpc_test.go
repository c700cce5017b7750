package prober

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/upwatch/upwatch/prober/probertest"
)

// grpcHealthServer serves the standard health service on 127.0.0.1 (over
// TLS with cert when given) and returns its address and the service's
// status setter.
func grpcHealthServer(t *testing.T, cert *tls.Certificate) (string, *health.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var opts []grpc.ServerOption
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{*cert}})))
	}
	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), hs
}

func TestGRPCCheck(t *testing.T) {
	addr, hs := grpcHealthServer(t, nil)
	hs.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("shop.Pay", healthpb.HealthCheckResponse_NOT_SERVING)
	ca := probertest.NewCA(t)
	tlsAddr, tlsHS := grpcHealthServer(t, new(ca.Issue(t, probertest.CertOptions{})))
	tlsHS.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	caFile := ca.WriteFile(t)
	plain := tcpCheckServer(t, tcpCheckHang)

	tests := []struct {
		name      string
		spec      GRPCSpec
		timeout   time.Duration
		wantOK    bool
		wantClass ErrorClass
		wantMsg   string
	}{
		{name: "server serving", spec: GRPCSpec{Address: addr}, wantOK: true},
		{name: "service serving", spec: GRPCSpec{Address: addr, Service: "shop.Cart"}, wantOK: true},
		{name: "service not serving", spec: GRPCSpec{Address: addr, Service: "shop.Pay"}, wantClass: ClassNotServing, wantMsg: `service "shop.Pay" is NOT_SERVING`},
		{name: "unknown service", spec: GRPCSpec{Address: addr, Service: "shop.Nope"}, wantClass: ClassNotServing, wantMsg: "NotFound"},
		{name: "refused", spec: GRPCSpec{Address: closedCheckAddr(t)}, wantClass: ClassConnect, wantMsg: "refused"},
		{name: "tls with ca_file", spec: GRPCSpec{Address: tlsAddr, TLS: true, TLSConfig: TLSClient{CAFile: caFile}}, wantOK: true},
		{name: "tls unknown authority", spec: GRPCSpec{Address: tlsAddr, TLS: true}, wantClass: ClassTLS, wantMsg: "certificate"},
		{name: "tls insecure_skip_verify", spec: GRPCSpec{Address: tlsAddr, TLS: true, TLSConfig: TLSClient{InsecureSkipVerify: true}}, wantOK: true},
		{name: "plaintext to tls", spec: GRPCSpec{Address: tlsAddr}, wantClass: ClassConnect},
		{name: "silent server", spec: GRPCSpec{Address: plain}, timeout: 300 * time.Millisecond, wantClass: ClassTimeout},
	}
	p := New(Options{AllowPrivate: true})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			spec := tc.spec
			res := runCheckTarget(t, p, Target{Name: "grpc", Kind: "grpc", Timeout: timeout, GRPC: &spec})
			require.Equal(t, tc.wantOK, res.Success, "error: %s %s", res.ErrorClass, res.Error)
			require.Equal(t, tc.wantClass, res.ErrorClass, res.Error)
			require.Contains(t, res.Error, tc.wantMsg)
			if tc.wantOK {
				require.Equal(t, spec.Address, res.RemoteAddr)
				require.NotZero(t, res.Phases.Connect)
			}
			if tc.wantOK && spec.TLS {
				require.NotZero(t, res.Phases.TLS)
				require.False(t, res.TLSExpiry.IsZero())
			}
		})
	}
}

// Switching the served status switches the verdict, check by check.
func TestGRPCCheckFollowsStatus(t *testing.T) {
	addr, hs := grpcHealthServer(t, nil)
	p := New(Options{AllowPrivate: true})
	tgt := Target{Name: "grpc", Kind: "grpc", Timeout: 5 * time.Second, GRPC: &GRPCSpec{Address: addr, Service: "svc"}}
	for _, st := range []healthpb.HealthCheckResponse_ServingStatus{
		healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVING,
	} {
		hs.SetServingStatus("svc", st)
		res := runCheckTarget(t, p, tgt)
		require.Equal(t, st == healthpb.HealthCheckResponse_SERVING, res.Success, "%s: %s", st, res.Error)
	}
}

func TestGRPCCheckBlocked(t *testing.T) {
	addr, _ := grpcHealthServer(t, nil)
	res := runCheckTarget(t, New(Options{}), Target{Name: "grpc", Kind: "grpc", Timeout: 2 * time.Second, GRPC: &GRPCSpec{Address: addr}})
	require.False(t, res.Success)
	require.Equal(t, ClassBlocked, res.ErrorClass, res.Error)
}

func TestGRPCValidate(t *testing.T) {
	tgt := Target{Name: "g", Kind: "grpc", GRPC: &GRPCSpec{Address: "nohost", Service: string(make([]byte, 300)),
		TLSConfig: TLSClient{CertFile: "c.pem"}, IPProtocol: "ip5"}}
	tgt.Normalize()
	errs := tgt.Validate("targets[0]")
	paths := map[string]bool{}
	for _, e := range errs {
		paths[e.Path] = true
	}
	for _, p := range []string{"targets[0].grpc.address", "targets[0].grpc.service", "targets[0].grpc.tls_config", "targets[0].grpc.ip_protocol"} {
		require.True(t, paths[p], "%s in %v", p, errs)
	}
}
