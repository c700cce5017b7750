package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/prober"
)

// API documents have the config file's shape (durations as "30s", the same
// field names), so a target reads the same in YAML and in JSON. A JSON
// document is decoded by way of YAML with the config's own decoder, unknown
// fields refused; errors are mapped back to the JSON paths.

// toDocument marshals v through YAML into a generic JSON-ready value.
func toDocument(v any) (map[string]any, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	out, _ := stringKeys(m).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// fromDocument decodes doc into v with unknown fields refused. An unknown
// field is a 400, a value of the wrong type a 422, both with paths.
func fromDocument(doc map[string]any, v any) error {
	b, err := yaml.Marshal(numbers(doc))
	if err != nil {
		return Problem(http.StatusBadRequest, "Bad Request", "the document could not be read")
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return Problem(http.StatusBadRequest, "Bad Request", "the document could not be read")
	}
	lines := map[int]string{}
	linePaths(&root, "", lines)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	err = dec.Decode(v)
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Problem(http.StatusBadRequest, "Bad Request", "the document could not be read")
	}
	var unknown, bad []prober.FieldError
	for _, msg := range te.Errors {
		line, rest := splitLine(msg)
		path := lines[line]
		if m := unknownField.FindStringSubmatch(rest); m != nil {
			unknown = append(unknown, prober.FieldError{Path: path, Msg: "unknown field"})
			continue
		}
		rest = strings.ReplaceAll(rest, "!!", "")
		bad = append(bad, prober.FieldError{Path: path, Msg: rest})
	}
	if len(unknown) > 0 {
		names := make([]string, len(unknown))
		for i, u := range unknown {
			names[i] = u.Path
		}
		p := Problem(http.StatusBadRequest, "Bad Request", "unknown field(s): "+strings.Join(names, ", ")).(*ProblemError)
		for _, u := range unknown {
			p.Errors = append(p.Errors, FieldIssue{Path: u.Path, Message: u.Msg})
		}
		return p
	}
	return ValidationProblem(bad)
}

var (
	unknownField = regexp.MustCompile(`^field (\S+) not found`)
	lineRE       = regexp.MustCompile(`^line (\d+): (.*)$`)
)

func splitLine(msg string) (int, string) {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	n, _ := strconv.Atoi(m[1])
	return n, m[2]
}

// linePaths records, for every line of a block-style YAML document, the
// path of the deepest key or item on it.
func linePaths(n *yaml.Node, path string, out map[int]string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			linePaths(c, path, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			out[k.Line] = p
			linePaths(v, p, out)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			out[c.Line] = p
			linePaths(c, p, out)
		}
	}
}

// numbers turns json.Number and integral float64 values into int64 (else
// float64), so YAML writes them as plain numbers.
func numbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = numbers(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = numbers(x)
		}
		return out
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n
		}
		f, _ := t.Float64()
		return numbers(f)
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return int64(t)
		}
	}
	return v
}
