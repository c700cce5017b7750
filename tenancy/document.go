package tenancy

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/internal/suggest"
)

// Documents have the config file's shape (durations as "30s", the same
// field names), so a target reads the same in YAML, in JSON and in the
// registry's stored specs. They are written by way of YAML (ToDocument) and
// read straight into the struct (FromDocument), unknown fields refused,
// errors with JSON paths.

// ToDocument marshals v through YAML into a generic JSON-ready value.
func ToDocument(v any) (map[string]any, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	out, _ := StringKeys(m).(map[string]any)
	if out == nil {
		out = map[string]any{}
	}
	return out, nil
}

// StringKeys turns YAML maps with non-string keys (status codes) into maps
// with string keys, recursively, so they marshal as JSON.
func StringKeys(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = StringKeys(x)
		}
		return t
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[fmt.Sprint(k)] = StringKeys(x)
		}
		return out
	case []any:
		for i, x := range t {
			t[i] = StringKeys(x)
		}
		return t
	}
	return v
}

// DocumentError is every problem of one document: fields it does not know
// (the API answers 400) and values of the wrong type (422), each with its
// path ("http.max_redirects", "labels.env", "http.expect_status[0]").
type DocumentError struct {
	Unknown []string
	// Meant holds, for an unknown field that looks like a typo, the known
	// field it is nearest to (Meant["intervall"] == "interval").
	Meant map[string]string
	Bad   []invalid.Field
}

func (e *DocumentError) Error() string {
	if len(e.Unknown) > 0 {
		return "unknown field(s): " + strings.Join(e.Unknown, ", ")
	}
	msgs := make([]string, len(e.Bad))
	for i, b := range e.Bad {
		msgs[i] = b.Error()
	}
	return strings.Join(msgs, "; ")
}

// FromDocument decodes doc (a JSON or YAML value: maps, lists, scalars)
// straight into v, with the config file's field names (yaml tags, inline
// structs) and value syntax (durations as "30s"), in one pass. encoding/json
// cannot do this itself: it reads durations as nanoseconds. Its error is a
// *DocumentError.
func FromDocument(doc map[string]any, v any) error {
	var d docDecoder
	d.value("", doc, reflect.ValueOf(v).Elem())
	if len(d.unknown) > 0 || len(d.bad) > 0 {
		return &DocumentError{Unknown: d.unknown, Meant: d.meant, Bad: d.bad}
	}
	return nil
}

// docDecoder collects every problem of one document.
type docDecoder struct {
	unknown []string
	meant   map[string]string
	bad     []invalid.Field
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

func (d *docDecoder) fail(path, msg string) {
	if path == "" {
		path = "(body)"
	}
	d.bad = append(d.bad, invalid.Field{Path: path, Msg: msg})
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// value decodes in into out; null leaves the zero value, as YAML does.
func (d *docDecoder) value(path string, in any, out reflect.Value) {
	if in == nil {
		out.SetZero()
		return
	}
	if out.Kind() != reflect.Pointer && reflect.PointerTo(out.Type()).Implements(unmarshalerType) {
		d.unmarshaler(path, in, out.Addr().Interface().(yaml.Unmarshaler))
		return
	}
	switch out.Type() {
	case durationType:
		s, ok := in.(string)
		dur, err := time.ParseDuration(s)
		if !ok || err != nil {
			d.fail(path, `must be a duration such as "30s" or "1h30m"`)
			return
		}
		out.SetInt(int64(dur))
		return
	case timeType:
		if t, ok := in.(time.Time); ok {
			out.Set(reflect.ValueOf(t))
			return
		}
		t, ok := parseTime(in)
		if !ok {
			d.fail(path, `must be a time such as "2026-01-02T15:04:05Z"`)
			return
		}
		out.Set(reflect.ValueOf(t))
		return
	}
	switch out.Kind() {
	case reflect.Pointer:
		p := reflect.New(out.Type().Elem())
		d.value(path, in, p.Elem())
		out.Set(p)
	case reflect.Struct:
		m, ok := in.(map[string]any)
		if !ok {
			d.fail(path, "must be an object")
			return
		}
		fields := map[string]reflect.Value{}
		structFields(out, fields)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			f, ok := fields[k]
			if !ok {
				d.unknown = append(d.unknown, joinField(path, k))
				if guess := suggest.Closest(k, slices.Collect(maps.Keys(fields))); guess != "" {
					if d.meant == nil {
						d.meant = map[string]string{}
					}
					d.meant[joinField(path, k)] = guess
				}
				continue
			}
			d.value(joinField(path, k), m[k], f)
		}
	case reflect.Map:
		m, ok := in.(map[string]any)
		if !ok || out.Type().Key().Kind() != reflect.String {
			d.fail(path, "must be an object")
			return
		}
		res := reflect.MakeMapWithSize(out.Type(), len(m))
		for _, k := range slices.Sorted(maps.Keys(m)) {
			e := reflect.New(out.Type().Elem()).Elem()
			d.value(joinField(path, k), m[k], e)
			res.SetMapIndex(reflect.ValueOf(k).Convert(out.Type().Key()), e)
		}
		out.Set(res)
	case reflect.Slice:
		l, ok := in.([]any)
		if !ok {
			d.fail(path, "must be a list")
			return
		}
		res := reflect.MakeSlice(out.Type(), len(l), len(l))
		for i, x := range l {
			d.value(fmt.Sprintf("%s[%d]", path, i), x, res.Index(i))
		}
		out.Set(res)
	case reflect.String:
		// Any scalar reads as its text, as YAML does.
		switch t := in.(type) {
		case string:
			out.SetString(t)
		case bool, int, int64, uint64, float64, json.Number:
			out.SetString(fmt.Sprint(t))
		default:
			d.fail(path, "must be a string")
		}
	case reflect.Bool:
		b, ok := in.(bool)
		if !ok {
			d.fail(path, "must be true or false")
			return
		}
		out.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := wholeNumber(in)
		if !ok || out.OverflowInt(n) {
			d.fail(path, "must be a whole number")
			return
		}
		out.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := wholeNumber(in)
		if !ok || n < 0 || out.OverflowUint(uint64(n)) {
			d.fail(path, "must be a whole number, not negative")
			return
		}
		out.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		f, ok := number(in)
		if !ok {
			d.fail(path, "must be a number")
			return
		}
		out.SetFloat(f)
	case reflect.Interface:
		out.Set(reflect.ValueOf(in))
	default:
		d.fail(path, "cannot be set")
	}
}

// unmarshaler hands a scalar to a type's own YAML decoding (secrets).
func (d *docDecoder) unmarshaler(path string, in any, u yaml.Unmarshaler) {
	n := &yaml.Node{Kind: yaml.ScalarNode}
	switch t := in.(type) {
	case string:
		n.Tag, n.Value = "!!str", t
	case bool, int, int64, float64, json.Number:
		n.Value = fmt.Sprint(t)
	default:
		d.fail(path, "must be a string")
		return
	}
	if err := u.UnmarshalYAML(n); err != nil {
		_, msg, cut := strings.Cut(err.Error(), ": ")
		if !cut || !strings.HasPrefix(err.Error(), "line ") {
			msg = err.Error()
		}
		d.fail(path, msg)
	}
}

// structFields maps the YAML names of v's fields (inline structs
// flattened) to the fields.
func structFields(v reflect.Value, out map[string]reflect.Value) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if slices.Contains(strings.Split(opts, ","), "inline") && sf.Type.Kind() == reflect.Struct {
			structFields(v.Field(i), out)
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		out[name] = v.Field(i)
	}
}

// wholeNumber reads an integral number from a JSON (json.Number, float64)
// or YAML (int) value.
func wholeNumber(in any) (int64, bool) {
	switch t := in.(type) {
	case int:
		return int64(t), true
	case int64:
		return t, true
	case json.Number:
		if n, err := t.Int64(); err == nil {
			return n, true
		}
		f, err := t.Float64()
		return wholeFloat(f, err == nil)
	case float64:
		return wholeFloat(t, true)
	}
	return 0, false
}

func wholeFloat(f float64, ok bool) (int64, bool) {
	if !ok || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

func number(in any) (float64, bool) {
	switch t := in.(type) {
	case int:
		return float64(t), true
	case int64:
		return float64(t), true
	case float64:
		return t, true
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	}
	return 0, false
}

// timeLayouts are the timestamp forms YAML reads.
var timeLayouts = []string{time.RFC3339Nano, "2006-1-2T15:4:5.999999999Z07:00", "2006-1-2t15:4:5.999999999Z07:00", "2006-1-2 15:4:5.999999999", "2006-1-2"}

func parseTime(in any) (time.Time, bool) {
	s, ok := in.(string)
	if !ok {
		return time.Time{}, false
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
