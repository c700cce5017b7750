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
	// Evidence is what the target said, when its capture mode keeps it
	// for this check; stores keep it apart from the sample.
	Evidence *Evidence `json:"evidence,omitempty"`
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
