package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/prober"
)

func check(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := newFlagSet("check", "check [flags] TARGET", stderr)
	var cf configFlags
	cf.register(fs, getenv, false)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	timeout := fs.Duration("timeout", 0, "timeout of an ad hoc check (default 10s; a configured target keeps its own)")
	allowPrivate := fs.Bool("allow-private", false, "let an ad hoc check reach loopback and private addresses")
	insecure := fs.Bool("insecure", false, "accept any certificate (https and tcp+TLS checks; a tls check exists to verify it)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: upwatch check [flags] TARGET (a target id or name from the config, or a URL)")
		return exitUsage
	}
	arg := fs.Arg(0)

	var tgt prober.Target
	location, private := "local", *allowPrivate
	if strings.Contains(arg, "://") {
		t, err := adHocTarget(arg)
		if err != nil {
			fmt.Fprintf(stderr, "upwatch check: %v\n", err)
			return exitUsage
		}
		tgt = t
		if *timeout > 0 {
			tgt.Timeout, tgt.Interval = *timeout, max(*timeout, prober.DefaultInterval)
		}
	} else {
		cfg, ok := cf.load(getenv, stderr)
		if !ok {
			return exitUsage
		}
		found := false
		for _, t := range cfg.Targets {
			if t.ID == arg || t.Name == arg {
				tgt, found = t.Target, true
				break
			}
		}
		if !found {
			fmt.Fprintf(stderr, "upwatch check: no target with id or name %q in %s\n", arg, cf.path)
			return exitUsage
		}
		location, private = cfg.Location, cfg.AllowPrivateTargets || *allowPrivate
	}
	if *insecure {
		if err := skipVerify(&tgt); err != nil {
			fmt.Fprintf(stderr, "upwatch check: -insecure: %v\n", err)
			return exitUsage
		}
	}
	tgt.Normalize()
	if errs := tgt.Validate("target"); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(stderr, "upwatch check:", e)
		}
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res := prober.New(prober.Options{Location: location, AllowPrivate: private}).Check(ctx, &tgt)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(api.SampleDocument(res))
	} else {
		printResult(stdout, &tgt, res)
	}
	if !res.Success {
		return exitFailed
	}
	return exitOK
}

// skipVerify turns certificate verification off for t, where a check has
// one to turn off.
func skipVerify(t *prober.Target) error {
	switch {
	case t.HTTP != nil:
		t.HTTP.TLS.InsecureSkipVerify = true
	case t.TCP != nil && t.TCP.TLS:
		t.TCP.TLSConfig.InsecureSkipVerify = true
	case t.TLS != nil:
		return errors.New("a tls check exists to verify the certificate; check https:// to reach the server anyway")
	default:
		return fmt.Errorf("a %s check has no certificate to accept", t.Kind)
	}
	return nil
}

// adHocTarget builds a target from a URL given on the command line.
func adHocTarget(raw string) (prober.Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return prober.Target{}, fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	t := prober.Target{Name: u.Host, Kind: u.Scheme}
	switch u.Scheme {
	case "http", "https":
		t.Kind = "http"
		t.HTTP = &prober.HTTPSpec{URL: raw}
	case "tcp":
		t.TCP = &prober.TCPSpec{Address: u.Host}
	case "tls":
		t.TLS = &prober.TLSSpec{Address: u.Host}
	case "dns":
		name := strings.TrimPrefix(u.Path, "/")
		t.Name = name
		t.DNS = &prober.DNSSpec{Name: name, Server: u.Host, Type: u.Query().Get("type")}
	default:
		return prober.Target{}, fmt.Errorf("unsupported scheme %q (want http, https, tcp, tls or dns)", u.Scheme)
	}
	if t.Name == "" {
		t.Name = "adhoc"
	}
	return t, nil
}

func printResult(w io.Writer, t *prober.Target, r prober.Result) {
	verdict := "UP"
	if !r.Success {
		verdict = "DOWN"
	}
	row := func(k, format string, a ...any) { fmt.Fprintf(w, "%-12s "+format+"\n", append([]any{k}, a...)...) }
	row("target", "%s (%s, from %s)", t.ID, t.Kind, r.Location)
	row("result", "%s", verdict)
	if !r.Success {
		row("error", "%s: %s", r.ErrorClass, r.Error)
	}
	if r.StatusCode != 0 {
		row("status", "%d", r.StatusCode)
	}
	if r.RemoteAddr != "" {
		row("remote", "%s", r.RemoteAddr)
	}
	ph := r.Phases
	row("dns", "%s", ms(ph.DNS))
	row("connect", "%s", ms(ph.Connect))
	row("tls", "%s", ms(ph.TLS))
	if t.Kind == "http" {
		row("ttfb", "%s", ms(ph.TTFB))
		row("transfer", "%s", ms(ph.Transfer))
		row("body", "%d bytes", r.BodyBytes)
	}
	row("total", "%s", ms(r.Duration))
	if !r.TLSExpiry.IsZero() {
		row("tls expiry", "%s (in %d days)", r.TLSExpiry.UTC().Format(time.RFC3339), int(time.Until(r.TLSExpiry).Hours()/24))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
