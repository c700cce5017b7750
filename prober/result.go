package prober

import "time"

// ErrorClass says why a check failed, in a word a dashboard can group by.
type ErrorClass string

// The failure classes. An empty class means the check succeeded.
const (
	ClassNone       ErrorClass = ""
	ClassDNS        ErrorClass = "dns"         // name did not resolve
	ClassConnect    ErrorClass = "connect"     // TCP connect refused or unreachable
	ClassTLS        ErrorClass = "tls"         // handshake or certificate failure
	ClassTimeout    ErrorClass = "timeout"     // the check ran out of time
	ClassHTTP       ErrorClass = "http"        // protocol error talking HTTP
	ClassStatus     ErrorClass = "status"      // unexpected HTTP status code
	ClassAssertion  ErrorClass = "assertion"   // body, header, latency or answer assertion failed
	ClassBlocked    ErrorClass = "blocked"     // the SSRF guard refused the address
	ClassAuth       ErrorClass = "auth"        // could not obtain credentials (e.g. OAuth2 token)
	ClassProtocol   ErrorClass = "protocol"    // TCP expect / DNS answer / garbage reply
	ClassInternal   ErrorClass = "internal"    // the check panicked or was misconfigured
	ClassCanceled   ErrorClass = "canceled"    // shutdown cancelled the check
	ClassCertError  ErrorClass = "certificate" // certificate invalid, mismatched or expiring too soon
	ClassNoPing     ErrorClass = "no_ping"     // a push target's ping did not arrive within period + grace
	ClassJobFailed  ErrorClass = "job_failed"  // a push target's job reported failure (/fail or a non-zero exit code)
	ClassLoss       ErrorClass = "loss"        // ICMP: more packets lost than max_loss_percent
	ClassNotServing ErrorClass = "not_serving" // gRPC health: the service answered other than SERVING
)

// FailureClasses are the classes a failed check can have, for series
// that export each at 0 before it first happens.
var FailureClasses = [...]ErrorClass{ClassDNS, ClassConnect, ClassTLS, ClassTimeout, ClassHTTP, ClassStatus,
	ClassAssertion, ClassBlocked, ClassAuth, ClassProtocol, ClassInternal, ClassCanceled, ClassCertError,
	ClassNoPing, ClassJobFailed, ClassLoss, ClassNotServing}

// Phases are the per-phase timings of one check. A phase that did not happen
// is zero.
type Phases struct {
	DNS      time.Duration `json:"dns"`
	Connect  time.Duration `json:"connect"`
	TLS      time.Duration `json:"tls"`
	TTFB     time.Duration `json:"ttfb"`     // request written → first response byte
	Transfer time.Duration `json:"transfer"` // first byte → body read
}

// Result is the outcome of one check of one target from one location. It is
// a value: it travels to the store, the metrics and the alert engine as is.
type Result struct {
	TargetID string    `json:"target_id"`
	Target   string    `json:"target"` // display name
	Kind     string    `json:"kind"`
	Location string    `json:"location"`
	Start    time.Time `json:"start"`
	// Scheduled is the slot the check was planned for (set by the
	// scheduler). With TargetID and Location it names the check: a result
	// sent twice (a probe agent's resent batch) is recognised by it.
	Scheduled  time.Time     `json:"scheduled,omitzero"`
	Duration   time.Duration `json:"duration"` // total, from start to verdict
	Phases     Phases        `json:"phases"`
	Success    bool          `json:"success"`
	ErrorClass ErrorClass    `json:"error_class,omitempty"`
	Error      string        `json:"error,omitempty"` // short, never holds a credential
	StatusCode int           `json:"status_code,omitempty"`
	// TLSExpiry is the earliest NotAfter of the certificates the peer sent;
	// zero when there was no TLS.
	TLSExpiry time.Time `json:"tls_expiry,omitempty"`
	BodyBytes int64     `json:"body_bytes,omitempty"`
	// RemoteAddr is the IP:port the check reached, useful to see which
	// address a name resolved to.
	RemoteAddr string `json:"remote_addr,omitempty"`
	// ICMP holds the packet counts and round-trip times of an icmp check.
	ICMP *ICMPStats `json:"icmp,omitempty"`
	// GRPC holds what a grpc check's health RPC answered.
	GRPC *GRPCStats `json:"grpc,omitempty"`

	// What blackbox_exporter also exports of an http check (see package
	// metrics), taken from the final response.
	HTTPVersion   string `json:"http_version,omitempty"`   // its protocol, e.g. "HTTP/1.1"
	Redirects     int    `json:"redirects,omitempty"`      // redirects followed to reach it
	ContentLength int64  `json:"content_length,omitempty"` // its Content-Length; -1 unknown (compressed or chunked)
	// TLSVersion names the TLS version of the final connection ("TLS 1.3");
	// empty when it was plain TCP.
	TLSVersion string `json:"tls_version,omitempty"`
	// LastChainExpiry is when the last of the verified certificate chains
	// expires (each chain expiring with its first certificate); zero when
	// no chain was verified (plain HTTP, insecure_skip_verify).
	LastChainExpiry time.Time `json:"last_chain_expiry,omitzero"`
	// FailedDueToRegex says the check failed on a header regex or a body
	// keyword or regex assertion.
	FailedDueToRegex bool `json:"failed_due_to_regex,omitempty"`

	// Evidence is what the target said, when its capture mode keeps it
	// for this check; stores keep it apart from the sample.
	Evidence *Evidence `json:"evidence,omitempty"`
}

// GRPCStats are what a grpc health check got back.
type GRPCStats struct {
	// Code is the RPC's gRPC status code (0 OK, 14 Unavailable, ...).
	Code int `json:"code"`
	// ServingStatus is the health service's answer (SERVING, NOT_SERVING,
	// UNKNOWN, SERVICE_UNKNOWN); empty when the RPC failed.
	ServingStatus string `json:"serving_status,omitempty"`
}

// ICMPStats are what an icmp check measured. The RTTs are over the replies
// received; all zero when none came back.
type ICMPStats struct {
	Sent     int `json:"sent"`
	Received int `json:"received"`
	// LossPercent is the share of packets without a reply, 0-100.
	LossPercent float64       `json:"loss_percent"`
	RTTMin      time.Duration `json:"rtt_min,omitempty"`
	RTTAvg      time.Duration `json:"rtt_avg,omitempty"`
	RTTMax      time.Duration `json:"rtt_max,omitempty"`
}

// Fail marks r failed with class and message and returns it, so a probe can
// end with `return r.Fail(ClassConnect, err.Error())`.
func (r Result) Fail(class ErrorClass, msg string) Result {
	r.Success = false
	r.ErrorClass = class
	r.Error = truncate(msg, 512)
	return r
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
