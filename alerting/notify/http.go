package notify

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/upwatch/upwatch/internal/ssrf"
	"github.com/upwatch/upwatch/secret"
)

// MaxResponseBody is how much of a provider's answer is read.
const MaxResponseBody = 64 << 10

// DefaultTimeout bounds one attempt when the caller's client has none.
const DefaultTimeout = 15 * time.Second

// DefaultClient returns the client a notifier uses when none is injected.
func DefaultClient() *http.Client { return &http.Client{Timeout: DefaultTimeout} }

// HTTPError is a provider's non-2xx answer.
type HTTPError struct {
	Provider   string
	StatusCode int
	Detail     string // the provider's own explanation, sanitised and shortened
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d", e.Provider, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		s += " " + t
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Do sends req with client and classifies the answer with the shared
// policy: a 2xx returns its body (at most MaxResponseBody bytes); any other
// status returns an *HTTPError, wrapped in a *RetryAfterError when the
// provider sent a usable Retry-After, and retry from RetryableStatus. A
// transport error or timeout is retryable, unless the SSRF guard refused
// the address (ssrf.ErrBlocked: permanent), and the URL in it is redacted
// to scheme and host. detail, if not nil, turns an error body into the
// provider's explanation; it must cope with garbage.
func Do(client *http.Client, req *http.Request, provider string, detail func(body []byte) string) (body []byte, retry bool, err error) {
	resp, err := client.Do(req)
	if err != nil {
		// An address the SSRF guard refuses stays refused: no retry.
		return nil, !errors.Is(err, ssrf.ErrBlocked), fmt.Errorf("%s: %w", provider, RedactURL(err))
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Sent: a body cut short after the status line does not undo that.
		return body, false, nil
	}
	if rerr != nil {
		// Status is known; what the body would have said is not.
		body = nil
	}
	d := ""
	if detail != nil {
		d = detail(body)
	}
	if d == "" {
		d = Snippet(body)
	}
	herr := &HTTPError{Provider: provider, StatusCode: resp.StatusCode, Detail: d}
	retry = RetryableStatus(resp.StatusCode)
	if retry {
		if after, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return body, true, &RetryAfterError{After: after, Err: herr}
		}
	}
	return body, retry, herr
}

// RedactURL strips the path, query and user info from the URL of a
// *url.Error (secret.RedactURL, URLWhole), so webhook tokens in paths and
// credentials never reach an error or a log. Other errors are returned as
// is.
func RedactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	c := *ue
	c.URL = secret.RedactURL(ue.URL, secret.URLWhole)
	return &c
}

// maxSnippet is how many runes of a provider's body an error quotes.
const maxSnippet = 200

// Snippet returns body as one short printable line for an error message:
// invalid UTF-8 and control characters become spaces or U+FFFD, runs of
// space collapse, and it is cut at 200 runes.
func Snippet(body []byte) string {
	var b strings.Builder
	n := 0
	space := false
	for len(body) > 0 && n < maxSnippet {
		r, size := utf8.DecodeRune(body)
		body = body[size:]
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
				n++
			}
			space = true
			continue
		}
		if !unicode.IsPrint(r) {
			r = utf8.RuneError
		}
		space = false
		b.WriteRune(r)
		n++
	}
	s := strings.TrimSpace(b.String())
	if len(body) > 0 {
		s += "…"
	}
	return s
}
