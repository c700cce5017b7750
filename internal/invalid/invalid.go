// Package invalid is how every validator (targets, the config file, API
// documents, quotas) reports what is wrong: one Field per invalid field,
// named by its path, so a CLI message names the field and an API problem
// names the JSON path.
package invalid

// Field is one invalid field: its path ("targets[2].http.url",
// "interval") and what is wrong with it.
type Field struct {
	Path string
	Msg  string
}

func (e Field) Error() string { return e.Path + ": " + e.Msg }
