// Package quota holds the per-tenant limits on targets (how many, how
// often each, how many checks a second in all) and the pure rules that
// decide whether a change of a tenant's targets stays within them.
//
// Quotas cover the targets a tenant manages through the API. Targets in the
// config file are the operator's own: they are neither limited nor counted
// (the per-target bounds of prober.Target.Validate still apply to them).
package quota

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
)

// Defaults: 1000 targets at the default 60 s interval are 16.7 checks/s,
// so a tenant can use its whole target count at that interval, or 200
// targets at the 10 s minimum; the 5,000 targets at 1 s (5,000
// checks/s) is far outside.
const (
	DefaultMaxTargets         = 1000
	DefaultMinInterval        = 10 * time.Second
	DefaultMaxChecksPerSecond = 20.0
)

// Upper bounds of the settings themselves.
const (
	MaxMaxTargets         = 100000
	MaxMaxChecksPerSecond = 10000.0
)

// Names of the limits, as problems and errors report them.
const (
	LimitMaxTargets         = "max_targets"
	LimitMinInterval        = "min_interval"
	LimitMaxChecksPerSecond = "max_checks_per_second"
)

// Limits is one tenant's quotas. In Config.Tenants a zero field keeps the
// value of the quotas section.
type Limits struct {
	// MaxTargets bounds how many API targets the tenant has, paused or not.
	MaxTargets int `yaml:"max_targets,omitempty"`
	// MinInterval is the shortest interval a target may be checked at.
	MinInterval time.Duration `yaml:"min_interval,omitempty"`
	// MaxChecksPerSecond bounds the sum of 1/interval over the tenant's
	// active (not paused) targets.
	MaxChecksPerSecond float64 `yaml:"max_checks_per_second,omitempty"`
}

// Config is the quotas section of the config file.
type Config struct {
	// Limits apply to every tenant not named in Tenants.
	Limits `yaml:",inline"`
	// Tenants overrides fields of Limits for a tenant, by id (e.g. a
	// bigger budget for the operator's tenant "default").
	Tenants map[string]Limits `yaml:"tenants,omitempty"`
}

// Normalize fills in the defaults, in place.
func (c *Config) Normalize() {
	if c.MaxTargets == 0 {
		c.MaxTargets = DefaultMaxTargets
	}
	if c.MinInterval == 0 {
		c.MinInterval = DefaultMinInterval
	}
	if c.MaxChecksPerSecond == 0 {
		c.MaxChecksPerSecond = DefaultMaxChecksPerSecond
	}
}

// Validate returns every problem, each with its path under prefix
// ("quotas"). Call Normalize first.
func (c Config) Validate(prefix string) []invalid.Field {
	errs := c.Limits.validate(prefix, false)
	for _, id := range slices.Sorted(maps.Keys(c.Tenants)) {
		p := fmt.Sprintf("%s.tenants.%s", prefix, id)
		if id == "" {
			errs = append(errs, invalid.Field{Path: p, Msg: "needs a tenant id"})
		}
		errs = append(errs, c.Tenants[id].validate(p, true)...)
	}
	return errs
}

// validate checks each field's bounds; zero is allowed where it inherits.
func (l Limits) validate(prefix string, zeroOK bool) []invalid.Field {
	var errs []invalid.Field
	add := func(field, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: prefix + "." + field, Msg: fmt.Sprintf(format, args...)})
	}
	if !(zeroOK && l.MaxTargets == 0) && (l.MaxTargets < 1 || l.MaxTargets > MaxMaxTargets) {
		add(LimitMaxTargets, "must be between 1 and %d (got %d)", MaxMaxTargets, l.MaxTargets)
	}
	if !(zeroOK && l.MinInterval == 0) && (l.MinInterval < prober.MinInterval || l.MinInterval > prober.MaxInterval) {
		add(LimitMinInterval, "must be between %s and %s (got %s)", prober.MinInterval, prober.MaxInterval, l.MinInterval)
	}
	if !(zeroOK && l.MaxChecksPerSecond == 0) && !(l.MaxChecksPerSecond > 0 && l.MaxChecksPerSecond <= MaxMaxChecksPerSecond) {
		add(LimitMaxChecksPerSecond, "must be above 0 and at most %g (got %g)", MaxMaxChecksPerSecond, l.MaxChecksPerSecond)
	}
	return errs
}

// For is the limits of tenant: the section's, with the tenant's overrides.
func (c Config) For(tenant string) Limits {
	l := c.Limits
	o := c.Tenants[tenant]
	if o.MaxTargets != 0 {
		l.MaxTargets = o.MaxTargets
	}
	if o.MinInterval != 0 {
		l.MinInterval = o.MinInterval
	}
	if o.MaxChecksPerSecond != 0 {
		l.MaxChecksPerSecond = o.MaxChecksPerSecond
	}
	return l
}

// Usage is what a set of targets takes of a tenant's quotas.
type Usage struct {
	Targets         int
	ChecksPerSecond float64
}

// UsageOf counts targets (paused ones too) and sums 1/interval over the
// active ones.
func UsageOf(ts []prober.Target) Usage {
	u := Usage{Targets: len(ts)}
	for _, t := range ts {
		if !t.Paused && t.Interval > 0 {
			u.ChecksPerSecond += float64(time.Second) / float64(t.Interval)
		}
	}
	return u
}

// Violation is one quota a change would break.
type Violation struct {
	Limit string // LimitMaxTargets, LimitMinInterval, LimitMaxChecksPerSecond
	// Value is the limit's value; Usage the tenant's before the change and
	// Requested after it (nil for min_interval).
	Value, Usage, Requested any
	// Path is the field at fault (min_interval only), Msg says what is wrong.
	Path, Msg string
}

// Interval checks the interval of a target written at path (cur is its
// current version, nil for a new one) against the tenant's minimum: a new
// target, a changed interval and a resumed target must keep it; a target
// left as it was stays, so a raised minimum does not block other edits.
func (l Limits) Interval(path string, cur *prober.Target, t prober.Target) *Violation {
	d := t.Interval
	kept := cur != nil && cur.Interval == d && !(cur.Paused && !t.Paused)
	if d >= l.MinInterval || kept {
		return nil
	}
	return &Violation{
		Limit: LimitMinInterval, Value: l.MinInterval.String(), Path: path,
		Msg: fmt.Sprintf("must be at least %s (the tenant's min_interval quota; got %s)", l.MinInterval, d),
	}
}

// Usage checks a change of the tenant's targets from before to after. A
// change may not raise the count or the check rate above its limit; one
// that keeps or lowers them passes even above the limit, so a tenant over a
// limit the operator lowered can still delete, pause and slow down targets.
func (l Limits) Usage(before, after Usage) []Violation {
	var out []Violation
	if after.Targets > l.MaxTargets && after.Targets > before.Targets {
		out = append(out, Violation{
			Limit: LimitMaxTargets, Value: l.MaxTargets, Usage: before.Targets, Requested: after.Targets,
			Msg: fmt.Sprintf("the tenant may have at most %d targets (has %d, the request makes %d)", l.MaxTargets, before.Targets, after.Targets),
		})
	}
	// A small tolerance keeps float sums of the same intervals equal.
	const eps = 1e-9
	if after.ChecksPerSecond > l.MaxChecksPerSecond+eps && after.ChecksPerSecond > before.ChecksPerSecond+eps {
		out = append(out, Violation{
			Limit: LimitMaxChecksPerSecond, Value: l.MaxChecksPerSecond, Usage: round(before.ChecksPerSecond), Requested: round(after.ChecksPerSecond),
			Msg: fmt.Sprintf("the tenant's active targets may run at most %g checks/s in all, the sum of 1/interval (uses %.3g, the request makes %.3g)",
				l.MaxChecksPerSecond, before.ChecksPerSecond, after.ChecksPerSecond),
		})
	}
	return out
}

// round keeps three decimals for display.
func round(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
