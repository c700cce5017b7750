package prober

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJSONPathAndBodySizeAssertions(t *testing.T) {
	const doc = `{"items":[{"name":"db","status":"ok","lag":3},{"name":"cache","status":"ok","lag":12}],"version":"1.4.2","ready":true}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, doc)
	}))
	defer srv.Close()
	str := func(s string) *string { return &s }
	n := func(i int) *int { return &i }

	tests := []struct {
		name     string
		jsonpath []JSONPathAssertion
		size     *BodySize
		wantMsg  string // "" is success
	}{
		{name: "filter selects", jsonpath: []JSONPathAssertion{{Path: `$.items[?@.status=='ok']`, Count: n(2)}}},
		{name: "filter on numbers", jsonpath: []JSONPathAssertion{{Path: `$.items[?@.lag > 10].name`, Equals: str("cache")}}},
		{name: "every node equals", jsonpath: []JSONPathAssertion{{Path: `$.items[*].status`, Equals: str("ok")}}},
		{name: "matches", jsonpath: []JSONPathAssertion{{Path: `$.version`, Matches: `^1\.4\.\d+$`}}},
		{name: "bool as text", jsonpath: []JSONPathAssertion{{Path: `$.ready`, Equals: str("true")}}},
		{name: "exists", jsonpath: []JSONPathAssertion{{Path: `$.items[0].lag`}}},
		{name: "absent", jsonpath: []JSONPathAssertion{{Path: `$.items[?@.status=='down']`, Absent: true}}},
		{name: "count mismatch", jsonpath: []JSONPathAssertion{{Path: `$.items[*]`, Count: n(3)}}, wantMsg: "selects 2 node(s), want 3"},
		{name: "equals mismatch", jsonpath: []JSONPathAssertion{{Path: `$.items[*].name`, Equals: str("db")}}, wantMsg: `is "cache", want "db"`},
		{name: "selects nothing", jsonpath: []JSONPathAssertion{{Path: `$.nope`}}, wantMsg: "selects nothing"},
		{name: "not absent", jsonpath: []JSONPathAssertion{{Path: `$.items[?@.lag > 10]`, Absent: true}}, wantMsg: "want none"},
		{name: "regex mismatch", jsonpath: []JSONPathAssertion{{Path: `$.version`, Matches: `^2\.`}}, wantMsg: "does not match"},
		{name: "size within", size: &BodySize{Min: 10, Max: int64(len(doc))}},
		{name: "size too small", size: &BodySize{Min: int64(len(doc)) + 1}, wantMsg: "less than body_size.min"},
		{name: "size too large", size: &BodySize{Max: 10}, wantMsg: "more than body_size.max 10"},
	}
	p := New(Options{AllowPrivate: true})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runCheckTarget(t, p, Target{Name: "j", Kind: "http", Timeout: 5 * time.Second,
				HTTP: &HTTPSpec{URL: srv.URL, JSONPathAssertions: tc.jsonpath, BodySize: tc.size}})
			if tc.wantMsg == "" {
				require.True(t, res.Success, "%s: %s", res.ErrorClass, res.Error)
				return
			}
			require.False(t, res.Success)
			require.Equal(t, ClassAssertion, res.ErrorClass)
			require.Contains(t, res.Error, tc.wantMsg)
		})
	}

	// A body that is not JSON fails the jsonpath assertions, clearly.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fine") }))
	defer plain.Close()
	res := runCheckTarget(t, p, Target{Name: "j", Kind: "http", Timeout: 5 * time.Second,
		HTTP: &HTTPSpec{URL: plain.URL, JSONPathAssertions: []JSONPathAssertion{{Path: "$.a"}}}})
	require.Equal(t, ClassAssertion, res.ErrorClass)
	require.Contains(t, res.Error, "not JSON")
}

func TestAssertionValidation(t *testing.T) {
	many := make([]JSONPathAssertion, MaxJSONPathAssertions+1)
	for i := range many {
		many[i].Path = "$.a"
	}
	neg := -1
	tests := []struct {
		name string
		spec HTTPSpec
		want []string
	}{
		{name: "bad path", spec: HTTPSpec{JSONPathAssertions: []JSONPathAssertion{{Path: "$.items[?"}}}, want: []string{"t.http.jsonpath[0].path"}},
		{name: "no path", spec: HTTPSpec{JSONPathAssertions: []JSONPathAssertion{{}}}, want: []string{"t.http.jsonpath[0].path"}},
		{name: "long path", spec: HTTPSpec{JSONPathAssertions: []JSONPathAssertion{{Path: "$." + strings.Repeat("a", 1100)}}}, want: []string{"t.http.jsonpath[0].path"}},
		{name: "bad regex, count, absent", spec: HTTPSpec{JSONPathAssertions: []JSONPathAssertion{{Path: "$.a", Matches: "(", Count: &neg, Absent: true}}},
			want: []string{"t.http.jsonpath[0].matches", "t.http.jsonpath[0].count", "t.http.jsonpath[0].absent"}},
		{name: "too many", spec: HTTPSpec{JSONPathAssertions: many}, want: []string{"t.http.jsonpath"}},
		{name: "size bounds", spec: HTTPSpec{BodySize: &BodySize{Min: -1, Max: 2 << 20}}, want: []string{"t.http.body_size.min", "t.http.body_size.max"}},
		{name: "size min over max", spec: HTTPSpec{BodySize: &BodySize{Min: 10, Max: 5}}, want: []string{"t.http.body_size"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.URL = "http://example.com/"
			tgt := Target{Name: "n", Kind: "http", HTTP: &spec}
			tgt.Normalize()
			var got []string
			for _, e := range tgt.Validate("t") {
				got = append(got, e.Path)
			}
			require.ElementsMatch(t, tc.want, got)
		})
	}
}
