package prober

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"

	"github.com/theory/jsonpath"

	"github.com/upwatch/upwatch/internal/invalid"
)

// Bounds of the http assertions below.
const (
	MaxJSONPathAssertions = 32
	maxJSONPathLength     = 1024
	maxJSONPathNodes      = 10000
)

// JSONPathAssertion is one RFC 9535 JSONPath assertion on a JSON body.
// With neither Equals, Matches, Count nor Absent, the path must select at
// least one node. Equals and Matches apply to every selected node (and at
// least one must be selected), compared as the node's JSON text, strings
// without quotes (as json_path does).
type JSONPathAssertion struct {
	Path    string  `yaml:"path" json:"path"`
	Equals  *string `yaml:"equals,omitempty" json:"equals,omitempty"`
	Matches string  `yaml:"matches,omitempty" json:"matches,omitempty"`
	// Count is the exact number of nodes the path must select.
	Count *int `yaml:"count,omitempty" json:"count,omitempty"`
	// Absent requires that the path selects nothing.
	Absent bool `yaml:"absent,omitempty" json:"absent,omitempty"`

	compiled *jsonpath.Path
	re       *regexp.Regexp
}

// BodySize bounds the size of a response body, in bytes. Max must stay
// below the target's max_body_bytes, which bounds what is read.
type BodySize struct {
	Min int64 `yaml:"min,omitempty" json:"min,omitempty"`
	Max int64 `yaml:"max,omitempty" json:"max,omitempty"`
}

// validateAssertions checks and compiles the jsonpath and body_size
// assertions of h, under path p (the http block).
func (h *HTTPSpec) validateAssertions(p string) []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: p + "." + path, Msg: fmt.Sprintf(format, args...)})
	}
	if len(h.JSONPathAssertions) > MaxJSONPathAssertions {
		add("jsonpath", "at most %d assertions (got %d)", MaxJSONPathAssertions, len(h.JSONPathAssertions))
	}
	for i := range h.JSONPathAssertions {
		a := &h.JSONPathAssertions[i]
		at := fmt.Sprintf("jsonpath[%d]", i)
		a.compiled, a.re = nil, nil
		switch {
		case a.Path == "":
			add(at+".path", "is required")
		case len(a.Path) > maxJSONPathLength:
			add(at+".path", "must be at most %d bytes", maxJSONPathLength)
		default:
			jp, err := jsonpath.Parse(a.Path)
			if err != nil {
				add(at+".path", "invalid RFC 9535 JSONPath: %v", err)
			}
			a.compiled = jp
		}
		if a.Matches != "" {
			re, err := regexp.Compile(a.Matches)
			if err != nil {
				add(at+".matches", "invalid regex: %v", err)
			}
			a.re = re
		}
		if a.Count != nil && (*a.Count < 0 || *a.Count > maxJSONPathNodes) {
			add(at+".count", "must be between 0 and %d (got %d)", maxJSONPathNodes, *a.Count)
		}
		if a.Absent && (a.Equals != nil || a.Matches != "" || a.Count != nil) {
			add(at+".absent", "cannot go with equals, matches or count")
		}
	}
	if b := h.BodySize; b != nil {
		if b.Min < 0 {
			add("body_size.min", "must not be negative")
		}
		if b.Max < 0 || (b.Max > 0 && b.Max >= h.MaxBodyBytes) {
			add("body_size.max", "must be between 0 and max_body_bytes - 1 (%d), so a larger body can be seen (got %d)", h.MaxBodyBytes-1, b.Max)
		}
		if b.Max > 0 && b.Min > b.Max {
			add("body_size", "min %d is larger than max %d", b.Min, b.Max)
		}
	}
	return errs
}

// keepsBodyForAssertions reports whether the assertions here need the body.
func (h *HTTPSpec) keepsBodyForAssertions() bool { return len(h.JSONPathAssertions) > 0 }

// checkAssertions returns which body_size or jsonpath assertion failed, or
// "". n is how many body bytes were read; body is nil unless
// keepsBodyForAssertions.
func (h *HTTPSpec) checkAssertions(n int64, body []byte) string {
	if b := h.BodySize; b != nil {
		if n < b.Min {
			return fmt.Sprintf("body is %d bytes, less than body_size.min %d", n, b.Min)
		}
		if b.Max > 0 && n > b.Max {
			return fmt.Sprintf("body is more than body_size.max %d bytes (%d read)", b.Max, n)
		}
	}
	if len(h.JSONPathAssertions) == 0 {
		return ""
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return "jsonpath: body is not JSON: " + httpShort(err.Error())
	}
	for _, a := range h.JSONPathAssertions {
		if msg := a.check(doc); msg != "" {
			return fmt.Sprintf("jsonpath %s: %s", httpShort(a.Path), msg)
		}
	}
	return ""
}

func (a *JSONPathAssertion) check(doc any) string {
	if a.compiled == nil {
		return "not compiled"
	}
	nodes := a.compiled.Select(doc)
	switch {
	case a.Absent:
		if len(nodes) > 0 {
			return fmt.Sprintf("selects %d node(s), want none", len(nodes))
		}
		return ""
	case a.Count != nil && len(nodes) != *a.Count:
		return fmt.Sprintf("selects %d node(s), want %d", len(nodes), *a.Count)
	case a.Count == nil && len(nodes) == 0:
		return "selects nothing"
	}
	for _, n := range nodes {
		got := jsonText(n)
		if a.Equals != nil && got != *a.Equals {
			return fmt.Sprintf("is %q, want %q", httpShort(got), httpShort(*a.Equals))
		}
		if a.re != nil && !a.re.MatchString(got) {
			return fmt.Sprintf("%q does not match %q", httpShort(got), httpShort(a.Matches))
		}
	}
	return ""
}

// jsonText renders a JSON value as the assertions compare it: strings
// without quotes, anything else as its JSON text.
func jsonText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
