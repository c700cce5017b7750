package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/tenancy"
)

//go:embed openapi/*.yaml
var openAPIFiles embed.FS

// coreFragment holds openapi, info, security and securitySchemes; every
// other fragment adds paths and components.
const coreFragment = "openapi/core.yaml"

// mergedSections are the component maps fragments may add to.
var mergedSections = []string{"schemas", "responses", "parameters"}

// openAPIDocument merges the embedded fragments into one JSON document.
func openAPIDocument() ([]byte, error) {
	names, err := fs.Glob(openAPIFiles, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	frags := make(map[string]map[string]any, len(names))
	for _, n := range names {
		b, err := openAPIFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		frags[n], _ = tenancy.StringKeys(m).(map[string]any)
	}
	return mergeFragments(frags)
}

func mergeFragments(frags map[string]map[string]any) ([]byte, error) {
	doc, ok := frags[coreFragment]
	if !ok {
		return nil, fmt.Errorf("%s is missing", coreFragment)
	}
	paths := mapAt(doc, "paths")
	comps := mapAt(doc, "components")
	names := make([]string, 0, len(frags))
	for n := range frags {
		if n != coreFragment {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		f := frags[n]
		for k := range f {
			if k != "paths" && k != "components" {
				return nil, fmt.Errorf("%s: only paths and components may be in a fragment (found %q)", n, k)
			}
		}
		if err := mergeInto(paths, mapAt(f, "paths"), n, "paths"); err != nil {
			return nil, err
		}
		fc := mapAt(f, "components")
		for k := range fc {
			if !contains(mergedSections, k) {
				return nil, fmt.Errorf("%s: components.%s cannot be merged (only schemas, responses, parameters)", n, k)
			}
		}
		for _, sec := range mergedSections {
			if err := mergeInto(mapAt(comps, sec), mapAt(fc, sec), n, "components."+sec); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(doc)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func mergeInto(dst, src map[string]any, file, section string) error {
	for k, v := range src {
		if _, dup := dst[k]; dup {
			return fmt.Errorf("%s: %s.%s is already defined by another fragment", file, section, k)
		}
		dst[k] = v
	}
	return nil
}

// mapAt returns m[key] as a map, creating it if missing.
func mapAt(m map[string]any, key string) map[string]any {
	if v, ok := m[key].(map[string]any); ok {
		return v
	}
	v := map[string]any{}
	m[key] = v
	return v
}
