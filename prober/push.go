package prober

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"time"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/secret"
)

// Bounds of a push target. A period longer than MaxPushPeriod (a monthly
// job plus slack) would keep a dead job's target up for too long to matter.
const (
	DefaultPushPeriod = time.Hour
	DefaultPushGrace  = time.Minute
	MaxPushPeriod     = 32 * 24 * time.Hour
	MaxPushGrace      = 7 * 24 * time.Hour
	// PushTokenPrefix starts every generated token, so one found in a log
	// or a repository is recognisable.
	PushTokenPrefix = "uwp_"
)

// PushSpec configures a push (heartbeat) target: instead of being checked,
// it waits for pings at /ping/{token}, and is failed when none arrives
// within Period plus Grace of the last one. Interval and timeout are not
// used.
type PushSpec struct {
	// Token is the secret in the ping URL: at least 128 bits (22 or more of
	// A-Z a-z 0-9 _ -). The API generates it; in the config file it is
	// usually env:NAME or file:/path. Sealed at rest, redacted when shown.
	Token  secret.Secret `yaml:"token" json:"token"`
	Period time.Duration `yaml:"period,omitempty" json:"period,omitempty"` // default 1h
	Grace  time.Duration `yaml:"grace,omitempty" json:"grace,omitempty"`   // default 1m
}

var pushTokenPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22,128}$`)

func (s *PushSpec) normalize() {
	if s == nil {
		return
	}
	if s.Period == 0 {
		s.Period = DefaultPushPeriod
	}
	if s.Grace == 0 {
		s.Grace = DefaultPushGrace
	}
}

func (s *PushSpec) validate(p string) []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: p + "." + path, Msg: fmt.Sprintf(format, args...)})
	}
	switch tok := s.Token.Reveal(); {
	case tok == "":
		add("token", "is required (the API generates one; in the config file use env:NAME or file:/path)")
	case tok == secret.Redacted:
		add("token", "is redacted; the stored token is kept only on update")
	case !pushTokenPattern.MatchString(tok):
		// Never echo the token itself.
		add("token", "must be 22-128 of A-Z a-z 0-9 _ - (at least 128 bits; got %d characters)", len(tok))
	}
	if s.Period < MinInterval || s.Period > MaxPushPeriod {
		add("period", "must be between %s and %s (got %s)", MinInterval, MaxPushPeriod, s.Period)
	}
	if s.Grace < 0 || s.Grace > MaxPushGrace {
		add("grace", "must be between 0s and %s (got %s)", MaxPushGrace, s.Grace)
	}
	return errs
}

// NewPushToken returns a fresh push token: PushTokenPrefix and 192 random
// bits, URL-safe.
func NewPushToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("push token: %w", err)
	}
	return PushTokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// PushTokenHash is the digest a push token is looked up by, so the index
// of tokens holds no token and a lookup compares digests, not secrets.
func PushTokenHash(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// probePush answers for a push target asked to be checked (upwatch check,
// or a scheduler it was wrongly given to): push targets are not probed,
// their pings are their results.
func probePush(_ context.Context, _ *Prober, _ *Target) Result {
	var r Result
	return r.Fail(ClassInternal, "push targets are not checked: they wait for pings at /ping/{token}")
}
