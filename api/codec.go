package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/tenancy"
)

// API documents have the config file's shape (tenancy.ToDocument and
// tenancy.FromDocument); fromDocument turns a document's errors into
// problems: unknown fields a 400 listing all of them, values of the wrong
// type a 422, both with paths.

func toDocument(v any) (map[string]any, error) { return tenancy.ToDocument(v) }

func fromDocument(doc map[string]any, v any) error {
	return documentProblem(tenancy.FromDocument(doc, v))
}

// documentProblem is the problem for a *tenancy.DocumentError; other
// errors pass as they are.
func documentProblem(err error) error {
	var de *tenancy.DocumentError
	if !errors.As(err, &de) {
		return err
	}
	if len(de.Unknown) > 0 {
		p := Problem(http.StatusBadRequest, "Bad Request", "unknown field(s): "+strings.Join(de.Unknown, ", ")).(*ProblemError)
		for _, u := range de.Unknown {
			msg := "unknown field"
			if guess := de.Meant[u]; guess != "" {
				msg += "; did you mean " + guess + "?"
			}
			p.Errors = append(p.Errors, FieldIssue{Path: u, Message: msg})
		}
		return p
	}
	return ValidationProblem(de.Bad)
}

// MaxDepth bounds how deeply a request body (JSON or YAML) may nest
// objects and lists: no document of the API needs more than a handful, and
// a bound keeps the cost of a request linear in its size.
const MaxDepth = 32

// tooDeep is the 400 for a body nested deeper than MaxDepth.
func tooDeep() error {
	return Problem(http.StatusBadRequest, "Bad Request", fmt.Sprintf("the body nests objects and lists deeper than %d levels", MaxDepth))
}

// jsonDepthOK reports whether no object or list in the JSON text b nests
// deeper than max; a linear scan, before anything is decoded.
func jsonDepthOK(b []byte, max int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > max {
				return false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return true
}

// yamlDepthOK is jsonDepthOK for a parsed YAML document.
func yamlDepthOK(n *yaml.Node, max int) bool {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if max--; max < 0 {
			return false
		}
	}
	for _, c := range n.Content {
		if !yamlDepthOK(c, max) {
			return false
		}
	}
	return true
}
