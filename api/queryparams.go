package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/upwatch/upwatch/internal/suggest"
)

// The OpenAPI document is the one list of each operation's query
// parameters: a request with one it does not list is a 400 naming it (a
// misspelt "limt" would otherwise be ignored silently and return a page of
// the default size).

// queryParams maps "METHOD /api/v1/path" to the query parameters the
// operation declares, from the merged OpenAPI document.
func queryParams(doc []byte) (map[string][]string, error) {
	var d struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]openAPIParam `json:"parameters"`
		} `json:"components"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, err
	}
	resolve := func(ps []openAPIParam) []string {
		var names []string
		for _, p := range ps {
			if p.Ref != "" {
				p = d.Components.Parameters[strings.TrimPrefix(p.Ref, "#/components/parameters/")]
			}
			if p.In == "query" {
				names = append(names, p.Name)
			}
		}
		return names
	}
	out := map[string][]string{}
	for path, item := range d.Paths {
		var shared []openAPIParam
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				return nil, err
			}
		}
		for method, raw := range item {
			if method == "parameters" || strings.HasPrefix(method, "x-") || method == "summary" || method == "description" {
				continue
			}
			var op struct {
				Parameters []openAPIParam `json:"parameters"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, err
			}
			out[strings.ToUpper(method)+" "+path] = append(resolve(shared), resolve(op.Parameters)...)
		}
	}
	return out, nil
}

type openAPIParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

// unknownQuery is the 400 for query parameters the operation does not
// take, or nil.
func unknownQuery(r *http.Request, allowed []string) error {
	var issues []FieldIssue
	for name := range r.URL.Query() {
		if slices.Contains(allowed, name) {
			continue
		}
		msg := "unknown query parameter"
		if guess := suggest.Closest(name, allowed); guess != "" {
			msg += "; did you mean " + guess + "?"
		}
		issues = append(issues, FieldIssue{Path: "query." + name, Message: msg})
	}
	if len(issues) == 0 {
		return nil
	}
	slices.SortFunc(issues, func(a, b FieldIssue) int { return strings.Compare(a.Path, b.Path) })
	names := make([]string, len(issues))
	for i, is := range issues {
		names[i] = strings.TrimPrefix(is.Path, "query.")
	}
	p := Problem(http.StatusBadRequest, "Bad Request", "unknown query parameter(s): "+strings.Join(names, ", ")).(*ProblemError)
	p.Errors = issues
	return p
}
