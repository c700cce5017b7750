// Package secret holds credentials that must never reach a log, an error or
// an API response. A Secret prints and marshals as "<secret>"; only Reveal
// returns the value.
//
// In config files a secret is written literally, or as a reference that is
// resolved at load time:
//
//	env:NAME    the value of environment variable NAME
//	file:/path  the contents of the file, trailing newline removed
package secret

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted is what a Secret shows instead of its value.
const Redacted = "<secret>"

// Secret is a credential. The zero value is empty.
type Secret struct {
	ref   string // what the config said: a literal, env:NAME or file:/path
	value string // the resolved value
}

// New returns a Secret holding value as is.
func New(value string) Secret { return Secret{ref: value, value: value} }

// Parse resolves ref (a literal, env:NAME or file:/path). The error names
// the variable or file but never the value.
func Parse(ref string) (Secret, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok {
			return Secret{}, fmt.Errorf("environment variable %s is not set", name)
		}
		return Secret{ref: ref, value: v}, nil
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return Secret{}, fmt.Errorf("reading secret file: %w", err)
		}
		return Secret{ref: ref, value: strings.TrimRight(string(b), "\r\n")}, nil
	}
	return New(ref), nil
}

// Reveal returns the value. Call it only where the value is sent to its
// one legitimate recipient.
func (s Secret) Reveal() string { return s.value }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.value == "" && s.ref == "" }

// String implements fmt.Stringer and never shows the value.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// Format keeps every fmt verb from printing the value.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalJSON never shows the value.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML writes back the reference for env: and file: secrets (they are
// not secret themselves) and <secret> for literals.
func (s Secret) MarshalYAML() (any, error) {
	if strings.HasPrefix(s.ref, "env:") || strings.HasPrefix(s.ref, "file:") {
		return s.ref, nil
	}
	return s.String(), nil
}

// UnmarshalYAML resolves the reference while the config is decoded, so a
// missing variable or file is reported with the line it is on. The error is
// a *yaml.TypeError, which the decoder collects and goes on: every missing
// secret of a file is reported at once, not just the first.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	var ref string
	if err := n.Decode(&ref); err != nil {
		return err
	}
	v, err := Parse(ref)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*s = v
	return nil
}

// Equal reports whether two secrets hold the same reference and value; used
// to tell whether a target's configuration changed.
func (s Secret) Equal(o Secret) bool { return s.ref == o.ref && s.value == o.value }
