// Package config reads upwatch's YAML file, applies UPWATCH_* environment
// overrides and defaults, and validates the result, reporting every problem
// with the path of the field it is in.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/prober/schedule"
	"github.com/upwatch/upwatch/quota"
	"github.com/upwatch/upwatch/secret"
)

// Defaults.
const (
	DefaultListen      = "127.0.0.1:8080"
	DefaultDataDir     = "./data"
	DefaultStorage     = "sqlite"
	DefaultRawDays     = 30
	DefaultRollupDays  = 5 * 365
	DefaultWorkers     = 256
	DefaultStartWindow = schedule.DefaultCoalesce
	MaxStartWindow     = schedule.MaxCoalesce
	DefaultLocation    = "local"
	DefaultLogLevel    = "info"
	DefaultLogFormat   = "text"
	maxConfigFileBytes = 16 << 20
)

// Config is the whole file. Field comments are the reference;
// CONFIGURATION.md repeats them for users.
type Config struct {
	// Listen is the address of the HTTP server (/metrics, /healthz, ...).
	Listen string `yaml:"listen"`
	// DataDir holds the embedded database.
	DataDir string  `yaml:"data_dir"`
	Storage Storage `yaml:"storage"`
	// Registry holds tenants, API objects, alert state and the outbox.
	Registry Registry `yaml:"registry"`
	// Location names this prober; every sample carries it.
	Location string `yaml:"location"`
	// AllowPrivateTargets lets checks reach loopback, private and
	// link-local addresses (the SSRF guard is on by default).
	AllowPrivateTargets bool `yaml:"allow_private_targets"`
	// Workers bounds how many checks run at once.
	Workers int `yaml:"workers"`
	// StartWindow: the checks due within each window of this length start
	// together at its end (default 10ms; 0 starts each at its slot, for a
	// shorter lag tail at more CPU). See CONFIGURATION.md.
	StartWindow *time.Duration `yaml:"start_window"`
	// Demo serves /demo/* endpoints (one of them fails now and then) so a
	// new user has something to watch without internet access.
	Demo bool `yaml:"demo"`
	Log  Log  `yaml:"log"`
	// Quotas limit each tenant's API targets (count, minimum interval,
	// checks per second); config-file targets are exempt.
	Quotas quota.Config `yaml:"quotas"`
	// API tunes the REST API's protections; Metrics guards /metrics.
	API     API     `yaml:"api"`
	Metrics Metrics `yaml:"metrics"`
	Debug   Debug   `yaml:"debug"`
	// Web tunes the web interface (sessions, public URL).
	Web Web `yaml:"web"`
	// Server and Agents: local checks and probe agents (upwatch agent).
	Server Server `yaml:"server"`
	Agents Agents `yaml:"agents"`
	// StatusPages configures the public status pages.
	StatusPages StatusPages `yaml:"status_pages"`

	Alerting      Alerting          `yaml:"alerting"`
	ContactGroups []ContactGroup    `yaml:"contact_groups"`
	Policies      []AlertPolicy     `yaml:"alert_policies"`
	Maintenance   []alerting.Window `yaml:"maintenance"`
	// Targets are the checks to run: this file's, then those of the files
	// Include names.
	Targets []Target `yaml:"targets"`
	// Include names more files of targets, each holding a "targets:" list
	// and nothing else: glob patterns relative to this file's directory
	// (e.g. "targets.d/*.yaml"), read in order, each match once.
	Include []string `yaml:"include"`

	included []includedFile // where Targets from included files came from
}

// Storage chooses and tunes the sample store.
type Storage struct {
	// Type is "sqlite" (embedded, the default) or "influxdb".
	Type      string    `yaml:"type"`
	Retention Retention `yaml:"retention"`
	// InfluxDB configures type influxdb.
	InfluxDB InfluxDB `yaml:"influxdb"`
	// VictoriaMetrics, when its URL is set, receives a copy of every
	// sample whatever the type.
	VictoriaMetrics VictoriaMetrics `yaml:"victoriametrics"`
	// WAL is the write-ahead log in front of the store.
	WAL WAL `yaml:"wal"`
}

// StartWindowOrDefault is StartWindow, or its default when it is not set
// (a Config that was not normalised).
func (c *Config) StartWindowOrDefault() time.Duration {
	if c.StartWindow == nil {
		return DefaultStartWindow
	}
	return *c.StartWindow
}

// Retention says how long data is kept.
type Retention struct {
	// RawDays keeps raw samples this many days.
	RawDays int `yaml:"raw_days"`
	// RollupDays keeps hourly rollups (what SLA reports read) this many days.
	RollupDays int `yaml:"rollup_days"`
}

// Log configures the process log.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// RawRetention is RawDays as a duration.
func (r Retention) RawRetention() time.Duration { return time.Duration(r.RawDays) * 24 * time.Hour }

// RollupRetention is RollupDays as a duration.
func (r Retention) RollupRetention() time.Duration {
	return time.Duration(r.RollupDays) * 24 * time.Hour
}

// Error lists every problem found in a config.
type Error struct {
	Source string // file name, or "" for config built in code
	Errors []invalid.Field
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid config")
	if e.Source != "" {
		fmt.Fprintf(&b, " %s", e.Source)
	}
	fmt.Fprintf(&b, " (%d problem", len(e.Errors))
	if len(e.Errors) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, fe := range e.Errors {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Load reads path, applies env overrides from getenv (os.Getenv in
// production), defaults, and validates. A config that does not parse or
// validate returns *Error (or a parse error naming the line).
func Load(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	return Parse(f, path, getenv)
}

// Parse is Load for a reader; name is used in messages.
func Parse(r io.Reader, name string, getenv func(string) string) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxConfigFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	if len(data) > maxConfigFileBytes {
		return nil, fmt.Errorf("config %s: larger than %d bytes", name, maxConfigFileBytes)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	// Fields of the wrong type or unknown are reported together with what
	// validation finds in the rest, so one run lists every problem.
	var problems []invalid.Field
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		fields, fatal := decodeProblems(err, data, reflect.TypeFor[Config]())
		if fatal != nil {
			return nil, fmt.Errorf("config %s: %w", name, fatal)
		}
		problems = fields
	}
	if err := c.readIncludes(filepath.Dir(name), name); err != nil {
		return nil, err
	}
	var refErrs []invalid.Field
	for i := range c.ContactGroups {
		refErrs = append(refErrs, c.ContactGroups[i].Destinations.resolveSecrets(fmt.Sprintf("contact_groups[%d]", i))...)
	}
	if len(refErrs) > 0 {
		return nil, &Error{Source: name, Errors: c.locate(refErrs)}
	}
	if getenv != nil {
		problems = append(problems, c.applyEnv(getenv)...)
	}
	c.Normalize()
	if errs := c.Validate(); len(errs) > 0 {
		problems = append(problems, c.locate(withoutConsequences(errs, problems))...)
	}
	if len(problems) > 0 {
		return nil, &Error{Source: name, Errors: problems}
	}
	return &c, nil
}

// envOverrides maps UPWATCH_* variables to the fields they set.
func (c *Config) applyEnv(getenv func(string) string) []invalid.Field {
	var errs []invalid.Field
	str := map[string]*string{
		"UPWATCH_LISTEN":        &c.Listen,
		"UPWATCH_DATA_DIR":      &c.DataDir,
		"UPWATCH_STORAGE":       &c.Storage.Type,
		"UPWATCH_LOCATION":      &c.Location,
		"UPWATCH_LOG_LEVEL":     &c.Log.Level,
		"UPWATCH_LOG_FORMAT":    &c.Log.Format,
		"UPWATCH_REGISTRY":      &c.Registry.Type,
		"UPWATCH_ADVERTISE_URL": &c.Server.AdvertiseURL,

		"UPWATCH_INFLUXDB_URL":    &c.Storage.InfluxDB.URL,
		"UPWATCH_INFLUXDB_ORG":    &c.Storage.InfluxDB.Org,
		"UPWATCH_INFLUXDB_BUCKET": &c.Storage.InfluxDB.Bucket,
	}
	for name, dst := range str {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("UPWATCH_INFLUXDB_TOKEN"); v != "" {
		c.Storage.InfluxDB.Token = secret.New(v)
	}
	ints := map[string]*int{
		"UPWATCH_WORKERS":               &c.Workers,
		"UPWATCH_RETENTION_RAW_DAYS":    &c.Storage.Retention.RawDays,
		"UPWATCH_RETENTION_ROLLUP_DAYS": &c.Storage.Retention.RollupDays,
		"UPWATCH_AGENTS_MAX_BATCH":      &c.Agents.MaxBatch,
	}
	for name, dst := range ints {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, invalid.Field{Path: "env " + name, Msg: "must be a whole number"})
				continue
			}
			*dst = n
		}
	}
	if getenv("UPWATCH_START_WINDOW") != "" && c.StartWindow == nil {
		c.StartWindow = new(time.Duration) // set below
	}
	durations := map[string]*time.Duration{
		"UPWATCH_AGENTS_TTL":           &c.Agents.TTL,
		"UPWATCH_REGISTRY_LEASE_TTL":   &c.Registry.Lease.TTL,
		"UPWATCH_REGISTRY_LEASE_RENEW": &c.Registry.Lease.Renew,
		"UPWATCH_START_WINDOW":         c.StartWindow,
	}
	for name, dst := range durations {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, invalid.Field{Path: "env " + name, Msg: "must be a duration such as 15s"})
				continue
			}
			*dst = d
		}
	}
	if v := getenv("UPWATCH_SERVER_CHECK_LOCALLY"); v != "" {
		if b, err := strconv.ParseBool(v); err != nil {
			errs = append(errs, invalid.Field{Path: "env UPWATCH_SERVER_CHECK_LOCALLY", Msg: "must be true or false"})
		} else {
			c.Server.CheckLocally = &b
		}
	}
	bools := map[string]*bool{
		"UPWATCH_ALLOW_PRIVATE_TARGETS": &c.AllowPrivateTargets,
		"UPWATCH_DEMO":                  &c.Demo,
	}
	for name, dst := range bools {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, invalid.Field{Path: "env " + name, Msg: "must be true or false"})
				continue
			}
			*dst = b
		}
	}
	return errs
}

// Normalize fills in defaults, in place.
func (c *Config) Normalize() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Listen, DefaultListen)
	def(&c.DataDir, DefaultDataDir)
	def(&c.Storage.Type, DefaultStorage)
	def(&c.Location, DefaultLocation)
	def(&c.Log.Level, DefaultLogLevel)
	def(&c.Log.Format, DefaultLogFormat)
	if c.Storage.Retention.RawDays == 0 {
		c.Storage.Retention.RawDays = DefaultRawDays
	}
	if c.Storage.Retention.RollupDays == 0 {
		c.Storage.Retention.RollupDays = DefaultRollupDays
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.StartWindow == nil {
		w := DefaultStartWindow
		c.StartWindow = &w
	}
	c.Quotas.Normalize()
	c.Metrics.normalize()
	c.Registry.normalize()
	c.Web.normalize()
	c.Agents.normalize()
	c.normalizeInflux()
	c.normalizeVictoria()
	c.normalizeWAL()
	c.expandListen()
	for i := range c.Targets {
		c.Targets[i].Normalize()
	}
}

// ListenPlaceholder in a target's URL or address stands for the address
// upwatch itself listens on, after -listen and UPWATCH_LISTEN, so targets
// on upwatch's own endpoints (the demo ones) follow it to another port.
const ListenPlaceholder = "{listen}"

// expandListen replaces ListenPlaceholder in targets with the address to
// reach this process at: the listen address, with an unspecified host
// ("0.0.0.0", "::", "") reached on loopback.
func (c *Config) expandListen() {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return // Validate names the listen address
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	self := net.JoinHostPort(host, port)
	expand := func(s *string) { *s = strings.ReplaceAll(*s, ListenPlaceholder, self) }
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.HTTP != nil {
			expand(&t.HTTP.URL)
		}
		if t.TCP != nil {
			expand(&t.TCP.Address)
		}
		if t.TLS != nil {
			expand(&t.TLS.Address)
		}
		if t.DNS != nil {
			expand(&t.DNS.Server)
		}
	}
}

// Validate returns every problem, each with its path. Call Normalize first.
func (c *Config) Validate() []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if _, _, err := splitHostPort(c.Listen); err != nil {
		add("listen", "%v", err)
	}
	if c.Storage.Type != "sqlite" && c.Storage.Type != "influxdb" {
		add("storage.type", "unknown storage %q (want sqlite or influxdb)", c.Storage.Type)
	}
	errs = append(errs, c.validateInflux()...)
	errs = append(errs, c.validateVictoria()...)
	errs = append(errs, c.validateWAL()...)
	errs = append(errs, c.Agents.validate()...)
	errs = append(errs, c.Server.TLS.validate()...)
	errs = append(errs, c.Server.validate()...)
	if c.Storage.Retention.RawDays < 1 {
		add("storage.retention.raw_days", "must be at least 1")
	}
	if c.Storage.Retention.RollupDays < c.Storage.Retention.RawDays {
		add("storage.retention.rollup_days", "must be at least raw_days (%d)", c.Storage.Retention.RawDays)
	}
	if c.Workers < 1 || c.Workers > 10000 {
		add("workers", "must be between 1 and 10000")
	}
	if w := c.StartWindow; w != nil && (*w < 0 || *w > MaxStartWindow) {
		add("start_window", "must be between 0 and %s (got %s)", MaxStartWindow, *w)
	}
	if !validLocation(c.Location) {
		add("location", "must be 1-64 letters, digits, '-', '_' or '.' (got %q)", c.Location)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "must be debug, info, warn or error (got %q)", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		add("log.format", "must be text or json (got %q)", c.Log.Format)
	}
	seen := make(map[string]int, len(c.Targets))
	for i := range c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		errs = append(errs, c.Targets[i].Validate(p)...)
		errs = append(errs, c.Targets[i].ResolveRefs(p)...)
		id := c.Targets[i].ID
		if j, dup := seen[id]; dup && id != "" {
			add(p+".id", "%q is already used by %s (give one of them a distinct id or name)", id, c.TargetPath(j))
		} else {
			seen[id] = i
		}
	}
	errs = append(errs, c.Quotas.Validate("quotas")...)
	errs = append(errs, c.Registry.validate()...)
	errs = append(errs, c.validateAccess()...)
	errs = append(errs, c.Web.validate()...)
	errs = append(errs, c.StatusPages.validate()...)
	return append(errs, c.validateAlerting()...)
}

func validLocation(s string) bool {
	return prober.ValidLocation(s)
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("must be host:port, e.g. 127.0.0.1:8080 (%v)", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("port %q must be 0-65535", port)
	}
	return host, n, nil
}
