package grafana

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/app"
	"github.com/upwatch/upwatch/config"
)

// mayBeEmpty lists dashboard queries that legitimately return nothing in
// the short end-to-end test, each with the reason. Keep it short.
var mayBeEmpty = map[string]string{}

// TestDashboardQueriesOnLivePrometheus runs upwatch in-process against two
// local targets (an HTTPS one that stays up, an HTTP one the test takes
// down, which opens an incident and sends a webhook notification), lets a
// real Prometheus scrape it every second with deploy/prometheus/rules.yml
// loaded, and then runs every dashboard query, variable and annotation
// against Prometheus's HTTP API: each must return data. It runs with the
// default per-target series (core), where the panels marked as needing
// metrics.per_target: full must be empty, and with full, where every
// query must return data.
func TestDashboardQueriesOnLivePrometheus(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("UPWATCH_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("prometheus is not on PATH and UPWATCH_REQUIRE_PROMETHEUS is set (apt-get install --no-install-recommends prometheus)")
		}
		t.Skip("prometheus is not on PATH (Debian package prometheus); set UPWATCH_REQUIRE_PROMETHEUS=1 to make this a failure")
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	for _, perTarget := range []string{config.PerTargetCore, config.PerTargetFull} {
		t.Run(perTarget, func(t *testing.T) { liveDashboards(t, promBin, perTarget) })
	}
}

func liveDashboards(t *testing.T, promBin, perTarget string) {
	dir := t.TempDir()

	// Targets.
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }))
	defer web.Close()
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: web.Certificate().Raw}), 0o600))
	var down atomic.Bool
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			http.Error(w, "down for the test", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "fine")
	}))
	defer flaky.Close()
	var hooks atomic.Int64
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hooks.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	cfg, err := config.Parse(strings.NewReader(`
allow_private_targets: true
location: testloc
metrics: {per_target: `+perTarget+`}
alerting:
  webhook: {url: "`+receiver.URL+`/hook", secret: "test-signing-secret"}
contact_groups:
  - name: ops
    members: [{name: Ops, email: ops@example.com}]
    webhooks: ["`+receiver.URL+`/ops"]
alert_policies:
  - {name: default, failure_threshold: 2, success_threshold: 1, channels: [webhook], contact_groups: [ops]}
targets:
  - name: web
    kind: http
    interval: 1s
    timeout: 800ms
    http: {url: "`+web.URL+`/", tls_config: {ca_file: "`+caFile+`"}}
  - name: flaky
    kind: http
    interval: 1s
    timeout: 800ms
    alert_policy: default
    http: {url: "`+flaky.URL+`/", expect_status: ["200"]}
`), "live-test.yaml", func(string) string { return "" })
	require.NoError(t, err)
	cfg.DataDir = filepath.Join(dir, "data")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	upwatchAddr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() {
		runDone <- app.Run(ctx, app.Options{Config: cfg, Listener: ln, Version: "test", Revision: "live", ShutdownTimeout: 10 * time.Second})
	}()
	defer func() {
		cancel()
		require.NoError(t, <-runDone)
	}()

	prom := startPrometheus(t, promBin, dir, upwatchAddr)

	// Data: both targets checked and scraped for a while, flaky seen UP by
	// the alerting engine, then taken DOWN until an incident is open and
	// its notification was sent.
	eventually(t, "Prometheus sees both targets UP", func() bool {
		return prom.value(`count(upwatch_target_up == 1)`) == 2
	})
	down.Store(true)
	eventually(t, "the incident is open and its notification sent", func() bool {
		return prom.value(`max(upwatch_target_up{target="flaky"})`) == 0 &&
			prom.value(`sum(upwatch_notifications_total{result="sent"})`) > 0 &&
			prom.value(`sum(upwatch_incidents_total{target="flaky"})`) > 0
	})
	eventually(t, "enough history for rates and quantiles", func() bool {
		return prom.value(`min(count_over_time(probe_success[1m]))`) >= 10 &&
			prom.value(`count(upwatch_store_write_duration_seconds_bucket)`) > 0
	})
	require.Positive(t, hooks.Load(), "the webhook receiver got nothing")

	// The alert rules load and evaluate without error against upwatch's
	// real series, and TargetDown picks up the DOWN target.
	eventually(t, "every rule evaluated", func() bool {
		rules := prom.rules(t)
		for _, r := range rules {
			if r.Health == "unknown" {
				return false
			}
		}
		return len(rules) > 0
	})
	for _, r := range prom.rules(t) {
		require.Equal(t, "ok", r.Health, "rule %s: %s", r.Name, r.LastError)
	}
	eventually(t, "TargetDown is pending or firing for flaky", func() bool {
		return prom.value(`count(ALERTS{alertname="TargetDown",target="flaky"})`) > 0
	})

	// Variables come from label_values; the test uses their live values.
	for _, d := range loadDashboards(t) {
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, err := expand(v.promQuery(), map[string]string{"target": "flaky", "location": ".+", "instance": ".+"})
			require.NoError(t, err)
			m := labelValuesRE.FindStringSubmatch(q)
			require.NotNil(t, m)
			values := prom.labelValues(t, m[2], m[1])
			require.NotEmpty(t, values, "%s variable %s: %s returned nothing", d.file, v.Name, q)
			switch v.Name {
			case "target":
				require.ElementsMatch(t, []string{"web", "flaky"}, values)
			case "location":
				require.Equal(t, []string{"testloc"}, values)
			case "instance":
				require.Equal(t, []string{upwatchAddr}, values)
			}
		}
	}

	// Every query. A dashboard with a single-value target variable is run
	// once per target, and each query must have data for at least one (a
	// DOWN annotation exists for flaky only, a certificate for web only).
	ran := 0
	for _, d := range loadDashboards(t) {
		var choices []map[string]string
		base := map[string]string{"location": ".+", "instance": upwatchAddr, "slo": "99.9", "bucket": "unused"}
		if v := d.variable("target"); v != nil && !v.Multi {
			for _, target := range []string{"web", "flaky"} {
				m := clone(base)
				m["target"] = target
				choices = append(choices, m)
			}
		} else {
			m := clone(base)
			m["target"] = "(web|flaky)"
			choices = append(choices, m)
		}
		for _, q := range d.promQueries() {
			ran++
			var tried []string
			found := false
			for _, vars := range choices {
				expr, err := expand(q.expr, vars)
				require.NoError(t, err, q.where)
				n := prom.resultCount(t, expr, q.instant)
				tried = append(tried, fmt.Sprintf("%s → %d series", expr, n))
				if n > 0 {
					found = true
					break
				}
			}
			if q.needsFull && perTarget == config.PerTargetCore {
				if found {
					t.Errorf("%s is marked %q but has data without it:\n  %s", q.where, fullMark, strings.Join(tried, "\n  "))
				}
				continue
			}
			if !found {
				if reason, ok := mayBeEmpty[q.expr]; ok {
					t.Logf("%s: no data, allowed: %s", q.where, reason)
					continue
				}
				t.Errorf("%s returned no data:\n  %s", q.where, strings.Join(tried, "\n  "))
			}
		}
	}
	require.Greater(t, ran, 40)
	t.Logf("ran %d dashboard queries against Prometheus", ran)
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// eventually polls cond until it holds; the deadline is generous and only
// there so a broken setup fails instead of hanging.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

type promServer struct {
	base string
	log  string
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startPrometheus(t *testing.T, bin, dir, scrape string) *promServer {
	t.Helper()
	rules, err := filepath.Abs("../deploy/prometheus/rules.yml")
	require.NoError(t, err)
	port := freePort(t)
	conf := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: upwatch
    static_configs: [{targets: [%q]}]
`, rules, scrape)), 0o600))
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "prom"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port), "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("prometheus log:\n%s", b)
		}
	})
	p := &promServer{base: fmt.Sprintf("http://127.0.0.1:%d", port), log: logPath}
	eventually(t, "prometheus ready", func() bool {
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited:\n%s", b)
		default:
		}
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

type apiResponse struct {
	Status    string          `json:"status"`
	Error     string          `json:"error"`
	ErrorType string          `json:"errorType"`
	Data      json.RawMessage `json:"data"`
}

func (p *promServer) get(path string, params url.Values) (json.RawMessage, error) {
	u := p.base + path
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r apiResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d: %w", path, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s %v: %s: %s", path, params, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

type queryData struct {
	ResultType string            `json:"resultType"`
	Result     []json.RawMessage `json:"result"`
}

// value runs an instant query expected to give one sample; -1 if none.
func (p *promServer) value(expr string) float64 {
	raw, err := p.get("/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return -1
	}
	var d struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	if json.Unmarshal(raw, &d) != nil || len(d.Result) == 0 {
		return -1
	}
	s, _ := d.Result[0].Value[1].(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return f
}

// resultCount runs expr as Grafana would (instant, or a range over the last
// two minutes) and returns how many series or values came back.
func (p *promServer) resultCount(t *testing.T, expr string, instant bool) int {
	t.Helper()
	var raw json.RawMessage
	var err error
	now := time.Now()
	if instant {
		raw, err = p.get("/api/v1/query", url.Values{"query": {expr}, "time": {strconv.FormatInt(now.Unix(), 10)}})
	} else {
		raw, err = p.get("/api/v1/query_range", url.Values{"query": {expr},
			"start": {strconv.FormatInt(now.Add(-2*time.Minute).Unix(), 10)}, "end": {strconv.FormatInt(now.Unix(), 10)}, "step": {"1"}})
	}
	require.NoError(t, err, expr)
	var d queryData
	require.NoError(t, json.Unmarshal(raw, &d))
	if d.ResultType == "scalar" || d.ResultType == "string" {
		return 1
	}
	return len(d.Result)
}

type ruleState struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

func (p *promServer) rules(t *testing.T) []ruleState {
	t.Helper()
	raw, err := p.get("/api/v1/rules", nil)
	require.NoError(t, err)
	var d struct {
		Groups []struct {
			Rules []ruleState `json:"rules"`
		} `json:"groups"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	var out []ruleState
	for _, g := range d.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

func (p *promServer) labelValues(t *testing.T, label, selector string) []string {
	t.Helper()
	raw, err := p.get("/api/v1/label/"+label+"/values", url.Values{"match[]": {selector}})
	require.NoError(t, err)
	var out []string
	require.NoError(t, json.Unmarshal(raw, &out))
	slices.Sort(out)
	return out
}

// TestFluxQueriesOnInfluxDB writes checks in upwatch's measurement schema to
// a real InfluxDB (1.8 with Flux, or 2.x) and runs every dashboard Flux
// query: each must return rows. It needs UPWATCH_TEST_INFLUX_URL.
func TestFluxQueriesOnInfluxDB(t *testing.T) {
	base := os.Getenv("UPWATCH_TEST_INFLUX_URL")
	if base == "" {
		t.Skip("UPWATCH_TEST_INFLUX_URL is not set (an InfluxDB with Flux and the /api/v2 endpoints)")
	}
	base = strings.TrimRight(base, "/")
	token := os.Getenv("UPWATCH_TEST_INFLUX_TOKEN") // "" or user:pass on 1.8
	bucket := os.Getenv("UPWATCH_TEST_INFLUX_BUCKET")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}}
	do := func(req *http.Request) (string, int) {
		t.Helper()
		if token != "" {
			req.Header.Set("Authorization", "Token "+token)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(b), resp.StatusCode
	}
	if bucket == "" {
		// InfluxDB 1.8: a database of our own; its bucket is db/rp.
		db := "upwatch_grafana_test"
		req, _ := http.NewRequest(http.MethodPost, base+"/query", strings.NewReader(url.Values{"q": {"CREATE DATABASE " + db}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		body, code := do(req)
		require.Equal(t, http.StatusOK, code, "CREATE DATABASE: %s (set UPWATCH_TEST_INFLUX_BUCKET for InfluxDB 2)", body)
		bucket = db + "/autogen"
	}
	org := os.Getenv("UPWATCH_TEST_INFLUX_ORG")

	// Ten minutes of checks for two targets, one of them failing.
	now := time.Now().Truncate(time.Second)
	var lp strings.Builder
	for i := range 20 {
		ts := now.Add(-time.Duration(20-i) * 30 * time.Second).Unix()
		fmt.Fprintf(&lp, `upwatch_check,target_id=web,target=web,tenant=default,location=testloc,kind=http up=1i,duration_seconds=0.12,dns_seconds=0.01,connect_seconds=0.02,tls_seconds=0.03,ttfb_seconds=0.05,transfer_seconds=0.01,status_code=200i,error_class="",error="",tls_expiry=%di,body_bytes=3i,remote_addr="127.0.0.1:443" %d`+"\n",
			now.Add(60*24*time.Hour).Unix(), ts)
		fmt.Fprintf(&lp, `upwatch_check,target_id=flaky,target=flaky,tenant=default,location=testloc,kind=http up=0i,duration_seconds=0.2,dns_seconds=0,connect_seconds=0.001,tls_seconds=0,ttfb_seconds=0.15,transfer_seconds=0.001,status_code=503i,error_class="http_status",error="status 503 not in [200]",body_bytes=18i,remote_addr="127.0.0.1:80" %d`+"\n", ts)
	}
	wq := url.Values{"bucket": {bucket}, "precision": {"s"}}
	if org != "" {
		wq.Set("org", org)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v2/write?"+wq.Encode(), strings.NewReader(lp.String()))
	body, code := do(req)
	require.Equal(t, http.StatusNoContent, code, "write: %s", body)

	n := 0
	for _, d := range loadDashboards(t) {
		for _, q := range d.fluxQueries() {
			n++
			var tried []string
			found := false
			for _, target := range []string{"(web|flaky)", "flaky", "web"} {
				if d.variable("target") != nil && !d.variable("target").Multi && strings.HasPrefix(target, "(") {
					continue
				}
				flux, err := expand(q.expr, map[string]string{"target": target, "location": ".+", "bucket": bucket})
				require.NoError(t, err)
				flux = strings.NewReplacer("v.timeRangeStart", "-1h", "v.timeRangeStop", "now()", "v.windowPeriod", "1m").Replace(flux)
				qq := url.Values{}
				if org != "" {
					qq.Set("org", org)
				}
				req, _ := http.NewRequest(http.MethodPost, base+"/api/v2/query?"+qq.Encode(), strings.NewReader(flux))
				req.Header.Set("Content-Type", "application/vnd.flux")
				req.Header.Set("Accept", "application/csv")
				body, code := do(req)
				require.Equal(t, http.StatusOK, code, "%s:\n%s\n→ %s", q.where, flux, body)
				rows := csvRows(body)
				require.NotContains(t, body, ",error,reference", "%s:\n%s\n→ %s", q.where, flux, body)
				tried = append(tried, fmt.Sprintf("target %s → %d rows", target, rows))
				if rows > 0 {
					found = true
					break
				}
			}
			require.True(t, found, "%s returned no rows: %v", q.where, tried)
		}
	}
	require.Positive(t, n)
	t.Logf("ran %d Flux queries against %s", n, base)
}

// csvRows counts data rows in Flux's annotated CSV (tables are separated by
// blank lines, each starting with a header row).
func csvRows(body string) int {
	rows, header := 0, true
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
			header = true
		case strings.HasPrefix(line, "#"):
		case header:
			header = false
		default:
			rows++
		}
	}
	return rows
}
