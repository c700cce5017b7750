package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/upwatch/upwatch/report"
)

// maxReportBytes bounds how much of a token report decrypt reads.
const maxReportBytes = 64 << 20

const reportUsage = `usage: upwatch report decrypt -key-file KEY [FILE|-]

Opens an encrypted SLA report (a JWE from GET /api/v1/reports/sla) with a
report key and prints its JSON. KEY is the JWK the API showed when the key
was created, or a JWK Set {"keys":[...]} holding current and retired keys.
The token is read from FILE, or from standard input when FILE is "-" or
absent.
`

// reportCmd runs `upwatch report SUBCOMMAND`.
func reportCmd(args []string, stdout, stderr io.Writer, _ func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, reportUsage)
		return exitUsage
	}
	switch args[0] {
	case "decrypt":
		return reportDecrypt(args[1:], os.Stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, reportUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "upwatch report: unknown subcommand %q\n\n%s", args[0], reportUsage)
	return exitUsage
}

func reportDecrypt(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("report decrypt", "report decrypt -key-file KEY [FILE|-]", stderr)
	keyFile := fs.String("key-file", "", "the report key: a JWK or a JWK Set (required)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	// Flags may also follow the file name.
	rest := fs.Args()
	if len(rest) > 1 {
		if code, ok := parseFlags(fs, rest[1:]); !ok {
			return code
		}
		rest = append([]string{rest[0]}, fs.Args()...)
	}
	if *keyFile == "" {
		fmt.Fprint(stderr, "upwatch report decrypt: -key-file is required\n\n", reportUsage)
		return exitUsage
	}
	if len(rest) > 1 {
		fmt.Fprintf(stderr, "upwatch report decrypt: unexpected argument %q (one token file at most)\n", rest[1])
		return exitUsage
	}

	name := "-"
	if len(rest) == 1 {
		name = rest[0]
	}
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "upwatch report decrypt:", err)
			return exitFailed
		}
		defer f.Close()
		in = f
	}
	token, err := io.ReadAll(io.LimitReader(in, maxReportBytes+1))
	if err != nil {
		fmt.Fprintln(stderr, "upwatch report decrypt: reading the token:", err)
		return exitFailed
	}
	if len(token) > maxReportBytes {
		fmt.Fprintf(stderr, "upwatch report decrypt: the token is larger than %d bytes\n", maxReportBytes)
		return exitFailed
	}
	if len(bytes.TrimSpace(token)) == 0 {
		src := name
		if name == "-" {
			src = "standard input"
		}
		fmt.Fprintf(stderr, "upwatch report decrypt: no token in %s\n", src)
		return exitFailed
	}

	plaintext, err := report.DecryptFile(token, *keyFile)
	if err != nil {
		fmt.Fprintln(stderr, "upwatch report decrypt:", err)
		if errors.Is(err, report.ErrUnknownKey) {
			fmt.Fprintln(stderr, "(the report was sealed under a key the key file does not hold; use a JWK Set with the older keys)")
		}
		return exitFailed
	}
	var out bytes.Buffer
	if err := json.Indent(&out, plaintext, "", "  "); err != nil {
		// Not JSON: show it as it is.
		out.Reset()
		out.Write(plaintext)
	}
	if out.Len() > 0 && out.Bytes()[out.Len()-1] != '\n' {
		out.WriteByte('\n')
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		fmt.Fprintln(stderr, "upwatch report decrypt:", err)
		return exitFailed
	}
	return exitOK
}
