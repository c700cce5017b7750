package prober

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/upwatch/upwatch/internal/invalid"
)

// maxGRPCService bounds the service name sent in the health request.
const maxGRPCService = 256

// GRPCSpec configures a grpc check: one grpc.health.v1 Health/Check call.
type GRPCSpec struct {
	Address string `yaml:"address" json:"address"` // host:port
	// Service is the name asked about; empty asks about the server as a
	// whole.
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
	// TLS speaks TLS (verified as TLSConfig says); off is plaintext h2c.
	TLS        bool      `yaml:"tls,omitempty" json:"tls,omitempty"`
	TLSConfig  TLSClient `yaml:"tls_config,omitempty" json:"tls_config,omitempty"`
	IPProtocol string    `yaml:"ip_protocol,omitempty" json:"ip_protocol,omitempty"`
}

func (s *GRPCSpec) normalize() {}

func (s *GRPCSpec) validate(p string) []invalid.Field {
	var errs []invalid.Field
	if err := validHostPort(s.Address); err != "" {
		errs = append(errs, invalid.Field{Path: p + ".address", Msg: err})
	}
	if len(s.Service) > maxGRPCService {
		errs = append(errs, invalid.Field{Path: p + ".service", Msg: fmt.Sprintf("must be at most %d bytes (got %d)", maxGRPCService, len(s.Service))})
	} else {
		errs = append(errs, CheckText(p+".service", s.Service)...)
	}
	if (s.TLSConfig.CertFile == "") != (s.TLSConfig.KeyFile == "") {
		errs = append(errs, invalid.Field{Path: p + ".tls_config", Msg: "cert_file and key_file go together"})
	}
	if err := validIPProtocol(s.IPProtocol); err != "" {
		errs = append(errs, invalid.Field{Path: p + ".ip_protocol", Msg: err})
	}
	return errs
}

// probeGRPC calls grpc.health.v1.Health/Check on t.GRPC.Address over a new
// connection dialled through the SSRF-guarded dialer (never a proxy).
// SERVING is up; any other status, or an error, is down.
func probeGRPC(ctx context.Context, p *Prober, t *Target) Result {
	var r Result
	s := t.GRPC
	if s == nil {
		return r.Fail(ClassInternal, "grpc check without a grpc block")
	}
	var tr grpcTrace
	creds := insecure.NewCredentials()
	if s.TLS {
		cfg, err := tcpTLSConfig(s.TLSConfig, s.Address)
		if err != nil {
			return r.Fail(ClassInternal, err.Error())
		}
		creds = grpcTimedCreds{TransportCredentials: credentials.NewTLS(cfg), tr: &tr}
	}
	conn, err := grpc.NewClient("passthrough:///"+s.Address,
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, dns, connect, err := p.dialTimed(ctx, addr, s.IPProtocol)
			tr.dialed(c, dns, connect, err)
			return c, err
		}),
		grpc.WithNoProxy(), // the SSRF guard must see the target's own address
		grpc.WithDisableRetry(),
		grpc.WithDisableServiceConfig(),
		grpc.WithUserAgent(httpUserAgent),
	)
	if err != nil {
		return r.Fail(ClassInternal, "grpc client: "+err.Error())
	}
	defer conn.Close()

	start := time.Now()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: s.Service})
	total := time.Since(start)
	tr.phases(&r, total)
	r.GRPC = &GRPCStats{Code: int(status.Code(err))}
	if err != nil {
		if class, msg, ok := tr.failure(); ok {
			return r.Fail(class, msg)
		}
		return r.Fail(grpcClassify(err))
	}
	r.GRPC.ServingStatus = resp.GetStatus().String()
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return r.Fail(ClassNotServing, fmt.Sprintf("health of %s is %s", grpcServiceName(s.Service), st))
	}
	r.Success = true
	return r
}

func grpcServiceName(name string) string {
	if name == "" {
		return "the server"
	}
	return fmt.Sprintf("service %q", httpShort(name))
}

// grpcClassify maps a failed call's status to a failure class.
func grpcClassify(err error) (ErrorClass, string) {
	st, ok := status.FromError(err)
	if !ok {
		return Classify(err)
	}
	msg := fmt.Sprintf("%s: %s", st.Code(), httpShort(st.Message()))
	switch st.Code() {
	case codes.DeadlineExceeded:
		return ClassTimeout, msg
	case codes.Canceled:
		return ClassCanceled, msg
	case codes.Unavailable:
		return ClassConnect, msg
	case codes.NotFound:
		return ClassNotServing, "the server does not know the service: " + msg
	case codes.Unimplemented:
		return ClassProtocol, "the server has no grpc.health.v1 Health service: " + msg
	case codes.Unauthenticated, codes.PermissionDenied:
		return ClassAuth, msg
	}
	return ClassProtocol, msg
}

// grpcTrace collects what the client's goroutines learn while connecting.
type grpcTrace struct {
	mu           sync.Mutex
	dns, connect time.Duration
	tlsDur       time.Duration
	remote       string
	err, tlsErr  error
	expiry       time.Time
}

func (tr *grpcTrace) dialed(c net.Conn, dns, connect time.Duration, err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.dns, tr.connect, tr.err = dns, connect, err
	if c != nil {
		tr.remote = c.RemoteAddr().String()
	}
}

// failure is why the connection could not be made, if that is known: a
// dial error (refused, blocked by the SSRF guard) or a failed handshake.
func (tr *grpcTrace) failure() (ErrorClass, string, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch {
	case tr.err != nil:
		class, msg := Classify(tr.err)
		return class, msg, true
	case tr.tlsErr != nil:
		return ClassTLS, "handshake: " + redactError(tr.tlsErr), true
	}
	return ClassNone, "", false
}

// phases fills r: dns, connect and tls as measured, the rest of the call
// (HTTP/2 setup, request and answer) as ttfb.
func (tr *grpcTrace) phases(r *Result, total time.Duration) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	r.Phases.DNS, r.Phases.Connect, r.Phases.TLS = tr.dns, tr.connect, tr.tlsDur
	r.Phases.TTFB = max(total-tr.dns-tr.connect-tr.tlsDur, 0)
	r.RemoteAddr, r.TLSExpiry = tr.remote, tr.expiry
}

// grpcTimedCreds times the TLS handshake and keeps the chain's expiry.
type grpcTimedCreds struct {
	credentials.TransportCredentials
	tr *grpcTrace
}

func (c grpcTimedCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	start := time.Now()
	out, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, conn)
	c.tr.mu.Lock()
	defer c.tr.mu.Unlock()
	c.tr.tlsDur = time.Since(start)
	if ti, ok := info.(credentials.TLSInfo); ok {
		c.tr.expiry = tlsChainExpiry(ti.State.PeerCertificates)
	}
	if err != nil && c.tr.tlsErr == nil {
		c.tr.tlsErr = err
	}
	return out, info, err
}
