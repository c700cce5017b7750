package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/upwatch/upwatch/app"
	"github.com/upwatch/upwatch/web"
)

const userUsage = `usage: upwatch user add -tenant TENANT -name NAME -role viewer|editor|admin [-config FILE]

Adds a user of the web interface. The password is read from standard input
(its first line; when standard input is a terminal, after a prompt) and is
never a flag, so it stays out of the shell history and the process list.
Tenant "default" is created when missing; any other tenant must exist.
`

// userCmd runs `upwatch user SUBCOMMAND`.
func userCmd(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprint(stderr, userUsage)
		return exitUsage
	}
	fs := newFlagSet("user add", "user add -tenant TENANT -name NAME -role ROLE", stderr)
	var cf configFlags
	cf.register(fs, getenv, false)
	tenant := fs.String("tenant", "default", "the user's tenant")
	name := fs.String("name", "", "the user name (required)")
	role := fs.String("role", "viewer", "viewer, editor or admin")
	if code, ok := parseFlags(fs, args[1:]); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "upwatch user add: unexpected argument %q (the password is read from standard input)\n", fs.Arg(0))
		return exitUsage
	}
	cfg, ok := cf.load(getenv, stderr)
	if !ok {
		return exitUsage
	}
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(stderr, "Password (shown as you type; pipe it in to avoid that): ")
		}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, web.MaxPasswordLen+2)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "upwatch user add: reading the password:", err)
		return exitFailed
	}
	password := strings.TrimRight(line, "\r\n")
	err = app.AddUser(context.Background(), cfg, cf.env(getenv), newLogger(stderr, cfg.Log), *tenant, *name, web.Role(*role), password, time.Now)
	if err != nil {
		fmt.Fprintln(stderr, "upwatch user add:", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "user %q (%s) added to tenant %q\n", *name, *role, *tenant)
	return exitOK
}
