package prober

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/secret"
)

// Defaults for a target's schedule.
const (
	DefaultInterval = 60 * time.Second
	DefaultTimeout  = 10 * time.Second
	MinInterval     = time.Second
)

// Upper bounds of a target's settings: a longer interval would never run
// in practice, and each of the others lets one target cost the prober
// unbounded time, memory or requests.
const (
	MaxInterval  = 24 * time.Hour
	MaxTimeout   = 60 * time.Second
	MaxRedirects = 20
	MaxBodyBytes = 10 << 20
	MaxLocations = 32
)

// Target is one thing to check: what, how often, and what counts as success.
// Exactly the block named by Kind (http, tcp, dns, tls, push, icmp or grpc)
// is set.
type Target struct {
	// ID is the stable identity used by the store and the metrics; it
	// defaults to Name. Renaming a target keeps its history only if ID stays.
	ID       string            `yaml:"id,omitempty" json:"id"`
	Name     string            `yaml:"name" json:"name"`
	Kind     string            `yaml:"kind" json:"kind"`
	Interval time.Duration     `yaml:"interval,omitempty" json:"interval"`
	Timeout  time.Duration     `yaml:"timeout,omitempty" json:"timeout"`
	Labels   map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	Paused   bool              `yaml:"paused,omitempty" json:"paused,omitempty"`
	// Locations are where the target is checked from (probe agents'
	// locations, or the server's own, "local" by default); empty means
	// every location.
	Locations []string `yaml:"locations,omitempty" json:"locations,omitempty"`
	// Capture says which checks keep their evidence (response headers and
	// the start of the body or reply): failures (default), transitions,
	// always or never. CaptureBytes caps the excerpt (default 4 KiB, at
	// most 64 KiB). See evidence.go.
	Capture      string `yaml:"capture,omitempty" json:"capture,omitempty"`
	CaptureBytes int    `yaml:"capture_bytes,omitempty" json:"capture_bytes,omitempty"`

	HTTP *HTTPSpec `yaml:"http,omitempty" json:"http,omitempty"`
	TCP  *TCPSpec  `yaml:"tcp,omitempty" json:"tcp,omitempty"`
	DNS  *DNSSpec  `yaml:"dns,omitempty" json:"dns,omitempty"`
	TLS  *TLSSpec  `yaml:"tls,omitempty" json:"tls,omitempty"`
	Push *PushSpec `yaml:"push,omitempty" json:"push,omitempty"`
	ICMP *ICMPSpec `yaml:"icmp,omitempty" json:"icmp,omitempty"`
	GRPC *GRPCSpec `yaml:"grpc,omitempty" json:"grpc,omitempty"`
}

// HTTPSpec configures an http check.
type HTTPSpec struct {
	URL    string `yaml:"url" json:"url"`
	Method string `yaml:"method,omitempty" json:"method,omitempty"` // default GET
	// Headers are sent with every request. A value may be env:NAME or
	// file:/path (config file only), resolved by Validate.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// SecretHeaders names headers whose values are credentials though
	// secret.SensitiveHeader does not recognise their names: sealed at rest
	// and redacted like Authorization.
	SecretHeaders []string `yaml:"secret_headers,omitempty" json:"secret_headers,omitempty"`
	Body          string   `yaml:"body,omitempty" json:"body,omitempty"`
	// FollowRedirects defaults to true; MaxRedirects to 10 (at most 20).
	FollowRedirects *bool `yaml:"follow_redirects,omitempty" json:"follow_redirects,omitempty"`
	MaxRedirects    int   `yaml:"max_redirects,omitempty" json:"max_redirects,omitempty"`
	// ExpectStatus lists accepted codes and ranges ("200", "2xx", "200-299").
	// Empty means 200-399.
	ExpectStatus    []string      `yaml:"expect_status,omitempty" json:"expect_status,omitempty"`
	MaxLatency      time.Duration `yaml:"max_latency,omitempty" json:"max_latency,omitempty"`
	BodyContains    []string      `yaml:"body_contains,omitempty" json:"body_contains,omitempty"`
	BodyNotContains []string      `yaml:"body_not_contains,omitempty" json:"body_not_contains,omitempty"`
	BodyRegex       []string      `yaml:"body_regex,omitempty" json:"body_regex,omitempty"`
	// JSONPath maps a dotted path (`data.items.0.status`) to the value it
	// must have, compared as the JSON text of that value without quotes for
	// strings.
	JSONPath map[string]string `yaml:"json_path,omitempty" json:"json_path,omitempty"`
	// JSONPathAssertions are RFC 9535 JSONPath assertions on a JSON body.
	JSONPathAssertions []JSONPathAssertion `yaml:"jsonpath,omitempty" json:"jsonpath,omitempty"`
	// BodySize bounds the body's size in bytes.
	BodySize *BodySize `yaml:"body_size,omitempty" json:"body_size,omitempty"`
	// HeaderMatch maps a response header name to a regex one of its values
	// must match (a missing header fails).
	HeaderMatch map[string]string `yaml:"header_match,omitempty" json:"header_match,omitempty"`
	// MaxBodyBytes caps how much of the body is read (default 1 MiB, at
	// most 10 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes,omitempty" json:"max_body_bytes,omitempty"`
	// IPProtocol is "", "ip4" or "ip6": which address family to dial.
	IPProtocol string    `yaml:"ip_protocol,omitempty" json:"ip_protocol,omitempty"`
	TLS        TLSClient `yaml:"tls_config,omitempty" json:"tls_config,omitempty"`
	Auth       *Auth     `yaml:"auth,omitempty" json:"auth,omitempty"`

	compiledRegex []*regexp.Regexp
	compiledHdr   map[string]*regexp.Regexp
	statusRanges  []statusRange
	headerRefs    map[string]secret.Secret // resolved env: and file: header values
}

// SecretHeader reports whether the value of header name is a credential.
func (h *HTTPSpec) SecretHeader(name string) bool {
	return secret.SensitiveHeader(name, h.SecretHeaders)
}

// CheckedFrom reports whether t is checked from location: it lists it, or
// lists none (every location).
func (t *Target) CheckedFrom(location string) bool {
	return len(t.Locations) == 0 || slices.Contains(t.Locations, location)
}

// ValidLocation reports whether s is a location name: 1-64 letters,
// digits, '-', '_' or '.'.
func ValidLocation(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ResolvedHeaders returns the headers as they are sent: env: and file:
// references replaced by their values. For handing a target to a probe
// agent, which cannot read the server's environment or files.
func (h *HTTPSpec) ResolvedHeaders() map[string]string {
	if len(h.Headers) == 0 {
		return h.Headers
	}
	out := make(map[string]string, len(h.Headers))
	for name, v := range h.Headers {
		out[name] = h.headerValue(name, v)
	}
	return out
}

// IsSecretRef reports whether v is an env: or file: reference.
func IsSecretRef(v string) bool {
	return strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:")
}

// headerValue is what is sent for header name given as v: the resolved
// value of a reference, else v.
func (h *HTTPSpec) headerValue(name, v string) string {
	if s, ok := h.headerRefs[name]; ok {
		return s.Reveal()
	}
	return v
}

// TLSClient is how a check talks TLS to its target.
type TLSClient struct {
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
	ServerName         string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	CAFile             string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// CertFile and KeyFile are an mTLS client certificate.
	CertFile string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
}

// Auth is how a check authenticates to its target. Exactly one scheme is set
// by Type; custom headers go in HTTPSpec.Headers.
type Auth struct {
	// Type is basic, digest, bearer, api_key or oauth2.
	Type     string        `yaml:"type" json:"type"`
	Username string        `yaml:"username,omitempty" json:"username,omitempty"`
	Password secret.Secret `yaml:"password,omitempty" json:"password,omitempty"`
	Token    secret.Secret `yaml:"token,omitempty" json:"token,omitempty"`
	// API key: sent in header Header, or in query parameter Query.
	Key    secret.Secret `yaml:"key,omitempty" json:"key,omitempty"`
	Header string        `yaml:"header,omitempty" json:"header,omitempty"`
	Query  string        `yaml:"query,omitempty" json:"query,omitempty"`
	// OAuth2 client credentials.
	TokenURL     string        `yaml:"token_url,omitempty" json:"token_url,omitempty"`
	ClientID     string        `yaml:"client_id,omitempty" json:"client_id,omitempty"`
	ClientSecret secret.Secret `yaml:"client_secret,omitempty" json:"client_secret,omitempty"`
	Scopes       []string      `yaml:"scopes,omitempty" json:"scopes,omitempty"`
}

// TCPSpec configures a tcp check: connect, optionally send and expect.
type TCPSpec struct {
	Address string `yaml:"address" json:"address"` // host:port
	Send    string `yaml:"send,omitempty" json:"send,omitempty"`
	// Expect is a regex the first reply must match.
	Expect     string    `yaml:"expect,omitempty" json:"expect,omitempty"`
	TLS        bool      `yaml:"tls,omitempty" json:"tls,omitempty"`
	TLSConfig  TLSClient `yaml:"tls_config,omitempty" json:"tls_config,omitempty"`
	IPProtocol string    `yaml:"ip_protocol,omitempty" json:"ip_protocol,omitempty"`

	compiledExpect *regexp.Regexp
}

// DNSSpec configures a dns check.
type DNSSpec struct {
	Name string `yaml:"name" json:"name"`           // the name to query
	Type string `yaml:"type,omitempty" json:"type"` // A, AAAA, CNAME, MX, TXT, NS; default A
	// Server is the resolver as host:port; empty uses the system resolver.
	Server string `yaml:"server,omitempty" json:"server,omitempty"`
	// Expect lists answers that must all be present (e.g. "192.0.2.1").
	Expect []string `yaml:"expect,omitempty" json:"expect,omitempty"`
	// Transport is udp (default) or tcp.
	Transport string `yaml:"transport,omitempty" json:"transport,omitempty"`
}

// TLSSpec configures a tls check of a certificate.
type TLSSpec struct {
	Address    string `yaml:"address" json:"address"` // host:port
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	// MinDaysLeft fails the check when the leaf certificate expires sooner
	// (default 14; 0 keeps the default, negative disables).
	MinDaysLeft int    `yaml:"min_days_left,omitempty" json:"min_days_left,omitempty"`
	CAFile      string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
}

// Normalize applies defaults and compiles what the checks need, in place.
// It never fails; Validate reports what is wrong.
func (t *Target) Normalize() {
	if t.ID == "" {
		t.ID = t.Name
	}
	if t.Interval == 0 {
		t.Interval = DefaultInterval
	}
	if t.Timeout == 0 {
		t.Timeout = min(DefaultTimeout, t.Interval)
	}
	if h := t.HTTP; h != nil {
		if h.Method == "" {
			h.Method = "GET"
		}
		h.Method = strings.ToUpper(h.Method)
		if h.MaxRedirects == 0 {
			h.MaxRedirects = 10
		}
		if h.MaxBodyBytes == 0 {
			h.MaxBodyBytes = 1 << 20
		}
	}
	if d := t.DNS; d != nil {
		if d.Type == "" {
			d.Type = "A"
		}
		d.Type = strings.ToUpper(d.Type)
		if d.Transport == "" {
			d.Transport = "udp"
		}
	}
	if s := t.TLS; s != nil && s.MinDaysLeft == 0 {
		s.MinDaysLeft = 14
	}
	t.normalizeCapture()
	t.Push.normalize()
	t.ICMP.normalize()
	t.GRPC.normalize()
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// Validate returns every problem with t, each with its path under prefix
// (e.g. "targets[3]"). It compiles regexes, so call it before checking.
func (t *Target) Validate(prefix string) []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: prefix + "." + path, Msg: fmt.Sprintf(format, args...)})
	}
	if t.Name == "" {
		add("name", "is required")
	}
	errs = append(errs, CheckText(prefix+".name", t.Name)...)
	errs = append(errs, CheckLabels(prefix+".labels", t.Labels)...)
	if !idPattern.MatchString(t.ID) {
		add("id", "must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit (got %q)", t.ID)
	}
	if t.Interval < MinInterval || t.Interval > MaxInterval {
		add("interval", "must be between %s and %s (got %s)", MinInterval, MaxInterval, t.Interval)
	}
	switch {
	case t.Timeout <= 0:
		add("timeout", "must be positive")
	case t.Timeout > MaxTimeout:
		add("timeout", "must be at most %s (got %s)", MaxTimeout, t.Timeout)
	case t.Timeout > t.Interval:
		add("timeout", "must not be longer than the interval (%s)", t.Interval)
	}
	errs = append(errs, t.validateCapture(prefix)...)
	if len(t.Locations) > MaxLocations {
		add("locations", "must list at most %d locations (got %d)", MaxLocations, len(t.Locations))
	}
	for i, l := range t.Locations {
		if !ValidLocation(l) {
			add(fmt.Sprintf("locations[%d]", i), "must be 1-64 letters, digits, '-', '_' or '.' (got %q)", l)
		} else if slices.Index(t.Locations, l) < i {
			add(fmt.Sprintf("locations[%d]", i), "repeats location %q", l)
		}
	}
	blocks := map[string]bool{"http": t.HTTP != nil, "tcp": t.TCP != nil, "dns": t.DNS != nil, "tls": t.TLS != nil,
		"push": t.Push != nil, "icmp": t.ICMP != nil, "grpc": t.GRPC != nil}
	if _, ok := kinds[t.Kind]; !ok {
		add("kind", "unknown kind %q (want one of %s)", t.Kind, strings.Join(KindNames(), ", "))
	} else if !blocks[t.Kind] {
		add(t.Kind, "is required for kind %s", t.Kind)
	}
	for name, set := range blocks {
		if set && name != t.Kind {
			add(name, "is set but kind is %q", t.Kind)
		}
	}
	if t.HTTP != nil && t.Kind == "http" {
		errs = append(errs, t.HTTP.validate(prefix+".http")...)
	}
	if t.TCP != nil && t.Kind == "tcp" {
		errs = append(errs, t.TCP.validate(prefix+".tcp")...)
	}
	if t.DNS != nil && t.Kind == "dns" {
		errs = append(errs, t.DNS.validate(prefix+".dns")...)
	}
	if t.TLS != nil && t.Kind == "tls" {
		if err := validHostPort(t.TLS.Address); err != "" {
			errs = append(errs, invalid.Field{Path: prefix + ".tls.address", Msg: err})
		}
	}
	if t.Push != nil && t.Kind == "push" {
		errs = append(errs, t.Push.validate(prefix+".push")...)
	}
	if t.ICMP != nil && t.Kind == "icmp" {
		errs = append(errs, t.ICMP.validate(prefix+".icmp", t.Timeout)...)
	}
	if t.GRPC != nil && t.Kind == "grpc" {
		errs = append(errs, t.GRPC.validate(prefix+".grpc")...)
	}
	return errs
}

func (h *HTTPSpec) validate(p string) []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: p + "." + path, Msg: fmt.Sprintf(format, args...)})
	}
	u, err := url.Parse(h.URL)
	switch {
	case h.URL == "":
		add("url", "is required")
	case err != nil:
		add("url", "is not a URL: %v", errors.Unwrap(err)) // the *url.Error would quote the URL and its password
	case u.Scheme != "http" && u.Scheme != "https":
		add("url", "scheme must be http or https (got %q)", u.Scheme)
	case u.Host == "":
		add("url", "has no host")
	}
	if h.MaxRedirects < 0 || h.MaxRedirects > MaxRedirects {
		add("max_redirects", "must be between 0 and %d (got %d)", MaxRedirects, h.MaxRedirects)
	}
	if h.MaxBodyBytes < 0 || h.MaxBodyBytes > MaxBodyBytes {
		add("max_body_bytes", "must be between 0 and %d (10 MiB) (got %d)", MaxBodyBytes, h.MaxBodyBytes)
	}
	if h.MaxLatency < 0 {
		add("max_latency", "must not be negative")
	}
	h.statusRanges = nil
	for i, s := range h.ExpectStatus {
		r, err := parseStatusRange(s)
		if err != nil {
			add(fmt.Sprintf("expect_status[%d]", i), "%v", err)
			continue
		}
		h.statusRanges = append(h.statusRanges, r)
	}
	h.compiledRegex = nil
	for i, s := range h.BodyRegex {
		re, err := regexp.Compile(s)
		if err != nil {
			add(fmt.Sprintf("body_regex[%d]", i), "invalid regex: %v", err)
			continue
		}
		h.compiledRegex = append(h.compiledRegex, re)
	}
	h.compiledHdr = make(map[string]*regexp.Regexp, len(h.HeaderMatch))
	for name, s := range h.HeaderMatch {
		re, err := regexp.Compile(s)
		if err != nil {
			add("header_match."+name, "invalid regex: %v", err)
			continue
		}
		h.compiledHdr[name] = re
	}
	if err := validIPProtocol(h.IPProtocol); err != "" {
		add("ip_protocol", "%s", err)
	}
	errs = append(errs, h.validateAssertions(p)...)
	if (h.TLS.CertFile == "") != (h.TLS.KeyFile == "") {
		add("tls_config", "cert_file and key_file go together")
	}
	if a := h.Auth; a != nil {
		errs = append(errs, a.validate(p+".auth")...)
	}
	for i, name := range h.SecretHeaders {
		named := false
		for k := range h.Headers {
			named = named || strings.EqualFold(k, name)
		}
		if !named {
			add(fmt.Sprintf("secret_headers[%d]", i), "names no header in headers (got %q)", name)
		}
	}
	return errs
}

// ResolveRefs reads the env: and file: references among the HTTP header
// values (the auth fields resolve while the YAML is decoded). Only the
// config file may do this: API targets refuse references, since they would
// read the server's environment and files.
func (t *Target) ResolveRefs(prefix string) []invalid.Field {
	if t.HTTP == nil {
		return nil
	}
	h := t.HTTP
	var errs []invalid.Field
	h.headerRefs = nil
	for _, name := range slices.Sorted(maps.Keys(h.Headers)) {
		v := h.Headers[name]
		if !IsSecretRef(v) {
			continue
		}
		s, err := secret.Parse(v)
		if err != nil {
			errs = append(errs, invalid.Field{Path: prefix + ".http.headers." + name, Msg: err.Error()})
			continue
		}
		if h.headerRefs == nil {
			h.headerRefs = map[string]secret.Secret{}
		}
		h.headerRefs[name] = s
	}
	return errs
}

// SecretField is one credential of an Auth, by its field name.
type SecretField struct {
	Name  string
	Value *secret.Secret
}

// SecretFields are a's credentials (password, token, key, client_secret):
// the one list that sealing, redaction and comparison go through.
func (a *Auth) SecretFields() []SecretField {
	return []SecretField{{"password", &a.Password}, {"token", &a.Token}, {"key", &a.Key}, {"client_secret", &a.ClientSecret}}
}

func (a *Auth) validate(p string) []invalid.Field {
	var errs []invalid.Field
	need := func(name string, empty bool) {
		if empty {
			errs = append(errs, invalid.Field{Path: p + "." + name, Msg: "is required for auth type " + a.Type})
		}
	}
	switch a.Type {
	case "basic", "digest":
		need("username", a.Username == "")
	case "bearer":
		need("token", a.Token.Reveal() == "")
	case "api_key":
		need("key", a.Key.Reveal() == "")
		if (a.Header == "") == (a.Query == "") {
			errs = append(errs, invalid.Field{Path: p, Msg: "api_key needs exactly one of header or query"})
		}
	case "oauth2":
		need("token_url", a.TokenURL == "")
		need("client_id", a.ClientID == "")
		need("client_secret", a.ClientSecret.Reveal() == "")
		if a.TokenURL != "" {
			if u, err := url.Parse(a.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				errs = append(errs, invalid.Field{Path: p + ".token_url", Msg: "must be an http or https URL"})
			}
		}
	default:
		errs = append(errs, invalid.Field{Path: p + ".type", Msg: fmt.Sprintf("unknown auth type %q (want basic, digest, bearer, api_key or oauth2)", a.Type)})
	}
	return errs
}

func (s *TCPSpec) validate(p string) []invalid.Field {
	var errs []invalid.Field
	if err := validHostPort(s.Address); err != "" {
		errs = append(errs, invalid.Field{Path: p + ".address", Msg: err})
	}
	s.compiledExpect = nil
	if s.Expect != "" {
		re, err := regexp.Compile(s.Expect)
		if err != nil {
			errs = append(errs, invalid.Field{Path: p + ".expect", Msg: "invalid regex: " + err.Error()})
		}
		s.compiledExpect = re
	}
	if err := validIPProtocol(s.IPProtocol); err != "" {
		errs = append(errs, invalid.Field{Path: p + ".ip_protocol", Msg: err})
	}
	return errs
}

var dnsTypes = []string{"A", "AAAA", "CNAME", "MX", "TXT", "NS"}

func (s *DNSSpec) validate(p string) []invalid.Field {
	var errs []invalid.Field
	if s.Name == "" {
		errs = append(errs, invalid.Field{Path: p + ".name", Msg: "is required"})
	}
	ok := false
	for _, t := range dnsTypes {
		ok = ok || t == s.Type
	}
	if !ok {
		errs = append(errs, invalid.Field{Path: p + ".type", Msg: fmt.Sprintf("unsupported record type %q (want one of %s)", s.Type, strings.Join(dnsTypes, ", "))})
	}
	if s.Server != "" {
		if err := validHostPort(s.Server); err != "" {
			errs = append(errs, invalid.Field{Path: p + ".server", Msg: err})
		}
	}
	if s.Transport != "udp" && s.Transport != "tcp" {
		errs = append(errs, invalid.Field{Path: p + ".transport", Msg: "must be udp or tcp"})
	}
	return errs
}

func validHostPort(addr string) string {
	if addr == "" {
		return "is required"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("must be host:port (%v)", err)
	}
	if host == "" {
		return "has no host"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("port %q must be 1-65535", port)
	}
	return ""
}

func validIPProtocol(s string) string {
	if s != "" && s != "ip4" && s != "ip6" {
		return fmt.Sprintf("must be ip4 or ip6 (got %q)", s)
	}
	return ""
}

type statusRange struct{ lo, hi int }

func (r statusRange) contains(code int) bool { return code >= r.lo && code <= r.hi }

// parseStatusRange reads "200", "2xx" or "200-299".
func parseStatusRange(s string) (statusRange, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	bad := fmt.Errorf("%q is not a status code, class (2xx) or range (200-299)", s)
	if len(s) == 3 && strings.HasSuffix(s, "xx") && s[0] >= '1' && s[0] <= '5' {
		c := int(s[0]-'0') * 100
		return statusRange{c, c + 99}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 100 || a > 599 {
		return statusRange{}, bad
	}
	if !isRange {
		return statusRange{a, a}, nil
	}
	b, err := strconv.Atoi(hi)
	if err != nil || b < a || b > 599 {
		return statusRange{}, bad
	}
	return statusRange{a, b}, nil
}

// SameConfig reports, cheaply, that u is t or a shallow copy of it: equal
// top-level fields and labels, and the very same check block (by pointer).
// Blocks are not modified once a target is in use, so such a u has t's
// Fingerprint without computing it. False says nothing: u may still be
// equal in content.
// (TestSameConfigCoversEveryField keeps the list of fields whole.)
func (t *Target) SameConfig(u *Target) bool {
	return t.ID == u.ID && t.Name == u.Name && t.Kind == u.Kind && t.Interval == u.Interval &&
		t.Timeout == u.Timeout && t.Paused == u.Paused && sameLabels(t.Labels, u.Labels) &&
		slices.Equal(t.Locations, u.Locations) && t.Capture == u.Capture && t.CaptureBytes == u.CaptureBytes &&
		t.HTTP == u.HTTP && t.TCP == u.TCP && t.DNS == u.DNS && t.TLS == u.TLS &&
		t.Push == u.Push && t.ICMP == u.ICMP && t.GRPC == u.GRPC
}

// sameLabels is maps.Equal with a shortcut for one map seen twice.
func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() {
		return true
	}
	return maps.Equal(a, b)
}

// Fingerprint is a digest of everything that defines the check, so the
// scheduler can tell a changed target from an unchanged one. Secrets enter
// as their reference and value through a hash, never in clear.
func (t *Target) Fingerprint() string {
	b, _ := json.Marshal(t) // secrets marshal as <secret>
	h := sha256.New()
	h.Write(b)
	if a := t.authOrNil(); a != nil {
		for _, f := range a.SecretFields() {
			h.Write([]byte{0})
			h.Write([]byte(f.Value.Reveal()))
		}
	}
	if t.Push != nil {
		h.Write([]byte{0})
		h.Write([]byte(t.Push.Token.Reveal()))
	}
	if t.HTTP != nil {
		for _, name := range slices.Sorted(maps.Keys(t.HTTP.headerRefs)) {
			h.Write([]byte{0})
			h.Write([]byte(name + "\x00" + t.HTTP.headerRefs[name].Reveal()))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (t *Target) authOrNil() *Auth {
	if t.HTTP != nil {
		return t.HTTP.Auth
	}
	return nil
}
