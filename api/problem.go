package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/upwatch/upwatch/internal/invalid"
)

// ProblemType is the base of every problem's "type" URI.
const ProblemType = "https://upwatch.dev/problems/"

// ProblemError is an RFC 9457 problem detail; handlers return it as an
// error and the server writes it as application/problem+json.
type ProblemError struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldIssue `json:"errors,omitempty"`

	// Quota problems (type .../quota) name the limit, its value, the
	// tenant's usage and what the request would make it.
	Limit      string `json:"limit,omitempty"`
	LimitValue any    `json:"limit_value,omitempty"`
	Usage      any    `json:"usage,omitempty"`
	Requested  any    `json:"requested,omitempty"`
}

// FieldIssue is one validation problem with the JSON path of the field.
type FieldIssue struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func (p *ProblemError) Error() string {
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

// Problem returns a problem error with the given status, title and detail.
func Problem(status int, title, detail string) error {
	if title == "" {
		title = http.StatusText(status)
	}
	return &ProblemError{
		Type:   ProblemType + strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "-"),
		Title:  title,
		Status: status,
		Detail: detail,
	}
}

// ValidationProblem is a 422 listing every field error with its path.
func ValidationProblem(errs []invalid.Field) error {
	p := Problem(http.StatusUnprocessableEntity, "Validation Failed",
		fmt.Sprintf("the request has %d invalid field(s)", len(errs))).(*ProblemError)
	p.Type = ProblemType + "validation"
	for _, e := range errs {
		p.Errors = append(p.Errors, FieldIssue{Path: e.Path, Message: e.Msg})
	}
	return p
}

// notFound is the 404 for an object of kind with id.
func notFound(kind, id string) error {
	return Problem(http.StatusNotFound, "Not Found", fmt.Sprintf("no %s %q", kind, id))
}

func writeProblem(w http.ResponseWriter, r *http.Request, p *ProblemError) {
	out := *p
	if out.Instance == "" {
		out.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(out.Status)
	_ = json.NewEncoder(w).Encode(out)
}

// MaxBodyBytes caps every request body.
const MaxBodyBytes = 1 << 20

// decodeJSON reads r's body into v: Content-Type must be JSON (415), the
// body at most MaxBodyBytes (413) nested at most MaxDepth deep (400), one
// JSON value (400) without unknown fields (400 naming the field).
func decodeJSON(r *http.Request, v any) error { return decodeJSONLimit(r, v, MaxBodyBytes) }

// decodeJSONLimit is decodeJSON with a body limit of its own, for the one
// route that takes larger bodies (agents' result batches).
func decodeJSONLimit(r *http.Request, v any, limit int64) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return Problem(http.StatusUnsupportedMediaType, "Unsupported Media Type", "the body must be application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		return jsonProblem(err, limit)
	}
	if !jsonDepthOK(body, MaxDepth) {
		return tooDeep()
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err, limit)
	}
	if dec.More() {
		return Problem(http.StatusBadRequest, "Bad Request", "the body must hold one JSON value")
	}
	// Drain the rest so a trailing oversized body is still refused.
	var rest json.RawMessage
	if err := dec.Decode(&rest); err != nil && err.Error() != "EOF" {
		return jsonProblem(err, limit)
	}
	return nil
}

func jsonProblem(err error, limit int64) error {
	var tooBig *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return Problem(http.StatusRequestEntityTooLarge, "Content Too Large", fmt.Sprintf("the body is larger than %d bytes", limit))
	case errors.As(err, &syntax):
		return Problem(http.StatusBadRequest, "Bad Request", fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(body)"
		}
		p := Problem(http.StatusBadRequest, "Bad Request", fmt.Sprintf("field %s must be %s", field, typ.Type)).(*ProblemError)
		p.Errors = []FieldIssue{{Path: field, Message: "must be " + typ.Type.String()}}
		return p
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p := Problem(http.StatusBadRequest, "Bad Request", fmt.Sprintf("unknown field %q", field)).(*ProblemError)
		p.Errors = []FieldIssue{{Path: field, Message: "unknown field"}}
		return p
	case err.Error() == "EOF":
		return Problem(http.StatusBadRequest, "Bad Request", "the body is empty")
	}
	return Problem(http.StatusBadRequest, "Bad Request", "the body could not be read as JSON")
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
