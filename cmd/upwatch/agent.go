package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/upwatch/upwatch/agent"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober/schedule"
)

// EnvAgentKey holds the agent key when neither -key nor -key-file is given
// (a key on the command line shows in ps).
const EnvAgentKey = "UPWATCH_AGENT_KEY"

func agentCmd(args []string, _, stderr io.Writer, getenv func(string) string) int {
	fs := newFlagSet("agent", "agent -server URL -key uw_... -location NAME [flags]", stderr)
	var o agent.Options
	var keyFile, logLevel, logFormat string
	fs.StringVar(&o.Server, "server", "", "the upwatch server's base URL (required)")
	fs.StringVar(&o.Key, "key", "", "an API key with scope agent (or -key-file, or env "+EnvAgentKey+")")
	fs.StringVar(&keyFile, "key-file", "", "a file holding the agent key")
	fs.StringVar(&o.Location, "location", "", "the location this agent checks from; must be its key's (required)")
	fs.StringVar(&o.DataDir, "data-dir", "./agent-data", "holds the agent's id and its spool of results not yet pushed")
	fs.Int64Var(&o.SpoolMaxBytes, "spool-max-bytes", 0, "bound of the spool; when full the oldest results are dropped (default 512 MiB)")
	fs.StringVar(&o.Listen, "listen", "", "serve /metrics on this address (off by default)")
	fs.StringVar(&o.PushMetrics, "push-metrics", "", "push metrics to this URL (Prometheus text format, e.g. VictoriaMetrics /api/v1/import/prometheus)")
	fs.DurationVar(&o.PushInterval, "push-interval", 15*time.Second, "how often -push-metrics pushes")
	fs.BoolVar(&o.AllowPrivateTargets, "allow-private-targets", false, "let checks reach loopback, private and link-local addresses")
	fs.IntVar(&o.Workers, "workers", 0, "checks run at once (default 64)")
	fs.DurationVar(&o.StartWindow, "start-window", schedule.DefaultCoalesce, "checks due within each window of this length start together, at its end (0: each at its slot, more CPU)")
	var tlsCert, tlsKey, tlsCA string
	fs.StringVar(&tlsCert, "tls-cert", "", "client certificate (PEM) for a server that requires one (mTLS); with -tls-key")
	fs.StringVar(&tlsKey, "tls-key", "", "the client certificate's key (PEM)")
	fs.StringVar(&tlsCA, "tls-ca", "", "CA certificate (PEM) the server's certificate must chain to, instead of the system's")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&logFormat, "log-format", "text", "text or json")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "upwatch agent: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	switch {
	case o.Key != "" && keyFile != "":
		fmt.Fprintln(stderr, "upwatch agent: give -key or -key-file, not both")
		return exitUsage
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			fmt.Fprintln(stderr, "upwatch agent: -key-file:", err)
			return exitUsage
		}
		o.Key = strings.TrimSpace(string(b))
	case o.Key == "":
		o.Key = getenv(EnvAgentKey)
	}
	if tlsCert != "" || tlsKey != "" || tlsCA != "" {
		tc, err := agent.ClientTLS(tlsCert, tlsKey, tlsCA)
		if err != nil {
			fmt.Fprintln(stderr, "upwatch", err)
			return exitUsage
		}
		o.TLS = tc
	}
	o.Version = version
	o.Logger = newLogger(stderr, config.Log{Level: logLevel, Format: logFormat})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := agent.Run(ctx, o); err != nil {
		fmt.Fprintln(stderr, "upwatch:", err)
		return exitUsage
	}
	return exitOK
}
