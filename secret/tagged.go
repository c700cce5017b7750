package secret

import (
	"reflect"
	"strings"
)

// Tagged fields: a destination's credentials that live in plain string
// fields (so they round-trip through YAML and the registry's documents)
// are marked where they are declared, and sealed, redacted and kept on
// update by the one walker below:
//
//	secret:"url"    a URL that is a credential as a whole (a webhook)
//	secret:"token"  a credential value (a bot token, a routing key)

// Kinds of tagged field.
const (
	TagURL   = "url"
	TagToken = "token"
)

// EachTagged calls f with every tagged string field reachable from v (a
// pointer to a struct), through structs and slices, in field order. f may
// change the field: slices are walked in place, so clone them first when
// the value is shared.
func EachTagged(v any, f func(kind string, field *string)) {
	eachTagged(reflect.ValueOf(v), "", f)
}

func eachTagged(v reflect.Value, kind string, f func(string, *string)) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			eachTagged(v.Elem(), kind, f)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if sf := t.Field(i); sf.IsExported() {
				eachTagged(v.Field(i), sf.Tag.Get("secret"), f)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			eachTagged(v.Index(i), kind, f)
		}
	case reflect.String:
		if (kind == TagURL || kind == TagToken) && v.CanAddr() {
			f(kind, v.Addr().Interface().(*string))
		}
	}
}

// RedactTagged is a tagged field's value fit to show: a URL as
// RedactURL(URLWhole) shows it, a token as "<secret>#" and 8 hex digits of
// its hash (two tokens stay apart; an update that sends it back keeps the
// stored one). Empty stays empty.
func RedactTagged(kind, value string) string {
	switch {
	case value == "":
		return ""
	case kind == TagURL:
		return RedactURL(value, URLWhole)
	}
	return Redacted + "#" + URLHash(value)
}

// IsRedactedTagged reports whether value is a redacted form (RedactTagged)
// rather than a credential: sent back without a stored original to keep.
func IsRedactedTagged(kind, value string) bool {
	if kind == TagURL {
		return IsRedactedURL(value)
	}
	return strings.HasPrefix(value, Redacted)
}
