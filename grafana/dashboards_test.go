package grafana

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The dashboard model, as much of it as the tests look at.

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type gridPos struct{ X, Y, W, H int }

type query struct {
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
	Expr       string `json:"expr"`  // PromQL
	Query      string `json:"query"` // Flux
	Instant    bool   `json:"instant"`
	Range      bool   `json:"range"`
	Format     string `json:"format"`
	Interval   string `json:"interval"`
}

type panel struct {
	ID          int      `json:"id"`
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	GridPos     *gridPos `json:"gridPos"`
	Datasource  *dsRef   `json:"datasource"`
	Targets     []query  `json:"targets"`
	Collapsed   bool     `json:"collapsed"`
	Panels      []panel  `json:"panels"` // a collapsed row's panels
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Datasource *dsRef          `json:"datasource"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

type annotation struct {
	Name       string `json:"name"`
	Datasource *dsRef `json:"datasource"`
	Expr       string `json:"expr"`
	BuiltIn    int    `json:"builtIn"`
	Target     *query `json:"target"`
}

type dashboard struct {
	file   string
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Links []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"links"`
	Description   string   `json:"description"`
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Tags          []string `json:"tags"`
	SchemaVersion int      `json:"schemaVersion"`
	Panels        []panel  `json:"panels"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []annotation `json:"list"`
	} `json:"annotations"`
}

// allPanels flattens collapsed rows.
func (d *dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

func (d *dashboard) variable(name string) *variable {
	for i := range d.Templating.List {
		if d.Templating.List[i].Name == name {
			return &d.Templating.List[i]
		}
	}
	return nil
}

// promQuery is one PromQL expression of a dashboard and where it is.
type promQuery struct {
	where   string
	expr    string
	instant bool
	// needsFull: the panel says it needs metrics.per_target: full.
	needsFull bool
}

// fullMark is how a panel says it has data only with the full per-target
// series (config metrics.per_target: full).
const fullMark = "Needs metrics.per_target: full."

// promQueries lists every PromQL expression: panel targets and annotations.
func (d *dashboard) promQueries() []promQuery {
	var out []promQuery
	for _, p := range d.allPanels() {
		for _, q := range p.Targets {
			if q.Expr == "" || dsType(q.Datasource, p.Datasource) != "prometheus" {
				continue
			}
			out = append(out, promQuery{where: fmt.Sprintf("%s panel %d %q query %s", d.file, p.ID, p.Title, q.RefID), expr: q.Expr,
				instant: q.Instant && !q.Range, needsFull: strings.Contains(p.Description, fullMark)})
		}
	}
	for _, a := range d.Annotations.List {
		if a.BuiltIn == 0 && a.Expr != "" {
			out = append(out, promQuery{where: fmt.Sprintf("%s annotation %q", d.file, a.Name), expr: a.Expr})
		}
	}
	return out
}

// fluxQueries lists every Flux query.
func (d *dashboard) fluxQueries() []promQuery {
	var out []promQuery
	for _, p := range d.allPanels() {
		for _, q := range p.Targets {
			if dsType(q.Datasource, p.Datasource) == "influxdb" {
				out = append(out, promQuery{where: fmt.Sprintf("%s panel %d %q query %s", d.file, p.ID, p.Title, q.RefID), expr: q.Query})
			}
		}
	}
	return out
}

func dsType(refs ...*dsRef) string {
	for _, r := range refs {
		if r != nil && r.Type != "" {
			return r.Type
		}
	}
	return ""
}

// varQuery is a Prometheus variable's query: label_values(selector, label).
func (v *variable) promQuery() string {
	var obj struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(v.Query, &obj); err == nil && obj.Query != "" {
		return obj.Query
	}
	var s string
	if err := json.Unmarshal(v.Query, &s); err == nil {
		return s
	}
	return v.Definition
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

func loadDashboards(t *testing.T) []*dashboard {
	t.Helper()
	files, err := filepath.Glob("dashboards/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboards")
	var out []*dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		d := &dashboard{file: f}
		require.NoError(t, json.Unmarshal(b, d), "%s does not parse", f)
		out = append(out, d)
	}
	return out
}

// The variable values every query is checked with. Grafana's own built-ins
// get plausible values; dashboard variables get the values a test chooses.
func builtins() map[string]string {
	return map[string]string{
		"__rate_interval": "10s",
		"__interval":      "1s",
		"__interval_ms":   "1000",
		"__range":         "1h",
		"__range_s":       "3600",
		"__range_ms":      "3600000",
	}
}

var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?\}|\[\[([A-Za-z_][A-Za-z0-9_]*)\]\]|\$([A-Za-z_][A-Za-z0-9_]*)`)

// expand substitutes Grafana variables in q the way Grafana does for one
// value per variable (the :regex format escapes it). Every variable must
// have a value: an unknown one is an error, so a typo cannot pass.
func expand(q string, vars map[string]string) (string, error) {
	var missing []string
	out := varRE.ReplaceAllStringFunc(q, func(m string) string {
		sm := varRE.FindStringSubmatch(m)
		name, format := sm[1]+sm[3]+sm[4], sm[2]
		v, ok := vars[name]
		if !ok {
			v, ok = builtins()[name]
		}
		if !ok {
			missing = append(missing, name)
			return m
		}
		switch format {
		case "", "raw":
		case "regex":
			if !strings.HasPrefix(v, "(") && v != ".+" && v != ".*" { // already a regex (All, or several values)
				v = regexp.QuoteMeta(v)
			}
		default:
			missing = append(missing, name+":"+format+" (format not handled by the test)")
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variables %v", missing)
	}
	return out, nil
}

func promParser() parser.Parser { return parser.NewParser(parser.Options{}) }

func readProvisionedDatasources(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("provisioning/datasources/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	uids := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var doc struct {
			APIVersion  int `yaml:"apiVersion"`
			Datasources []struct {
				Name, UID, Type, URL, Access string
				JSONData                     map[string]any `yaml:"jsonData"`
			} `yaml:"datasources"`
		}
		require.NoError(t, yaml.Unmarshal(b, &doc), f)
		require.Equal(t, 1, doc.APIVersion, f)
		for _, ds := range doc.Datasources {
			require.NotEmpty(t, ds.UID, "%s: datasource %q has no uid (dashboards refer to uids)", f, ds.Name)
			require.NotContains(t, uids, ds.UID, "%s: uid %q defined twice", f, ds.UID)
			require.Equal(t, "proxy", ds.Access, "%s: %s", f, ds.Name)
			require.NotEmpty(t, ds.URL, "%s: %s", f, ds.Name)
			uids[ds.UID] = ds.Type
			if ds.Type == "influxdb" {
				require.Equal(t, "Flux", ds.JSONData["version"], "%s: the dashboards' InfluxDB queries are Flux", f)
			}
		}
	}
	return uids
}

func TestDashboardsAreWellFormed(t *testing.T) {
	uids := map[string]string{}
	for _, d := range loadDashboards(t) {
		t.Run(filepath.Base(d.file), func(t *testing.T) {
			require.NotEmpty(t, d.UID)
			require.LessOrEqual(t, len(d.UID), 40, "Grafana limits uids to 40 characters")
			require.NotContains(t, uids, d.UID, "uid %q also used by %s", d.UID, uids[d.UID])
			uids[d.UID] = d.file
			require.NotEmpty(t, d.Title)
			require.Contains(t, d.Tags, "upwatch", "the dashboards link each other by the upwatch tag")
			require.GreaterOrEqual(t, d.SchemaVersion, 39, "schemaVersion must be current (Grafana 10.4+)")

			ids := map[int]string{}
			var rects []panel
			for _, p := range d.allPanels() {
				require.NotZero(t, p.ID, "panel %q has no id", p.Title)
				require.NotContains(t, ids, p.ID, "panel id %d used by %q and %q", p.ID, ids[p.ID], p.Title)
				ids[p.ID] = p.Title
				require.NotEmpty(t, p.Title, "panel %d has no title", p.ID)
				require.NotNil(t, p.GridPos, "panel %d %q has no gridPos", p.ID, p.Title)
				g := *p.GridPos
				require.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.Y >= 0 && g.X+g.W <= 24,
					"panel %d %q: gridPos %+v outside the 24-column grid", p.ID, p.Title, g)
				if p.Type == "row" {
					require.Equal(t, 24, g.W, "row %q", p.Title)
					require.Empty(t, p.Targets)
				} else {
					require.NotEmpty(t, p.Targets, "panel %d %q has no queries", p.ID, p.Title)
					refs := map[string]bool{}
					for _, q := range p.Targets {
						require.NotEmpty(t, q.RefID)
						require.False(t, refs[q.RefID], "panel %d: refId %s twice", p.ID, q.RefID)
						refs[q.RefID] = true
					}
				}
				rects = append(rects, p)
			}
			// Panels inside a collapsed row are laid out in their own space;
			// everything at the top level must not overlap.
			checkNoOverlap(t, d.Panels)
			for _, p := range d.Panels {
				if p.Collapsed {
					checkNoOverlap(t, p.Panels)
				}
			}
		})
	}
}

func checkNoOverlap(t *testing.T, ps []panel) {
	t.Helper()
	for i, a := range ps {
		for _, b := range ps[i+1:] {
			ga, gb := a.GridPos, b.GridPos
			if ga == nil || gb == nil {
				continue
			}
			overlap := ga.X < gb.X+gb.W && gb.X < ga.X+ga.W && ga.Y < gb.Y+gb.H && gb.Y < ga.Y+ga.H
			require.False(t, overlap, "panels %d %q %+v and %d %q %+v overlap", a.ID, a.Title, *ga, b.ID, b.Title, *gb)
		}
	}
}

// TestDashboardsArePortable: the dashboards import into any Grafana. No
// datasource uid is wired in: every panel, query, variable and annotation
// names its datasource through a datasource variable of the right type
// (which picks the provisioned one in the compose stack, and offers a
// choice elsewhere), and __inputs declares each for the import dialog.
func TestDashboardsArePortable(t *testing.T) {
	provisioned := readProvisionedDatasources(t)
	dsVars := map[string]string{"prometheus": "${datasource}", "influxdb": "${influxdb_datasource}"}
	for _, d := range loadDashboards(t) {
		t.Run(filepath.Base(d.file), func(t *testing.T) {
			used := map[string]bool{}
			check := func(where string, r *dsRef) {
				if r == nil || r.UID == "-- Grafana --" || r.UID == "grafana" || r.Type == "datasource" {
					return // built-in
				}
				require.NotContains(t, provisioned, r.UID, "%s: datasource uid %q is wired in; use %s", where, r.UID, dsVars[r.Type])
				require.Equal(t, dsVars[r.Type], r.UID, "%s: a %s query must name the datasource variable", where, r.Type)
				used[r.Type] = true
			}
			for _, p := range d.allPanels() {
				where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
				if p.Type != "row" {
					require.NotNil(t, p.Datasource, "%s: no datasource (the default one may not be upwatch's)", where)
				}
				check(where, p.Datasource)
				for _, q := range p.Targets {
					require.NotNil(t, q.Datasource, "%s query %s: no datasource", where, q.RefID)
					check(where+" query "+q.RefID, q.Datasource)
				}
			}
			for _, v := range d.Templating.List {
				if v.Type == "query" {
					require.NotNil(t, v.Datasource, "variable %s", v.Name)
				}
				check("variable "+v.Name, v.Datasource)
			}
			for _, a := range d.Annotations.List {
				check("annotation "+a.Name, a.Datasource)
			}

			inputs := map[string]string{}
			for _, in := range d.Inputs {
				require.Equal(t, "datasource", in.Type, "__inputs %s", in.Name)
				inputs[in.PluginID] = in.Name
			}
			for typ := range used {
				require.Contains(t, inputs, typ, "__inputs must declare the %s datasource", typ)
				name := strings.TrimSuffix(strings.TrimPrefix(dsVars[typ], "${"), "}")
				v := d.variable(name)
				require.NotNil(t, v, "no datasource variable %s", name)
				require.Equal(t, "datasource", v.Type)
				var q string
				require.NoError(t, json.Unmarshal(v.Query, &q))
				require.Equal(t, typ, q, "variable %s lists %s datasources", name, typ)
			}
			if used["influxdb"] {
				b := d.variable("bucket")
				require.NotNil(t, b, "the InfluxDB bucket is a variable")
				require.Equal(t, "textbox", b.Type, "the bucket can be changed where the dashboard is used")
			}
		})
	}
}

// Panels that read InfluxDB say so, since they are empty on the embedded
// store, and point to the API that has the same samples.
func TestInfluxPanelsSaySo(t *testing.T) {
	n := 0
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			for _, q := range p.Targets {
				if dsType(q.Datasource, p.Datasource) == "influxdb" {
					n++
					require.Contains(t, p.Description, "Needs InfluxDB storage", "%s panel %q", d.file, p.Title)
					require.Contains(t, p.Description, "/api/v1/targets/{id}/samples", "%s panel %q", d.file, p.Title)
					break
				}
			}
		}
	}
	require.Positive(t, n)
}

// The SLA dashboard says it approximates and links to the API's figure.
func TestSLADashboardPointsToTheAPI(t *testing.T) {
	for _, d := range loadDashboards(t) {
		if d.UID != "upwatch-sla" {
			continue
		}
		require.Contains(t, d.Description, "approximation from Prometheus scrapes")
		var link bool
		for _, l := range d.Links {
			link = link || strings.Contains(l.URL, "/api/v1/targets/${target}/sla")
		}
		require.True(t, link, "a link to the API's SLA")
		return
	}
	t.Fatal("no SLA dashboard")
}

// TestDashboardProvider checks the provider loads the folder the compose
// file mounts the dashboards into.
func TestDashboardProvider(t *testing.T) {
	b, err := os.ReadFile("provisioning/dashboards/upwatch.yaml")
	require.NoError(t, err)
	var doc struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct{ Path string }
		}
	}
	require.NoError(t, yaml.Unmarshal(b, &doc))
	require.Equal(t, 1, doc.APIVersion)
	require.Len(t, doc.Providers, 1)
	require.Equal(t, "file", doc.Providers[0].Type)
	compose, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	require.Contains(t, string(compose), "./grafana/dashboards:"+doc.Providers[0].Options.Path+":ro",
		"docker-compose.yml must mount grafana/dashboards where the provider looks")
}

// perTargetMetrics carry a target label; a dashboard query must select them
// by the dashboard's target variable, never by a hard-coded target.
var perTargetMetrics = []string{"probe_success", "probe_duration_seconds", "probe_http_duration_seconds",
	"probe_http_status_code", "probe_ssl_earliest_cert_expiry", "probe_dns_lookup_time_seconds",
	"upwatch_checks_total", "upwatch_target_up", "upwatch_incidents_total"}

const sentinel = "SENTINEL-TARGET"

// fullOnly are the per-target series exported with metrics.per_target:
// full only; upwatch_checks_total has its target label only then.
var fullOnly = []string{"probe_http_duration_seconds", "probe_dns_lookup_time_seconds"}

// A panel that shows a series of the full per-target set says so, since
// it is empty with the default (core).
func TestFullOnlyPanelsSaySo(t *testing.T) {
	marked := 0
	for _, d := range loadDashboards(t) {
		for _, q := range d.promQueries() {
			if q.needsFull {
				marked++
			}
			expr, err := expand(q.expr, map[string]string{"target": sentinel, "location": ".+", "instance": ".+", "slo": "99.9", "bucket": "b"})
			require.NoError(t, err, q.where)
			node, err := promParser().ParseExpr(expr)
			require.NoError(t, err, q.where)
			parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok {
					return nil
				}
				byTarget := slices.ContainsFunc(vs.LabelMatchers, func(m *labels.Matcher) bool { return m.Name == "target" })
				if slices.Contains(fullOnly, vs.Name) || (vs.Name == "upwatch_checks_total" && byTarget) {
					require.True(t, q.needsFull, "%s uses %s: its panel description must say %q", q.where, vs, fullMark)
				}
				return nil
			})
		}
	}
	require.Positive(t, marked)
}

func TestPromQLParsesAndUsesVariables(t *testing.T) {
	n := 0
	for _, d := range loadDashboards(t) {
		vars := map[string]string{"target": sentinel, "location": ".+", "instance": ".+", "slo": "99.9", "bucket": "b"}
		hasTargetVar := d.variable("target") != nil
		for _, q := range d.promQueries() {
			n++
			expr, err := expand(q.expr, vars)
			require.NoError(t, err, q.where)
			node, err := promParser().ParseExpr(expr)
			require.NoError(t, err, "%s: %s", q.where, expr)
			parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
				vs, ok := n.(*parser.VectorSelector)
				if !ok || !slices.Contains(perTargetMetrics, vs.Name) || !hasTargetVar {
					return nil
				}
				var ok2 bool
				for _, m := range vs.LabelMatchers {
					if m.Name == "target" {
						require.Contains(t, []labels.MatchType{labels.MatchEqual, labels.MatchRegexp}, m.Type, q.where)
						require.Equal(t, sentinel, m.Value, "%s: %s selects target by something other than $target", q.where, vs)
						ok2 = true
					}
				}
				require.True(t, ok2, "%s: %s is not filtered by $target", q.where, vs)
				return nil
			})
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, err := expand(v.promQuery(), vars)
			require.NoError(t, err, "%s variable %s", d.file, v.Name)
			m := labelValuesRE.FindStringSubmatch(q)
			require.NotNil(t, m, "%s variable %s: want label_values(selector, label), got %q", d.file, v.Name, q)
			_, err = promParser().ParseMetricSelector(m[1])
			require.NoError(t, err, "%s variable %s", d.file, v.Name)
			if v.IncludeAll {
				require.NotEmpty(t, v.AllValue, "%s variable %s: set allValue so All is a short regex", d.file, v.Name)
			}
		}
	}
	require.Greater(t, n, 40, "fewer PromQL queries than expected: is the dashboard model read right?")
}

func TestFluxQueriesUseVariables(t *testing.T) {
	n := 0
	for _, d := range loadDashboards(t) {
		for _, q := range d.fluxQueries() {
			n++
			require.Contains(t, q.expr, `from(bucket: "${bucket}")`, q.where)
			require.Contains(t, q.expr, "range(start: v.timeRangeStart, stop: v.timeRangeStop)", q.where)
			require.Contains(t, q.expr, `r._measurement == "upwatch_check"`, q.where)
			require.Regexp(t, `r\.target_id (==|=~) .*\$\{target`, q.expr, "%s filters by the target variable", q.where)
			_, err := expand(q.expr, map[string]string{"target": "t", "location": ".+", "bucket": "b"})
			require.NoError(t, err, q.where)
			// InfluxDB 1.8 runs Flux 0.65: only the old standard library.
			for _, call := range regexp.MustCompile(`\|>\s*([a-zA-Z]+)\(`).FindAllStringSubmatch(q.expr, -1) {
				require.Contains(t, []string{"range", "filter", "aggregateWindow", "mean", "last", "group", "keep", "map", "sort", "limit", "yield"},
					call[1], "%s uses %s(), which Flux 0.65 may lack", q.where, call[1])
			}
		}
		if d.variable("bucket") == nil && len(d.fluxQueries()) > 0 {
			t.Errorf("%s: Flux queries but no bucket variable", d.file)
		}
	}
	require.Positive(t, n)
}

func TestExpand(t *testing.T) {
	got, err := expand(`a{t=~"$target",l=~"${location}"}[$__rate_interval] / $__range_s /^${target:regex}$/ [[slo]]`,
		map[string]string{"target": "a.b", "location": ".+", "slo": "99"})
	require.NoError(t, err)
	require.Equal(t, `a{t=~"a.b",l=~".+"}[10s] / 3600 /^a\.b$/ 99`, got)
	_, err = expand(`$nope`, nil)
	require.Error(t, err)
}
