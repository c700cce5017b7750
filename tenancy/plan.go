package tenancy

import (
	"reflect"
	"sort"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
)

// ChangedFields lists the paths (dotted, "http.url", "labels.env") where b
// differs from a, credentials compared by value but never shown.
func ChangedFields(a, b config.Target) ([]string, error) {
	da, err := ToDocument(a)
	if err != nil {
		return nil, err
	}
	db, err := ToDocument(b)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	diffDocs("", da, db, set)
	_, sa := splitSecrets(a)
	_, sb := splitSecrets(b)
	for _, f := range (&prober.Auth{}).SecretFields() {
		if sa.Auth[f.Name] != sb.Auth[f.Name] {
			set["http.auth."+f.Name] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

// diffDocs adds to set the path of every value that differs between a and
// b, descending into maps (lists are compared whole).
func diffDocs(prefix string, a, b map[string]any, set map[string]bool) {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		ma, aMap := a[k].(map[string]any)
		mb, bMap := b[k].(map[string]any)
		switch {
		case aMap && bMap:
			diffDocs(path, ma, mb, set)
		case !reflect.DeepEqual(a[k], b[k]):
			set[path] = true
		}
	}
}
