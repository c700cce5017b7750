package prober

import (
	"fmt"
	"maps"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/upwatch/upwatch/internal/invalid"
)

// CheckText refuses a name or label value that holds a control character
// (C0 such as NUL, CR, LF and ESC, DEL, or C1) or is not UTF-8: such text
// forges log lines, breaks CSV and metric exposition, and rewrites
// terminals. It returns no error or one naming path.
func CheckText(path, s string) []invalid.Field {
	if !utf8.ValidString(s) {
		return []invalid.Field{{Path: path, Msg: "must be valid UTF-8"}}
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return []invalid.Field{{Path: path, Msg: fmt.Sprintf("must not contain control characters (U+%04X at byte %d)", r, i)}}
		}
	}
	return nil
}

// CheckLabels applies CheckText to every label name and value under path
// ("labels"): a bad name is reported at path, a bad value at path.name.
func CheckLabels(path string, labels map[string]string) []invalid.Field {
	var errs []invalid.Field
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if e := CheckText(path, k); e != nil {
			e[0].Msg = fmt.Sprintf("label name %q %s", k, e[0].Msg)
			errs = append(errs, e...)
			continue
		}
		errs = append(errs, CheckText(path+"."+k, v)...)
	}
	return errs
}
