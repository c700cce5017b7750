package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/internal/suggest"
)

// The YAML library reports type errors in Go's words ("field intervall not
// found in type config.Target", "cannot unmarshal !!str `x` into
// time.Duration"). decodeProblems rewrites them as field paths and plain
// words, and keeps going: the library decodes everything else, so the caller
// can report these together with the validation errors, in one pass.
var (
	unknownFieldRE = regexp.MustCompile("^line (\\d+): field (.+) not found in type (\\S+)$")
	unmarshalRE    = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+)(?: `(.*)`)? into (\\S+)$")
	lineRE         = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// decodeProblems returns the fields of a *yaml.TypeError from decoding data
// into a value of type root, or err itself when it is another error (bad
// YAML syntax), which stops the load.
func decodeProblems(err error, data []byte, root reflect.Type) ([]invalid.Field, error) {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return nil, err
	}
	var tree yaml.Node
	_ = yaml.Unmarshal(data, &tree) // it decoded once; the tree only names paths
	types := structTypes(root)
	out := make([]invalid.Field, 0, len(te.Errors))
	for _, msg := range te.Errors {
		out = append(out, describe(msg, &tree, types))
	}
	return out, nil
}

func describe(msg string, tree *yaml.Node, types map[string]reflect.Type) invalid.Field {
	if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		name := m[2]
		path := pathAt(tree, line, name, true)
		text := "unknown field"
		if t, ok := types[m[3]]; ok {
			if guess := suggest.Closest(name, yamlFieldNames(t)); guess != "" {
				text += fmt.Sprintf("; did you mean %s?", guess)
			}
		}
		return invalid.Field{Path: path, Msg: fmt.Sprintf("%s (line %d)", text, line)}
	}
	if m := unmarshalRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		path := pathAt(tree, line, m[3], false)
		return invalid.Field{Path: path, Msg: fmt.Sprintf("%s (line %d)", wantWords(m[2], m[3], m[4]), line)}
	}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return invalid.Field{Path: pathAt(tree, line, "", false), Msg: fmt.Sprintf("%s (line %d)", m[2], line)}
	}
	return invalid.Field{Path: "config", Msg: msg}
}

// wantWords says what a field needed, without Go type names.
func wantWords(tag, value, goType string) string {
	got := "this value"
	switch {
	case value != "":
		got = strconv.Quote(value)
	case tag == "seq":
		got = "a list"
	case tag == "map":
		got = "a mapping"
	}
	want := "a different kind of value"
	switch {
	case goType == "time.Duration":
		want = `a duration such as "30s" or "1h30m"`
	case strings.HasPrefix(goType, "[]"):
		want = "a list"
	case strings.HasPrefix(goType, "map["):
		want = "a mapping of names to values"
	case goType == "bool":
		want = "true or false"
	case goType == "string":
		want = "text"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		want = "a whole number"
	case strings.HasPrefix(goType, "float"):
		want = "a number"
	case strings.Contains(goType, "."):
		want = "a mapping of fields"
	}
	return fmt.Sprintf("%s is not valid here: want %s", got, want)
}

// structTypes maps the Go names ("config.Target") of every struct type
// reachable from root to the type, for finding a misspelt field's siblings.
func structTypes(root reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		if _, seen := out[t.String()]; seen {
			return
		}
		out[t.String()] = t
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				walk(f.Type)
			}
		}
	}
	walk(root)
	return out
}

// yamlFieldNames lists the YAML names of t's fields, inline structs
// flattened.
func yamlFieldNames(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") && f.Type.Kind() == reflect.Struct {
			names = append(names, yamlFieldNames(f.Type)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
	}
	return names
}

// pathAt names the node on line that the message is about: the mapping key
// called key (key=true), or the value that reads key, or else the first
// node on the line. Paths look like the validator's: targets[0].interval.
func pathAt(tree *yaml.Node, line int, key string, isKey bool) string {
	var best string
	var walk func(n *yaml.Node, path string) bool
	walk = func(n *yaml.Node, path string) bool {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if walk(c, path) {
					return true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if walk(c, fmt.Sprintf("%s[%d]", path, i)) {
					return true
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if k.Line == line {
					if best == "" {
						best = p
					}
					if (isKey && k.Value == key) || (!isKey && v.Line == line && (key == "" || v.Value == key)) {
						best = p
						return true
					}
				}
				if walk(v, p) {
					return true
				}
			}
		case yaml.ScalarNode:
			if n.Line == line && best == "" && path != "" {
				best = path
			}
			if n.Line == line && !isKey && n.Value == key && key != "" {
				best = path
				return true
			}
		}
		return false
	}
	walk(tree, "")
	if best == "" {
		return "config"
	}
	return best
}

// withoutConsequences drops the validation errors under a field that did
// not decode ("registry.postgres.url is required" after registry.postgres
// named a missing secret): they repeat the problem already reported.
func withoutConsequences(errs, decoded []invalid.Field) []invalid.Field {
	return slices.DeleteFunc(errs, func(e invalid.Field) bool {
		for _, d := range decoded {
			if e.Path == d.Path || strings.HasPrefix(e.Path, d.Path+".") || strings.HasPrefix(e.Path, d.Path+"[") {
				return true
			}
		}
		return false
	})
}
