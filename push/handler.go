package push

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// Handler serves the ping endpoints, with no API key (the token is the
// credential), for GET, HEAD and POST:
//
//	/ping/{token}            success
//	/ping/{token}/start      the job started
//	/ping/{token}/fail       the job failed
//	/ping/{token}/{code}     the job exited with code (0 success, else failure)
//
// A body of at most MaxBody bytes is kept as the failure's text. Unknown
// tokens are 404, too many pings 429; nothing echoes or logs the token.
func (m *Monitor) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ping/{token}", func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, "") })
	mux.HandleFunc("/ping/{token}/{what}", func(w http.ResponseWriter, r *http.Request) { m.serve(w, r, r.PathValue("what")) })
	return mux
}

func (m *Monitor) serve(w http.ResponseWriter, r *http.Request, what string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p, ok := parseWhat(what)
	if !ok {
		http.Error(w, "not found: want /ping/{token}, /start, /fail or /{exit code 0-255}", http.StatusNotFound)
		return
	}
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body larger than "+strconv.Itoa(MaxBody)+" bytes", http.StatusRequestEntityTooLarge)
			return
		}
		if err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		p.Body = printable(body)
	}
	switch err := m.Ping(r.Context(), r.PathValue("token"), p); {
	case errors.Is(err, ErrUnknownToken):
		http.Error(w, "not found", http.StatusNotFound)
	case errors.Is(err, ErrRateLimited):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many pings", http.StatusTooManyRequests)
	case err != nil:
		http.Error(w, "ping not recorded", http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "OK\n")
	}
}

// parseWhat reads the path segment after the token.
func parseWhat(what string) (Ping, bool) {
	switch what {
	case "":
		return Ping{Kind: Success}, true
	case "start":
		return Ping{Kind: Start}, true
	case "fail":
		return Ping{Kind: Fail}, true
	}
	code, err := strconv.Atoi(what)
	if err != nil || code < 0 || code > 255 || strconv.Itoa(code) != what {
		return Ping{}, false
	}
	if code == 0 {
		return Ping{Kind: Success}, true
	}
	return Ping{Kind: Fail, ExitCode: code}, true
}

// printable keeps what a job sent fit for a message: valid UTF-8, control
// characters as spaces (they would forge log lines and break exports),
// trimmed.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
