package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"unicode/utf8"
)

// What chat and paging notifiers share: reading a recipient's destination,
// posting JSON, the key a provider deduplicates an incident's alert on.

// DecodeEndpoint reads the recipient's destination on channel into dst.
// The error never quotes the endpoint: it holds credentials.
func DecodeEndpoint(m Message, channel string, dst any) error {
	if m.To.Channel != channel || m.To.Endpoint == "" {
		return fmt.Errorf("%s: recipient has no %s destination", channel, channel)
	}
	if err := json.Unmarshal([]byte(m.To.Endpoint), dst); err != nil {
		return fmt.Errorf("%s: the recipient's destination does not decode", channel)
	}
	return nil
}

// CheckHTTPURL reports whether s is an absolute http(s) URL. The error does
// not repeat s: it may hold a token.
func CheckHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an absolute http(s) URL")
	}
	return nil
}

// CheckURLField checks a destination's required URL field: "name:
// required" when s is empty, else CheckHTTPURL's error, prefixed "name: ".
func CheckURLField(name, s string) error {
	if s == "" {
		return fmt.Errorf("%s: required", name)
	}
	if err := CheckHTTPURL(s); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// CheckSecretField checks a destination's required credential field
// against the provider's format: "name: required" or "name: " + hint. The
// error never quotes s.
func CheckSecretField(name, s string, format *regexp.Regexp, hint string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s: required", name)
	case !format.MatchString(s):
		return fmt.Errorf("%s: %s", name, hint)
	}
	return nil
}

// CheckRegion checks a destination's region field: empty (us), "us" or
// "eu".
func CheckRegion(region string) error {
	if region != "" && region != "us" && region != "eu" {
		return fmt.Errorf("region: %q is not us or eu", region)
	}
	return nil
}

// RegionURL is the provider's base URL for region: override when set (a
// stand-in), eu for "eu", else us.
func RegionURL(override, region, us, eu string) string {
	switch {
	case override != "":
		return override
	case region == "eu":
		return eu
	}
	return us
}

// NoRedirects returns a copy of client (DefaultClient when nil) that does
// not follow redirects: a credential in a header or body must not travel
// to another host, so a 3xx is a permanent error (RetryableStatus).
func NoRedirects(client *http.Client) *http.Client {
	if client == nil {
		client = DefaultClient()
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// PostJSON POSTs body as JSON to rawURL with header added and classifies
// the answer with Do. Errors name provider and never rawURL's path or
// query (RedactURL).
func PostJSON(ctx context.Context, client *http.Client, rawURL, provider string, body any, header http.Header, detail func([]byte) string) ([]byte, bool, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", provider, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(b))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", provider, RedactURL(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "upwatch")
	for k, vs := range header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	return Do(client, req, provider, detail)
}

// Post is one JSON request a JSONNotifier makes: Body POSTed to URL with
// Header added; Detail as for Do.
type Post struct {
	URL    string
	Header http.Header
	Body   any
	Detail func([]byte) string
	// Provider names the provider in errors; the channel when empty.
	Provider string
	// Answer, if set, decides the outcome from the answer's body and
	// PostJSON's verdict (a provider that says more in its body than in
	// its status); else the verdict stands.
	Answer func(body []byte, retry bool, err error) (bool, error)
}

// JSONNotifier is a Notifier that makes one PostJSON per message, built by
// a provider from the message and the recipient's destination D on its
// channel; the channel names the provider in errors.
type JSONNotifier[D any] struct {
	client  *http.Client
	channel string
	build   func(Message, D) Post
}

var _ Notifier = (*JSONNotifier[struct{}])(nil)

// NewJSONNotifier returns a notifier for channel; client may be nil
// (DefaultClient), and redirects are not followed (NoRedirects).
func NewJSONNotifier[D any](client *http.Client, channel string, build func(Message, D) Post) *JSONNotifier[D] {
	return &JSONNotifier[D]{client: NoRedirects(client), channel: channel, build: build}
}

// Notify decodes m's destination and posts what build makes of it.
func (n *JSONNotifier[D]) Notify(ctx context.Context, m Message) (bool, error) {
	var d D
	if err := DecodeEndpoint(m, n.channel, &d); err != nil {
		return false, err
	}
	p := n.build(m, d)
	provider := p.Provider
	if provider == "" {
		provider = n.channel
	}
	body, retry, err := PostJSON(ctx, n.client, p.URL, provider, p.Body, p.Header, p.Detail)
	if p.Answer != nil {
		return p.Answer(body, retry, err)
	}
	return retry, err
}

// JSONDetail returns a Detail for Do that quotes the string field key of a
// JSON error answer, or nothing.
func JSONDetail(key string) func(body []byte) string {
	return func(body []byte) string {
		var r map[string]any
		if json.Unmarshal(body, &r) != nil {
			return ""
		}
		if s, ok := r[key].(string); ok && s != "" {
			return Snippet([]byte(s))
		}
		return ""
	}
}

// AlertKey is what a paging provider deduplicates on (PagerDuty's
// dedup_key, Opsgenie's alias, Alertmanager's fingerprint): the same for
// every message of one incident, DOWN, reminders, escalation and UP, so UP
// resolves the alert DOWN opened. Messages outside an incident (degraded,
// tls_expiry) get one per target, kind and start.
func AlertKey(m Message) string {
	if m.IncidentID != "" {
		return "upwatch-" + m.IncidentID
	}
	sum := sha256.Sum256([]byte(m.TargetID + "\x00" + m.Kind + "\x00" + strconv.FormatInt(m.StartedAt.Unix(), 10)))
	return "upwatch-" + m.Kind + "-" + hex.EncodeToString(sum[:8])
}

// Resolves reports whether m ends the alert AlertKey names (an UP).
func Resolves(m Message) bool { return m.Kind == KindUp }

// Truncate cuts s to at most n runes, the last one "…" when cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
