// Command upwatch watches sites and endpoints: see `upwatch help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/upwatch/upwatch/app"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/procs"
)

// Set by the linker (see Makefile).
var (
	version  = "dev"
	revision = "unknown"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // a check failed, or the service stopped with an error
	exitUsage   = 2 // bad flags or an invalid config
	defaultConf = "upwatch.yaml"
)

func main() {
	procs.Tune(os.Getenv)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

const usage = `upwatch - uptime monitoring

Usage:
  upwatch serve [flags]            run the service (probe, store, expose /metrics)
  upwatch agent -server URL -key uw_... -location NAME [flags]
                                   check a server's targets from another place
  upwatch check [flags] TARGET     run one check now and print every phase timing
  upwatch config validate [flags]  check a config file and list every problem
  upwatch keygen api-key|master-key
                                   print a new admin API key or master key
  upwatch report decrypt -key-file KEY [FILE|-]
                                   open an encrypted SLA report and print its JSON
  upwatch user add -tenant T -name N -role R
                                   add a web interface user (password on stdin)
  upwatch version                  print the version

TARGET is the id or name of a target in the config, or a URL:
  http://… https://…  tcp://host:port  tls://host:port  dns://[server:port]/name?type=A

Run 'upwatch COMMAND -help' for a command's flags. Every config field can
also be set with an UPWATCH_* environment variable; see CONFIGURATION.md.
`

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr, getenv)
	case "agent":
		return agentCmd(args[1:], stdout, stderr, getenv)
	case "check":
		return check(args[1:], stdout, stderr, getenv)
	case "config":
		if len(args) < 2 || args[1] != "validate" {
			fmt.Fprintln(stderr, "usage: upwatch config validate [-config FILE]")
			return exitUsage
		}
		return validate(args[2:], stdout, stderr, getenv)
	case "keygen":
		return keygen(args[1:], stdout, stderr)
	case "report":
		return reportCmd(args[1:], stdout, stderr, getenv)
	case "user":
		return userCmd(args[1:], os.Stdin, stdout, stderr, getenv)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionLine())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "upwatch: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// versionLine names the version, the revision and the Go release once each.
// A build without the Makefile's linker flags takes the revision Go
// stamped into the binary, if any.
func versionLine() string {
	rev := revision
	if rev == "unknown" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" && s.Value != "" {
					rev = s.Value
				}
			}
		}
	}
	return fmt.Sprintf("upwatch %s (revision %s, %s)", version, rev, runtime.Version())
}

// configFlags are the flags every command that reads a config shares. A
// flag given on the command line wins over UPWATCH_* variables, which win
// over the file.
type configFlags struct {
	path    string
	listen  string
	dataDir string
	logLvl  string
}

func (c *configFlags) register(fs *flag.FlagSet, getenv func(string) string, serve bool) {
	def := getenv("UPWATCH_CONFIG")
	if def == "" {
		def = defaultConf
	}
	fs.StringVar(&c.path, "config", def, "config file (env UPWATCH_CONFIG)")
	if serve {
		fs.StringVar(&c.listen, "listen", "", "HTTP listen address, overrides listen (env UPWATCH_LISTEN)")
		fs.StringVar(&c.dataDir, "data-dir", "", "data directory, overrides data_dir (env UPWATCH_DATA_DIR)")
		fs.StringVar(&c.logLvl, "log-level", "", "debug, info, warn or error (env UPWATCH_LOG_LEVEL)")
	}
}

// env layers the flags over the process environment.
func (c *configFlags) env(getenv func(string) string) func(string) string {
	flags := map[string]string{"UPWATCH_LISTEN": c.listen, "UPWATCH_DATA_DIR": c.dataDir, "UPWATCH_LOG_LEVEL": c.logLvl}
	return func(name string) string {
		if v := flags[name]; v != "" {
			return v
		}
		return getenv(name)
	}
}

func (c *configFlags) load(getenv func(string) string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(c.path, c.env(getenv))
	if err != nil {
		fmt.Fprintln(stderr, "upwatch:", err)
		return nil, false
	}
	return cfg, true
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: upwatch %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags returns an exit code and false when the command should stop.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

func serve(args []string, _, stderr io.Writer, getenv func(string) string) int {
	fs := newFlagSet("serve", "serve [flags]", stderr)
	var cf configFlags
	cf.register(fs, getenv, true)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "upwatch serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	cfg, ok := cf.load(getenv, stderr)
	if !ok {
		return exitUsage
	}
	log := newLogger(stderr, cfg.Log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()

	err := app.Run(ctx, app.Options{
		Config: cfg, ConfigPath: cf.path, Getenv: cf.env(getenv), Logger: log, Reload: reload,
		Version: version, Revision: revision,
	})
	if err != nil {
		fmt.Fprintln(stderr, "upwatch:", err)
		return exitFailed
	}
	return exitOK
}

func validate(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlagSet("config validate", "config validate [-config FILE]", stderr)
	var cf configFlags
	cf.register(fs, getenv, false)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, ok := cf.load(getenv, stderr)
	if !ok {
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: ok (%d targets)\n", cf.path, len(cfg.Targets))
	return exitOK
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
