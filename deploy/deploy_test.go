package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/config"
)

const root = ".." // the repository, where docker-compose.yml and the build context are

// ---------------------------------------------------------------- Prometheus

// promtool finds promtool, or skips (fails with UPWATCH_REQUIRE_PROMTOOL).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("UPWATCH_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool is not on PATH and UPWATCH_REQUIRE_PROMTOOL is set (apt-get install --no-install-recommends prometheus)")
		}
		t.Skip("promtool is not on PATH (Debian package prometheus); set UPWATCH_REQUIRE_PROMTOOL=1 to make this a failure")
	}
	return p
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

func TestPromtoolCheckConfig(t *testing.T) {
	out := run(t, "prometheus", promtool(t), "check", "config", "prometheus.yml")
	require.Contains(t, out, "SUCCESS")
	require.Contains(t, out, "rules.yml", "prometheus.yml must load rules.yml")
}

func TestPromtoolCheckRules(t *testing.T) {
	out := run(t, "prometheus", promtool(t), "check", "rules", "rules.yml")
	require.Contains(t, out, "SUCCESS")
}

func TestPromtoolTestRules(t *testing.T) {
	out := run(t, "prometheus", promtool(t), "test", "rules", "rules_test.yml")
	require.Contains(t, out, "SUCCESS")
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlertRulesAreComplete checks the alerts the docs promise exist, carry
// a severity and a summary, and are each covered by a unit test.
func TestAlertRulesAreComplete(t *testing.T) {
	var rf ruleFile
	b, err := os.ReadFile("prometheus/rules.yml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &rf))
	tests, err := os.ReadFile("prometheus/rules_test.yml")
	require.NoError(t, err)
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			require.Contains(t, []string{"critical", "warning", "info"}, r.Labels["severity"], r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], r.Alert)
			require.NotEmpty(t, r.Annotations["description"], r.Alert)
			require.Regexp(t, `alertname: `+r.Alert+`\n\s+exp_alerts:\s*\n\s+- exp_labels`, string(tests),
				"%s has no unit test in rules_test.yml that expects it to fire", r.Alert)
		}
	}
	for _, want := range []string{"TargetDown", "TargetFlapping", "CertificateExpiringSoon", "SchedulerLagging", "ChecksMissed", "NotificationsFailing"} {
		require.Contains(t, alerts, want)
	}
}

// ---------------------------------------------------------------- compose

type composeFile struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build *struct {
			Context    string            `yaml:"context"`
			Dockerfile string            `yaml:"dockerfile"`
			Args       map[string]string `yaml:"args"`
		} `yaml:"build"`
		Command     []string          `yaml:"command"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck *struct {
			Test        []string `yaml:"test"`
			Interval    string   `yaml:"interval"`
			Timeout     string   `yaml:"timeout"`
			Retries     int      `yaml:"retries"`
			StartPeriod string   `yaml:"start_period"`
		} `yaml:"healthcheck"`
		Restart string `yaml:"restart"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	var c composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true) // an unknown or misspelt key fails here, as in docker compose
	require.NoError(t, dec.Decode(&c))
	return c
}

var envRefRE = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}`)

func TestComposeStructure(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"influxdb", "postgres", "prometheus", "grafana", "upwatch", "agent"} {
		require.Contains(t, c.Services, name)
	}
	for name, s := range c.Services {
		t.Run(name, func(t *testing.T) {
			require.True(t, s.Image != "" || s.Build != nil, "no image or build")
			if s.Build == nil {
				require.Regexp(t, `^[a-z0-9./_-]+:v?[0-9][A-Za-z0-9._-]*$`, s.Image, "pin a version tag, not latest")
			}
			require.NotNil(t, s.Healthcheck, "no healthcheck")
			require.NotEmpty(t, s.Healthcheck.Test)
			require.Contains(t, []string{"CMD", "CMD-SHELL"}, s.Healthcheck.Test[0])
			require.NotEmpty(t, s.Restart)
			for _, p := range s.Ports {
				require.True(t, strings.HasPrefix(p, "127.0.0.1:"), "port %q must be published on 127.0.0.1 only", p)
			}
			for dep, cond := range s.DependsOn {
				other, ok := c.Services[dep]
				require.True(t, ok, "depends on unknown service %q", dep)
				require.Contains(t, []string{"service_started", "service_healthy", "service_completed_successfully"}, cond.Condition)
				if cond.Condition == "service_healthy" {
					require.NotNil(t, other.Healthcheck, "%s waits for %s to be healthy, which has no healthcheck", name, dep)
				}
			}
			for _, v := range s.Volumes {
				parts := strings.Split(v, ":")
				require.GreaterOrEqual(t, len(parts), 2, "volume %q", v)
				src, dst := parts[0], parts[1]
				require.True(t, strings.HasPrefix(dst, "/"), "volume %q: target must be absolute", v)
				if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
					require.True(t, strings.HasPrefix(src, "./"), "bind mount %q must be relative to the repository", v)
					_, err := os.Stat(filepath.Join(root, src))
					require.NoError(t, err, "bind mount %q: the host path does not exist in the repository", v)
					require.True(t, len(parts) == 3 && parts[2] == "ro", "bind mount %q should be read-only", v)
				} else {
					require.Contains(t, c.Volumes, src, "named volume %q is not declared under volumes:", src)
				}
			}
		})
	}

	// Every named volume is used.
	for v := range c.Volumes {
		used := false
		for _, s := range c.Services {
			for _, m := range s.Volumes {
				used = used || strings.HasPrefix(m, v+":")
			}
		}
		require.True(t, used, "volume %s is declared but not used", v)
	}

	// InfluxDB is initialised from the environment.
	influx := c.Services["influxdb"]
	require.Regexp(t, `^influxdb:2\.`, influx.Image)
	for _, k := range []string{"MODE", "USERNAME", "PASSWORD", "ORG", "BUCKET", "ADMIN_TOKEN"} {
		require.Contains(t, influx.Environment, "DOCKER_INFLUXDB_INIT_"+k)
	}
	require.Equal(t, "setup", influx.Environment["DOCKER_INFLUXDB_INIT_MODE"])
	for _, k := range []string{"PASSWORD", "ADMIN_TOKEN"} {
		require.Regexp(t, `^\$\{[A-Z_]+:-`, influx.Environment["DOCKER_INFLUXDB_INIT_"+k], "%s comes from the environment", k)
	}

	// upwatch: built from deploy/Dockerfile, config mounted where the
	// ENTRYPOINT reads it, listening on all interfaces inside the network,
	// storage on the stack's InfluxDB with the same org, bucket and token.
	up := c.Services["upwatch"]
	require.NotNil(t, up.Build)
	require.Equal(t, ".", up.Build.Context)
	require.Equal(t, "deploy/Dockerfile", up.Build.Dockerfile)
	require.Equal(t, "0.0.0.0:8080", up.Environment["UPWATCH_LISTEN"])
	require.Contains(t, up.Volumes, "./deploy/upwatch.docker.yaml:/etc/upwatch/upwatch.yaml:ro")
	require.Equal(t, "service_healthy", up.DependsOn["influxdb"].Condition)
	cfg := readDockerConfig(t)
	require.Equal(t, "influxdb", cfg.Storage.Type)
	require.Equal(t, "http://influxdb:8086", cfg.Storage.InfluxDB.URL)
	require.Equal(t, influx.Environment["DOCKER_INFLUXDB_INIT_ORG"], cfg.Storage.InfluxDB.Org)
	require.Equal(t, influx.Environment["DOCKER_INFLUXDB_INIT_BUCKET"], cfg.Storage.InfluxDB.Bucket)
	tokenVar, ok := strings.CutPrefix(cfg.Storage.InfluxDB.Token, "env:")
	require.True(t, ok, "the InfluxDB token must come from the environment, not the file")
	require.Equal(t, influx.Environment["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"], up.Environment[tokenVar],
		"upwatch's %s must be InfluxDB's admin token", tokenVar)

	// Prometheus: the shipped config and rules, enough retention for the
	// SLA dashboard's months.
	prom := c.Services["prometheus"]
	require.Contains(t, prom.Volumes, "./deploy/prometheus:/etc/prometheus:ro")
	require.Contains(t, prom.Command, "--config.file=/etc/prometheus/prometheus.yml")
	require.True(t, slices.ContainsFunc(prom.Command, func(s string) bool { return strings.HasPrefix(s, "--storage.tsdb.retention.time=") }))
	promCfg, err := os.ReadFile("prometheus/prometheus.yml")
	require.NoError(t, err)
	require.Contains(t, string(promCfg), "upwatch:8080", "Prometheus must scrape the upwatch service")

	// Grafana: provisioning and dashboards mounted, admin password from the
	// environment, and every ${VAR} the provisioning uses is set.
	gf := c.Services["grafana"]
	require.Contains(t, gf.Volumes, "./grafana/provisioning:/etc/grafana/provisioning:ro")
	require.Regexp(t, `^\$\{GRAFANA_ADMIN_PASSWORD`, gf.Environment["GF_SECURITY_ADMIN_PASSWORD"])
	prov, err := os.ReadFile(filepath.Join(root, "grafana/provisioning/datasources/upwatch.yaml"))
	require.NoError(t, err)
	var provNoComments strings.Builder
	for line := range strings.Lines(string(prov)) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			provNoComments.WriteString(line)
		}
	}
	for _, m := range envRefRE.FindAllStringSubmatch(provNoComments.String(), -1) {
		require.Contains(t, gf.Environment, m[1], "grafana provisioning uses ${%s}, which the grafana service does not set", m[1])
	}
	require.Equal(t, influx.Environment["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"], gf.Environment["INFLUXDB_TOKEN"])
	require.Equal(t, influx.Environment["DOCKER_INFLUXDB_INIT_ORG"], gf.Environment["INFLUXDB_ORG"])
	require.Equal(t, influx.Environment["DOCKER_INFLUXDB_INIT_BUCKET"], gf.Environment["INFLUXDB_BUCKET"])
	for _, s := range c.Services {
		for k, v := range s.Environment {
			if strings.HasSuffix(k, "_PATH") && strings.HasPrefix(v, "/etc/grafana/dashboards/") {
				_, err := os.Stat(filepath.Join(root, "grafana/dashboards", path.Base(v)))
				require.NoError(t, err, "%s=%s", k, v)
			}
		}
	}
}

type dockerConfig struct {
	Location string `yaml:"location"`
	Registry struct {
		Type     string `yaml:"type"`
		Postgres struct {
			URL string `yaml:"url"`
		} `yaml:"postgres"`
	} `yaml:"registry"`
	Targets []struct {
		Name      string   `yaml:"name"`
		Locations []string `yaml:"locations"`
		HTTP      struct {
			URL string `yaml:"url"`
		} `yaml:"http"`
	} `yaml:"targets"`
	Storage struct {
		Type     string `yaml:"type"`
		InfluxDB struct {
			URL    string `yaml:"url"`
			Org    string `yaml:"org"`
			Bucket string `yaml:"bucket"`
			Token  string `yaml:"token"`
		} `yaml:"influxdb"`
	} `yaml:"storage"`
}

// flagValue is the argument after flag in args, or "".
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// TestComposePostgresAndAgent: upwatch keeps its registry in the stack's
// PostgreSQL, and the stack's agent reaches upwatch with the key upwatch
// stores for the agent's location on start.
func TestComposePostgresAndAgent(t *testing.T) {
	c := loadCompose(t)
	pg := c.Services["postgres"]
	require.Regexp(t, `^postgres:[0-9]+\.[0-9]+`, pg.Image, "pin a PostgreSQL minor version")
	require.Regexp(t, `^\$\{POSTGRES_PASSWORD:\?`, pg.Environment["POSTGRES_PASSWORD"], "the password comes from .env and is required")
	require.Contains(t, pg.Volumes, "postgres-data:/var/lib/postgresql/data")
	require.Equal(t, "pg_isready", pg.Healthcheck.Test[1])
	require.Empty(t, pg.Ports, "PostgreSQL stays inside the compose network")

	up := c.Services["upwatch"]
	require.Equal(t, "service_healthy", up.DependsOn["postgres"].Condition)
	cfg := readDockerConfig(t)
	require.Equal(t, "postgres", cfg.Registry.Type)
	urlVar, ok := strings.CutPrefix(cfg.Registry.Postgres.URL, "env:")
	require.True(t, ok, "the PostgreSQL URL holds a password: it must come from the environment")
	require.Equal(t, fmt.Sprintf("postgres://%s:%s@postgres:5432/%s?sslmode=disable",
		pg.Environment["POSTGRES_USER"], pg.Environment["POSTGRES_PASSWORD"], pg.Environment["POSTGRES_DB"]), up.Environment[urlVar],
		"upwatch's %s must name the postgres service's user, password and database", urlVar)

	ag := c.Services["agent"]
	require.Equal(t, up.Build, ag.Build, "the agent runs the same image")
	require.Equal(t, up.Image, ag.Image)
	require.Equal(t, []string{"/usr/local/bin/upwatch", "agent"}, ag.Entrypoint[:2], "the image's entrypoint is serve")
	require.Equal(t, "http://upwatch:8080", flagValue(ag.Entrypoint, "-server"))
	require.Equal(t, "service_healthy", ag.DependsOn["upwatch"].Condition)
	loc := flagValue(ag.Entrypoint, "-location")
	require.Equal(t, "docker-agent", loc)
	require.Equal(t, loc, up.Environment["UPWATCH_BOOTSTRAP_AGENT_LOCATION"], "upwatch stores the agent key for the agent's location")
	require.Regexp(t, `^\$\{UPWATCH_AGENT_KEY:\?`, ag.Environment["UPWATCH_AGENT_KEY"])
	require.Equal(t, ag.Environment["UPWATCH_AGENT_KEY"], up.Environment["UPWATCH_BOOTSTRAP_AGENT_KEY"], "the agent's key is the one upwatch stores")
	require.Contains(t, ag.Volumes, "agent-data:"+flagValue(ag.Entrypoint, "-data-dir"), "the spool is on a volume")
	require.Equal(t, "/var/lib/upwatch", flagValue(ag.Entrypoint, "-data-dir"), "the image's nonroot user owns only /var/lib/upwatch")
	_, port, ok := strings.Cut(flagValue(ag.Entrypoint, "-listen"), ":")
	require.True(t, ok, "the agent serves /metrics (its healthcheck)")
	require.Contains(t, ag.Healthcheck.Test, "http://127.0.0.1:"+port+"/metrics")

	// Loopback targets are checked by upwatch alone (127.0.0.1 in the agent
	// is the agent), and some target is checked by the agent.
	fromAgent := false
	for _, tg := range cfg.Targets {
		if strings.Contains(tg.HTTP.URL, "127.0.0.1") {
			require.Equal(t, []string{cfg.Location}, tg.Locations, "target %s is on upwatch's loopback", tg.Name)
		}
		fromAgent = fromAgent || len(tg.Locations) == 0 || slices.Contains(tg.Locations, loc)
	}
	require.True(t, fromAgent, "no target is checked from %s", loc)
}

func readDockerConfig(t *testing.T) dockerConfig {
	t.Helper()
	b, err := os.ReadFile("upwatch.docker.yaml")
	require.NoError(t, err)
	var c dockerConfig
	require.NoError(t, yaml.Unmarshal(b, &c))
	return c
}

// TestDockerConfigValidates loads the compose stack's upwatch config with
// upwatch's own validation, with the environment the compose file gives it.
func TestDockerConfigValidates(t *testing.T) {
	c := loadCompose(t)
	// The container's environment, as compose would set it: secrets given
	// as env: references are read from the process environment.
	for k, v := range c.Services["upwatch"].Environment {
		t.Setenv(k, os.Expand(v, func(name string) string { // ${X:-default} → default
			if i := strings.Index(name, ":-"); i >= 0 {
				return name[i+2:]
			}
			return ""
		}))
	}
	_, err := config.Load("upwatch.docker.yaml", os.Getenv)
	require.NoError(t, err)
}

func TestComposeConfigWithDockerCompose(t *testing.T) {
	var cmd []string
	if p, err := exec.LookPath("docker-compose"); err == nil {
		cmd = []string{p}
	} else if p, err := exec.LookPath("docker"); err == nil && exec.Command(p, "compose", "version").Run() == nil {
		cmd = []string{p, "compose"}
	} else {
		if os.Getenv("UPWATCH_REQUIRE_DOCKER_COMPOSE") != "" {
			t.Fatal("neither docker-compose nor docker compose is available and UPWATCH_REQUIRE_DOCKER_COMPOSE is set")
		}
		t.Skip("neither docker-compose (Debian package docker-compose) nor the docker compose plugin is available")
	}
	args := append(cmd[1:], "-f", "docker-compose.yml", "config", "-q")
	// The keys are mandatory: without them the stack does not start.
	t.Setenv("UPWATCH_BOOTSTRAP_KEY", "")
	t.Setenv("UPWATCH_MASTER_KEY", "")
	c := exec.Command(cmd[0], args...)
	c.Dir = root
	out, err := c.CombinedOutput()
	require.Error(t, err, "docker-compose.yml must refuse to start without UPWATCH_BOOTSTRAP_KEY")
	require.Contains(t, string(out), "make compose-env")

	t.Setenv("UPWATCH_BOOTSTRAP_KEY", "stand-in")
	t.Setenv("UPWATCH_MASTER_KEY", "stand-in")
	t.Setenv("POSTGRES_PASSWORD", "stand-in")
	t.Setenv("UPWATCH_AGENT_KEY", "")
	c = exec.Command(cmd[0], args...)
	c.Dir = root
	out, err = c.CombinedOutput()
	require.Error(t, err, "docker-compose.yml must refuse to start without UPWATCH_AGENT_KEY")
	require.Contains(t, string(out), "make compose-env")

	t.Setenv("UPWATCH_AGENT_KEY", "stand-in")
	run(t, root, cmd[0], args...)
}

// TestComposeEnvExample: every variable docker-compose.yml requires or
// takes is in .env.example, which README and the compose file point to.
func TestComposeEnvExample(t *testing.T) {
	compose, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	example, err := os.ReadFile(filepath.Join(root, ".env.example"))
	require.NoError(t, err)
	listed := map[string]bool{}
	for _, line := range strings.Split(string(example), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			listed[strings.TrimSpace(k)] = true
		}
	}
	for _, m := range envRefRE.FindAllStringSubmatch(string(compose), -1) {
		if strings.HasPrefix(m[2], ":?") || strings.HasPrefix(m[2], "?") {
			require.True(t, listed[m[1]], ".env.example must list %s, which docker-compose.yml requires", m[1])
		}
	}
	for _, k := range []string{"UPWATCH_BOOTSTRAP_KEY", "UPWATCH_MASTER_KEY", "INFLUXDB_TOKEN", "GRAFANA_ADMIN_PASSWORD", "POSTGRES_PASSWORD", "UPWATCH_AGENT_KEY"} {
		require.True(t, listed[k], ".env.example must list %s", k)
	}
	// make compose-env writes every variable .env.example lists.
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	_, recipe, ok := strings.Cut(string(mk), "\ncompose-env:")
	require.True(t, ok, "the Makefile has no compose-env target")
	recipe, _, _ = strings.Cut(recipe, "\n\n")
	for k := range listed {
		require.Contains(t, recipe, `echo "`+k+`=`, "make compose-env does not write %s", k)
	}
}

// TestAlertmanager: the stack's Prometheus sends its alerts to the stack's
// Alertmanager, whose config amtool accepts and whose routes reach people.
func TestAlertmanager(t *testing.T) {
	c := loadCompose(t)
	am, ok := c.Services["alertmanager"]
	require.True(t, ok, "docker-compose.yml has no alertmanager")
	require.Contains(t, am.Volumes, "./deploy/alertmanager:/etc/alertmanager:ro")
	require.Contains(t, am.Command, "--config.file=/etc/alertmanager/alertmanager.yml")
	require.Equal(t, "service_healthy", c.Services["prometheus"].DependsOn["alertmanager"].Condition)

	var prom struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
	}
	b, err := os.ReadFile("prometheus/prometheus.yml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &prom))
	require.NotEmpty(t, prom.Alerting.Alertmanagers)
	require.Equal(t, []string{"alertmanager:9093"}, prom.Alerting.Alertmanagers[0].StaticConfigs[0].Targets)

	var cfg struct {
		Route struct {
			Receiver string `yaml:"receiver"`
			Routes   []struct {
				Receiver string   `yaml:"receiver"`
				Matchers []string `yaml:"matchers"`
			} `yaml:"routes"`
		} `yaml:"route"`
		Receivers []struct {
			Name         string           `yaml:"name"`
			EmailConfigs []map[string]any `yaml:"email_configs"`
		} `yaml:"receivers"`
	}
	b, err = os.ReadFile("alertmanager/alertmanager.yml")
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &cfg))
	require.NotEmpty(t, cfg.Route.Routes, "a route example")
	for _, r := range cfg.Receivers {
		require.NotEmpty(t, r.EmailConfigs, "receiver %s tells nobody", r.Name)
	}

	amtool, err := exec.LookPath("amtool")
	if err != nil {
		if os.Getenv("UPWATCH_REQUIRE_PROMTOOL") != "" {
			t.Fatal("amtool is not on PATH and UPWATCH_REQUIRE_PROMTOOL is set (apt-get install --no-install-recommends prometheus-alertmanager)")
		}
		t.Skip("amtool is not on PATH (Debian package prometheus-alertmanager)")
	}
	require.Contains(t, run(t, "alertmanager", amtool, "check-config", "alertmanager.yml"), "SUCCESS")
	// Each alert of the rules reaches a receiver; critical ones page.
	for labels, receiver := range map[string]string{"severity=critical alertname=TargetDown": "oncall", "severity=warning alertname=ChecksMissed": "team-email"} {
		args := append([]string{"config", "routes", "test", "--config.file=alertmanager.yml", "--verify.receivers=" + receiver}, strings.Fields(labels)...)
		require.Contains(t, run(t, "alertmanager", amtool, args...), receiver)
	}
}

// TestContainerConfig: the image's default config is a real service, not
// the demo: no demo endpoints, the SSRF guard on, targets from targets.d.
func TestContainerConfig(t *testing.T) {
	cfg, err := config.Load("upwatch.container.yaml", func(k string) string {
		return map[string]string{"UPWATCH_LISTEN": "0.0.0.0:8080", "UPWATCH_DATA_DIR": "/var/lib/upwatch"}[k]
	})
	require.NoError(t, err)
	require.False(t, cfg.Demo)
	require.False(t, cfg.AllowPrivateTargets)
	require.Equal(t, "sqlite", cfg.Storage.Type)
	require.Equal(t, []string{"targets.d/*.yaml"}, cfg.Include)
	var copied bool
	for _, in := range parseDockerfile(t) {
		copied = copied || (in.cmd == "COPY" && in.args == "deploy/upwatch.container.yaml /etc/upwatch/upwatch.yaml")
	}
	require.True(t, copied, "the image must ship deploy/upwatch.container.yaml as its config")
}

// ---------------------------------------------------------------- Dockerfile

type instruction struct {
	line int
	cmd  string // upper case
	args string
}

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	f, err := os.Open("Dockerfile")
	require.NoError(t, err)
	defer f.Close()
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	require.NoError(t, sc.Err())
	require.Zero(t, cur.Len(), "Dockerfile ends inside a continued line")
	return out
}

func dockerignore(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	var pats []string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			pats = append(pats, line)
		}
	}
	return pats
}

func ignored(pats []string, p string) bool {
	p = path.Clean(strings.TrimPrefix(p, "./"))
	for _, pat := range pats {
		for q := p; q != "." && q != "/"; q = path.Dir(q) { // a pattern matching a parent excludes the child
			if ok, _ := path.Match(pat, q); ok {
				return true
			}
			if strings.HasPrefix(pat, "**/") {
				if ok, _ := path.Match(pat[3:], path.Base(q)); ok {
					return true
				}
			}
		}
	}
	return false
}

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t)
	pats := dockerignore(t)
	var froms []string
	stages := map[string]bool{}
	var final struct {
		user, entrypoint, healthcheck string
		expose                        []string
	}
	var buildCmd string
	for _, in := range ins {
		where := fmt.Sprintf("Dockerfile:%d %s %s", in.line, in.cmd, in.args)
		switch in.cmd {
		case "FROM":
			froms = append(froms, in.args)
			fields := strings.Fields(in.args)
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				stages[fields[2]] = true
			}
			final.user, final.entrypoint, final.healthcheck, final.expose = "", "", "", nil
		case "COPY", "ADD":
			fields := strings.Fields(in.args)
			var srcs []string
			fromStage := false
			for _, f := range fields[:len(fields)-1] {
				if strings.HasPrefix(f, "--from=") {
					fromStage = true
					require.True(t, stages[strings.TrimPrefix(f, "--from=")], "%s: unknown stage", where)
				}
				if !strings.HasPrefix(f, "--") {
					srcs = append(srcs, f)
				}
			}
			if fromStage {
				continue
			}
			for _, src := range srcs {
				if src == "." {
					continue
				}
				_, err := os.Stat(filepath.Join(root, src))
				require.NoError(t, err, "%s: %s is not in the build context", where, src)
				require.False(t, ignored(pats, src), "%s: .dockerignore excludes %s", where, src)
			}
		case "RUN":
			if strings.Contains(in.args, "go build") {
				buildCmd = in.args
			}
		case "USER":
			final.user = in.args
		case "ENTRYPOINT":
			final.entrypoint = in.args
		case "HEALTHCHECK":
			final.healthcheck = in.args
		case "EXPOSE":
			final.expose = append(final.expose, strings.Fields(in.args)...)
		}
	}
	require.GreaterOrEqual(t, len(froms), 2, "multi-stage build")
	// Pinned: the builder to a Go patch release, the runtime by digest.
	require.Regexp(t, `^golang:1\.26\.\d+-\w+ AS build$`, froms[0])
	last := froms[len(froms)-1]
	require.True(t, strings.HasPrefix(last, "gcr.io/distroless/static") || strings.HasPrefix(last, "alpine:"), "small base image, got %s", last)
	require.Regexp(t, `@sha256:[0-9a-f]{64}$`, last, "pin the runtime image by digest")

	// A static, reproducible binary stamped with the version.
	require.Contains(t, buildCmd, "CGO_ENABLED=0")
	require.Contains(t, buildCmd, "-trimpath")
	require.Contains(t, buildCmd, "./cmd/upwatch")
	main, err := os.ReadFile(filepath.Join(root, "cmd/upwatch/main.go"))
	require.NoError(t, err)
	for _, v := range regexp.MustCompile(`-X main\.(\w+)=`).FindAllStringSubmatch(buildCmd, -1) {
		require.Regexp(t, `(?m)^\s+`+v[1]+`\s+=\s+"`, string(main), "-X main.%s: no such variable in cmd/upwatch", v[1])
	}
	require.False(t, ignored(pats, "go.mod") || ignored(pats, "cmd/upwatch/main.go"), ".dockerignore excludes the sources")
	require.True(t, ignored(pats, ".git") && ignored(pats, "data/upwatch.db"), ".dockerignore should keep .git and local data out of the context")

	// Non-root, port 8080, the config path the compose file mounts.
	require.NotEmpty(t, final.user)
	require.NotContains(t, []string{"root", "0", "0:0"}, final.user)
	require.Contains(t, final.expose, "8080")
	var entry []string
	require.NoError(t, json.Unmarshal([]byte(final.entrypoint), &entry), "ENTRYPOINT must be exec form")
	require.Equal(t, []string{"/usr/local/bin/upwatch", "serve", "-config", "/etc/upwatch/upwatch.yaml"}, entry)
	require.Contains(t, final.healthcheck, "CMD [")
}

// TestHealthcheckCommand runs the image's (and the compose file's)
// HEALTHCHECK command, built from this tree, against a healthy and an
// unhealthy /healthz: the container's health must follow.
func TestHealthcheckCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	var hc []string
	for _, in := range parseDockerfile(t) {
		if in.cmd == "HEALTHCHECK" {
			_, after, ok := strings.Cut(in.args, "CMD ")
			require.True(t, ok)
			require.NoError(t, json.Unmarshal([]byte(after), &hc))
		}
	}
	require.NotEmpty(t, hc)
	require.Equal(t, hc, loadCompose(t).Services["upwatch"].Healthcheck.Test[1:], "compose and Dockerfile health checks differ")
	require.Equal(t, "/usr/local/bin/upwatch", hc[0])
	require.Equal(t, "http://127.0.0.1:8080/healthz", hc[len(hc)-1])

	bin := upwatchBinary(t)
	var healthy atomic.Bool
	healthy.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" && healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	args := append(slices.Clone(hc[1:len(hc)-1]), srv.URL+"/healthz")
	out, err := exec.Command(bin, args...).CombinedOutput()
	require.NoError(t, err, "healthy: %s", out)
	healthy.Store(false)
	out, err = exec.Command(bin, args...).CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "unhealthy must exit non-zero: %s", out)
	require.Equal(t, 1, ee.ExitCode(), "%s", out)
}

var built struct {
	sync.Once
	path string
	err  error
}

// upwatchBinary builds cmd/upwatch once per test run.
func upwatchBinary(t *testing.T) string {
	t.Helper()
	built.Do(func() {
		dir, err := os.MkdirTemp("", "upwatch-deploy-test")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "upwatch")
		out, err := exec.Command("go", "build", "-o", built.path, "../cmd/upwatch").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, built.err)
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// ---------------------------------------------------------------- systemd, Kubernetes

func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/upwatch.service")
	require.NoError(t, err)
	unit := string(b)
	require.Contains(t, unit, "\nExecStart=/usr/local/bin/upwatch serve -config /etc/upwatch/upwatch.yaml\n")
	require.Contains(t, unit, "\nExecReload=/bin/kill -HUP $MAINPID\n", "SIGHUP reloads the targets")
	require.Contains(t, unit, "\nDynamicUser=yes\n")
	require.Contains(t, unit, "\nStateDirectory=upwatch\n")
	require.Contains(t, unit, "\nEnvironment=UPWATCH_DATA_DIR=/var/lib/upwatch\n", "the data dir is the StateDirectory")
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil || testing.Short() {
		t.Skip("systemd-analyze is not available (or -short): the unit is checked by structure only")
	}
	// systemd-analyze wants ExecStart to exist: point it at a fresh build.
	dir := t.TempDir()
	bin := upwatchBinary(t)
	p := filepath.Join(dir, "upwatch.service")
	require.NoError(t, os.WriteFile(p, []byte(strings.ReplaceAll(unit, "/usr/local/bin/upwatch", bin)), 0o644))
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify:\n%s", out)
	require.Empty(t, strings.TrimSpace(string(out)), "systemd-analyze verify warns")
}

type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []struct {
					Image string `yaml:"image"`
					Env   []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					Ports []struct {
						ContainerPort int `yaml:"containerPort"`
					} `yaml:"ports"`
					LivenessProbe  k8sProbe `yaml:"livenessProbe"`
					ReadinessProbe k8sProbe `yaml:"readinessProbe"`
					VolumeMounts   []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
	} `yaml:"httpGet"`
}

func TestKubernetesManifests(t *testing.T) {
	f, err := os.Open("k8s/upwatch.yaml")
	require.NoError(t, err)
	defer f.Close()
	dec := yaml.NewDecoder(f)
	objs := map[string]k8sObject{}
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.NotEmpty(t, o.APIVersion)
		require.NotEmpty(t, o.Metadata.Name)
		objs[o.Kind] = o
	}
	for _, k := range []string{"ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"} {
		require.Contains(t, objs, k)
	}
	dep := objs["Deployment"].Spec.Template.Spec
	require.True(t, dep.SecurityContext.RunAsNonRoot)
	require.Len(t, dep.Containers, 1)
	c := dep.Containers[0]
	require.Equal(t, 8080, c.Ports[0].ContainerPort)
	require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	require.Equal(t, "config", mounts["/etc/upwatch"], "the image reads /etc/upwatch/upwatch.yaml")
	require.Equal(t, "data", mounts["/var/lib/upwatch"], "the image keeps its data in /var/lib/upwatch")
	cfg := objs["ConfigMap"].Data["upwatch.yaml"]
	require.NotEmpty(t, cfg)
	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name)
	}
	require.Contains(t, env, "UPWATCH_LISTEN")
	for _, m := range regexp.MustCompile(`env:([A-Z0-9_]+)`).FindAllStringSubmatch(cfg, -1) {
		require.Contains(t, env, m[1], "the config reads %s, which the container does not set", m[1])
	}
}

// ---------------------------------------------------------------- GoReleaser

// TestGoReleaserConfig: the release config builds cmd/upwatch stamped with
// variables that exist, ships files that exist, and its image matches the
// main Dockerfile's runtime. `goreleaser check` runs when goreleaser is on
// PATH (make release-snapshot builds it all).
func TestGoReleaserConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	require.NoError(t, err)
	var cfg struct {
		Version int `yaml:"version"`
		Builds  []struct {
			Main    string   `yaml:"main"`
			Env     []string `yaml:"env"`
			Ldflags []string `yaml:"ldflags"`
		} `yaml:"builds"`
		Archives []struct {
			Files []string `yaml:"files"`
		} `yaml:"archives"`
		Checksum map[string]string `yaml:"checksum"`
		Sboms    []map[string]any  `yaml:"sboms"`
		Dockers  []struct {
			Dockerfile string   `yaml:"dockerfile"`
			ExtraFiles []string `yaml:"extra_files"`
		} `yaml:"dockers"`
	}
	require.NoError(t, yaml.Unmarshal(b, &cfg))
	require.Equal(t, 2, cfg.Version)
	require.Len(t, cfg.Builds, 1)
	require.Equal(t, "./cmd/upwatch", cfg.Builds[0].Main)
	require.Contains(t, cfg.Builds[0].Env, "CGO_ENABLED=0")
	main, err := os.ReadFile(filepath.Join(root, "cmd/upwatch/main.go"))
	require.NoError(t, err)
	vars := regexp.MustCompile(`-X main\.(\w+)=`).FindAllStringSubmatch(strings.Join(cfg.Builds[0].Ldflags, " "), -1)
	require.Len(t, vars, 2, "version and revision")
	for _, v := range vars {
		require.Regexp(t, `(?m)^\s+`+v[1]+`\s+=\s+"`, string(main), "-X main.%s: no such variable", v[1])
	}
	for _, a := range cfg.Archives {
		for _, pat := range a.Files {
			m, err := filepath.Glob(filepath.Join(root, pat))
			require.NoError(t, err)
			require.NotEmpty(t, m, "archive file %s matches nothing", pat)
		}
	}
	require.Equal(t, "sha256", cfg.Checksum["algorithm"])
	require.NotEmpty(t, cfg.Sboms, "an SBOM per release")
	require.Len(t, cfg.Dockers, 1)
	df, err := os.ReadFile(filepath.Join(root, cfg.Dockers[0].Dockerfile))
	require.NoError(t, err)
	for _, m := range regexp.MustCompile(`(?m)^COPY (?:--\S+ )*(\S+) `).FindAllStringSubmatch(string(df), -1) {
		if m[1] != "upwatch" {
			require.Contains(t, cfg.Dockers[0].ExtraFiles, m[1], "%s copies %s, which is not in extra_files", cfg.Dockers[0].Dockerfile, m[1])
		}
	}
	// The same runtime image, health check and entrypoint as deploy/Dockerfile.
	main2, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	for _, re := range []string{`(?m)^FROM gcr\.io/distroless/\S+`, `(?m)^ENTRYPOINT .*$`, `(?m)^\s+CMD \[.*$`} {
		want := regexp.MustCompile(re).FindString(string(main2))
		require.NotEmpty(t, want, re)
		require.Contains(t, string(df), want)
	}

	gr, err := exec.LookPath("goreleaser")
	if err != nil {
		t.Skip("goreleaser is not on PATH; the structure above was checked")
	}
	run(t, root, gr, "check")
}
