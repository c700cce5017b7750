package fleet

import (
	"errors"
	"fmt"
	"maps"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/secret"
)

// The agent protocol, under /api/v1/agent (see api/agents.go):
//
//	POST /agent/heartbeat    Hello → Welcome        register, then every TTL/3
//	GET  /agent/assignments  ?agent=ID&since=VERSION&wait=25s → Assignment
//	POST /agent/results      Batch → BatchReply     idempotent on (target, location, scheduled)

// Hello is an agent's heartbeat. Its location comes from its key.
type Hello struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// Welcome answers a heartbeat.
type Welcome struct {
	Location string `json:"location"`
	// TTL is how long the agent counts as alive without another
	// heartbeat (a Go duration, "15s").
	TTL string `json:"ttl"`
	// MaxBatch bounds the results of one push.
	MaxBatch int `json:"max_batch"`
}

// Assignment is the set of targets one agent checks. Version names it: the
// same targets with the same settings have the same version. With Full it
// holds every target (a snapshot); without, only the changes since the
// version the agent asked with: targets added or changed, and the ids of
// those removed.
type Assignment struct {
	Version string       `json:"version"`
	Full    bool         `json:"full,omitempty"`
	Targets []WireTarget `json:"targets"`
	Removed []string     `json:"removed,omitempty"`
	// Unchanged answers a long poll that timed out: keep what you have.
	Unchanged bool `json:"unchanged,omitempty"`
}

// WireTarget is a target on its way to an agent: its settings as the YAML
// a config file would hold (durations readable, credentials left out), and
// its credentials apart, in clear, since the agent has to send them.
type WireTarget struct {
	Spec        string            `json:"spec"`
	Credentials map[string]string `json:"credentials,omitempty"`
}

// Batch is a push of results.
type Batch struct {
	Results []prober.Result `json:"results"`
}

// BatchReply says what became of a batch: stored, already stored (a
// resend), or refused (a target that is gone or not checked from the
// agent's location).
type BatchReply struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
}

// EncodeTarget makes t's wire form. Env and file references in its HTTP
// headers are sent resolved: the agent cannot read the server's
// environment. File paths (CA, client certificate) are sent as they are
// and must exist on the agent.
func EncodeTarget(t prober.Target) (WireTarget, error) {
	var creds map[string]string
	if t.HTTP != nil {
		h := *t.HTTP
		h.Headers = h.ResolvedHeaders()
		if h.Auth != nil {
			a := *h.Auth
			for _, f := range a.SecretFields() {
				if v := f.Value.Reveal(); v != "" {
					if creds == nil {
						creds = map[string]string{}
					}
					creds[f.Name] = v
				}
				*f.Value = secret.Secret{}
			}
			h.Auth = &a
		}
		t.HTTP = &h
	}
	b, err := yaml.Marshal(t)
	if err != nil {
		return WireTarget{}, fmt.Errorf("target %s: %w", t.ID, err)
	}
	return WireTarget{Spec: string(b), Credentials: creds}, nil
}

// DecodeTarget reverses EncodeTarget and checks the target as a config
// file's would be checked.
func DecodeTarget(w WireTarget) (prober.Target, error) {
	var t prober.Target
	if err := yaml.Unmarshal([]byte(w.Spec), &t); err != nil {
		return t, fmt.Errorf("target spec: %w", err)
	}
	if len(w.Credentials) > 0 {
		if t.HTTP == nil || t.HTTP.Auth == nil {
			return t, errors.New("target " + t.ID + ": credentials without auth")
		}
		left := maps.Clone(w.Credentials)
		for _, f := range t.HTTP.Auth.SecretFields() {
			if v, ok := left[f.Name]; ok {
				*f.Value = secret.New(v)
				delete(left, f.Name)
			}
		}
		if len(left) > 0 {
			return t, fmt.Errorf("target %s: unknown credentials", t.ID)
		}
	}
	t.Normalize()
	if errs := t.Validate("target " + t.ID); len(errs) > 0 {
		return t, fmt.Errorf("%s: %s", errs[0].Path, errs[0].Msg)
	}
	return t, nil
}
