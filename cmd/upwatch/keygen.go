package main

import (
	"fmt"
	"io"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/crypt"
)

// keygen prints a new secret for first-time setup: an admin API key for
// UPWATCH_BOOTSTRAP_KEY, or a master key for UPWATCH_MASTER_KEY. Nothing is
// stored; the caller keeps it.
func keygen(args []string, stdout, stderr io.Writer) int {
	const usage = `usage: upwatch keygen api-key|master-key
  api-key     a new admin API key, for UPWATCH_BOOTSTRAP_KEY
  master-key  a new master key, for UPWATCH_MASTER_KEY (encrypts credentials at rest)`
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprintln(stdout, usage)
		return exitOK
	}
	if len(args) != 1 || (args[0] != "api-key" && args[0] != "master-key") {
		fmt.Fprintln(stderr, usage)
		return exitUsage
	}
	var key string
	var err error
	if args[0] == "api-key" {
		key, _, _, err = api.NewKey()
	} else {
		key, err = crypt.GenerateMasterKey()
	}
	if err != nil {
		fmt.Fprintln(stderr, "upwatch keygen:", err)
		return exitFailed
	}
	fmt.Fprintln(stdout, key)
	return exitOK
}
