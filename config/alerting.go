package config

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/sendgrid"
	"github.com/upwatch/upwatch/alerting/notify/smtp"
	"github.com/upwatch/upwatch/alerting/notify/twilio"
	"github.com/upwatch/upwatch/alerting/notify/webhook"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/secret"
)

// Target is a check plus how its outages are told.
type Target struct {
	prober.Target `yaml:",inline"`
	// AlertPolicy names an entry of alert_policies; without one the
	// target's incidents are recorded but nobody is notified.
	AlertPolicy string `yaml:"alert_policy,omitempty"`
	// DependsOn lists target IDs (a gateway, a DNS server); while one of
	// them is DOWN this target's incidents are recorded but not notified.
	DependsOn []string `yaml:"depends_on,omitempty"`
}

// Alerting configures the notification providers and messages.
type Alerting struct {
	// TemplatesDir holds template overrides (<kind>.subject.tmpl,
	// <kind>.txt.tmpl, <kind>.html.tmpl); empty uses the built-in ones.
	TemplatesDir string `yaml:"templates_dir"`
	// Link is the base URL put in messages (e.g. your Grafana or status
	// page); empty uses the target's URL.
	Link     string           `yaml:"link"`
	SendGrid *sendgrid.Config `yaml:"sendgrid"`
	SMTP     *smtp.Config     `yaml:"smtp"`
	Twilio   *twilio.Config   `yaml:"twilio"`
	Webhook  *webhook.Config  `yaml:"webhook"`
	// Locations tune how the alert engine watches the probe locations.
	Locations Locations `yaml:"locations"`
}

// Locations tune when a probe location is unavailable or suspect (see
// alerting.LocationOptions); zero fields take the defaults.
type Locations struct {
	StaleAfter        time.Duration `yaml:"stale_after"`
	SuspectWindow     time.Duration `yaml:"suspect_window"`
	SuspectShare      float64       `yaml:"suspect_share"`
	SuspectMinTargets int           `yaml:"suspect_min_targets"`
}

// Options returns l as the engine takes it.
func (l Locations) Options() alerting.LocationOptions {
	return alerting.LocationOptions{StaleAfter: l.StaleAfter, SuspectWindow: l.SuspectWindow,
		SuspectShare: l.SuspectShare, SuspectMinTargets: l.SuspectMinTargets}
}

// Bounds of the location settings.
const (
	maxLocationWindow     = 24 * time.Hour
	maxSuspectMinTargets  = 1_000_000
	minLocationStaleAfter = time.Second
)

// ContactGroup is a set of people (and webhooks, chats and pagers) told
// together.
type ContactGroup struct {
	Name         string   `yaml:"name"`
	Members      []Member `yaml:"members"`
	Webhooks     []string `yaml:"webhooks"`
	Destinations `yaml:",inline"`
}

// Member is one person: email and phone are each optional.
type Member struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
	Phone string `yaml:"phone"` // E.164, e.g. +4915112345678
}

// AlertPolicy is when to alert (the state machine's thresholds) and whom.
type AlertPolicy struct {
	Name            string `yaml:"name"`
	alerting.Policy `yaml:",inline"`
	// Channels are email, sms, webhook and/or any of
	// DestinationChannels (slack, teams, pagerduty, ...).
	Channels      []string `yaml:"channels"`
	ContactGroups []string `yaml:"contact_groups"`
	// EscalateTo names groups told once the incident has lasted
	// escalate_after.
	EscalateTo []string `yaml:"escalate_to"`
}

var channels = append([]string{alerting.ChannelEmail, alerting.ChannelSMS, alerting.ChannelWebhook}, DestinationChannels()...)

func (c *Config) validateAlerting() []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	provider := func(path string, err error) {
		if err == nil {
			return
		}
		for _, e := range unjoin(err) {
			add(path+"."+fieldOf(e), "%s", msgOf(e))
		}
	}
	a := &c.Alerting
	if a.SendGrid != nil {
		provider("alerting.sendgrid", a.SendGrid.Validate())
	}
	if a.SMTP != nil {
		provider("alerting.smtp", a.SMTP.Validate())
	}
	if a.Twilio != nil {
		provider("alerting.twilio", a.Twilio.Validate())
	}
	if a.Webhook != nil {
		provider("alerting.webhook", a.Webhook.Validate())
	}
	if a.Link != "" {
		if u, err := url.Parse(a.Link); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			add("alerting.link", "must be an http or https URL")
		}
	}
	l := a.Locations
	if l.StaleAfter != 0 && (l.StaleAfter < minLocationStaleAfter || l.StaleAfter > maxLocationWindow) {
		add("alerting.locations.stale_after", "must be from %s to %s (got %s)", minLocationStaleAfter, maxLocationWindow, l.StaleAfter)
	}
	if l.SuspectWindow != 0 && (l.SuspectWindow < minLocationStaleAfter || l.SuspectWindow > maxLocationWindow) {
		add("alerting.locations.suspect_window", "must be from %s to %s (got %s)", minLocationStaleAfter, maxLocationWindow, l.SuspectWindow)
	}
	if l.SuspectShare < 0 || l.SuspectShare >= 1 {
		add("alerting.locations.suspect_share", "must be a share from 0 (default %.1f) up to, not including, 1 (got %g)", alerting.DefaultSuspectShare, l.SuspectShare)
	}
	if l.SuspectMinTargets < 0 || l.SuspectMinTargets > maxSuspectMinTargets {
		add("alerting.locations.suspect_min_targets", "must be from 0 (default %d) to %d (got %d)", alerting.DefaultSuspectMinTargets, maxSuspectMinTargets, l.SuspectMinTargets)
	}
	if _, err := notify.NewRenderer(a.TemplatesDir); err != nil {
		add("alerting.templates_dir", "%v", err)
	}

	groups := map[string]bool{}
	for i, g := range c.ContactGroups {
		p := fmt.Sprintf("contact_groups[%d]", i)
		if g.Name != "" && groups[g.Name] {
			add(p+".name", "%q is defined twice", g.Name)
		}
		groups[g.Name] = true
		errs = append(errs, ValidateContactGroup(p, g)...)
	}

	policies := map[string]bool{}
	for i, pol := range c.Policies {
		p := fmt.Sprintf("alert_policies[%d]", i)
		if pol.Name != "" && policies[pol.Name] {
			add(p+".name", "%q is defined twice", pol.Name)
		}
		policies[pol.Name] = true
		errs = append(errs, a.ValidatePolicy(p, pol, func(name string) bool { return groups[name] })...)
	}

	for i := range c.Maintenance {
		for _, e := range c.Maintenance[i].Validate(fmt.Sprintf("maintenance[%d]", i)) {
			var fe invalid.Field
			if errors.As(e, &fe) {
				errs = append(errs, fe)
			} else {
				add(fmt.Sprintf("maintenance[%d]", i), "%v", e)
			}
		}
	}

	ids := make(map[string]bool, len(c.Targets))
	for _, t := range c.Targets {
		ids[t.ID] = true
	}
	cycles := dependencyCycles(c.Targets)
	for i, t := range c.Targets {
		p := fmt.Sprintf("targets[%d]", i)
		if t.AlertPolicy != "" && !policies[t.AlertPolicy] {
			add(p+".alert_policy", "unknown alert policy %q", t.AlertPolicy)
		}
		for j, d := range t.DependsOn {
			dp := fmt.Sprintf("%s.depends_on[%d]", p, j)
			if d == t.ID {
				add(dp, "a target cannot depend on itself")
			} else if !ids[d] {
				add(dp, "unknown target id %q", d)
			}
		}
		if cyc := cycles[i]; cyc != nil {
			add(p+".depends_on", "cycle %s", strings.Join(cyc, " → "))
		}
	}
	return errs
}

// DependencyCycle returns a cycle of depends_on edges through id, as the ids
// along it from id back to id (a, b, a), or nil if there is none. A parent
// DOWN suppresses its children, so a cycle would let an outage silence
// itself (and made the engine wait on itself). Self-dependencies are left
// out: they have their own error.
func DependencyCycle(id string, dependsOn func(id string) []string) []string {
	path := []string{id}
	seen := map[string]bool{id: true}
	var walk func(n string) bool
	walk = func(n string) bool {
		for _, p := range dependsOn(n) {
			if p == n {
				continue
			}
			if p == id {
				path = append(path, p)
				return true
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			path = append(path, p)
			if walk(p) {
				return true
			}
			path = path[:len(path)-1]
		}
		return false
	}
	if walk(id) {
		return path
	}
	return nil
}

// ValidateContactGroup checks one contact group; path is where it is
// (e.g. "contact_groups[2]") and prefixes every error. Names must be unique
// among a file's (or a tenant's) groups; that is the caller's check.
func ValidateContactGroup(path string, g ContactGroup) []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if g.Name == "" {
		add(path+".name", "is required")
	}
	errs = append(errs, prober.CheckText(path+".name", g.Name)...)
	for j, m := range g.Members {
		mp := fmt.Sprintf("%s.members[%d]", path, j)
		errs = append(errs, prober.CheckText(mp+".name", m.Name)...)
		if m.Email == "" && m.Phone == "" {
			add(mp, "needs an email or a phone")
		}
		if m.Email != "" {
			if addr, err := mail.ParseAddress(m.Email); err != nil || addr.Address != m.Email {
				add(mp+".email", "%q is not an email address", m.Email)
			}
		}
		if m.Phone != "" && !twilio.ValidE164(m.Phone) {
			add(mp+".phone", "%q is not an E.164 number (like +4915112345678)", m.Phone)
		}
	}
	for j, w := range g.Webhooks {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(fmt.Sprintf("%s.webhooks[%d]", path, j), "must be an http or https URL")
		} else if secret.IsRedactedURL(w) {
			add(fmt.Sprintf("%s.webhooks[%d]", path, j), "is a redacted URL: send the URL itself (on update, a stored webhook's redacted form keeps it)")
		}
	}
	errs = append(errs, g.Destinations.validate(path)...)
	return errs
}

// ValidatePolicy checks one alert policy against the providers configured
// in a; path prefixes every error and groupExists says whether a contact
// group name is defined. Names must be unique; that is the caller's check.
func (a Alerting) ValidatePolicy(path string, pol AlertPolicy, groupExists func(string) bool) []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	p := path
	if pol.Name == "" {
		add(p+".name", "is required")
	}
	errs = append(errs, prober.CheckText(p+".name", pol.Name)...)
	if pol.FailureThreshold < 0 || pol.SuccessThreshold < 0 {
		add(p, "failure_threshold and success_threshold must not be negative")
	}
	if len(pol.Channels) == 0 {
		add(p+".channels", "is required (%s)", strings.Join(channels, ", "))
	}
	for j, ch := range pol.Channels {
		cp := fmt.Sprintf("%s.channels[%d]", p, j)
		switch {
		case !slices.Contains(channels, ch):
			add(cp, "unknown channel %q (want one of %s)", ch, strings.Join(channels, ", "))
		case ch == alerting.ChannelEmail && a.SendGrid == nil && a.SMTP == nil:
			add(cp, "email needs alerting.sendgrid or alerting.smtp")
		case ch == alerting.ChannelSMS && a.Twilio == nil:
			add(cp, "sms needs alerting.twilio")
		case ch == alerting.ChannelWebhook && a.Webhook == nil:
			add(cp, "webhook needs alerting.webhook (its secret signs every request)")
		}
	}
	if len(pol.ContactGroups) == 0 {
		add(p+".contact_groups", "is required")
	}
	for j, g := range pol.ContactGroups {
		if !groupExists(g) {
			add(fmt.Sprintf("%s.contact_groups[%d]", p, j), "unknown contact group %q", g)
		}
	}
	for j, g := range pol.EscalateTo {
		if !groupExists(g) {
			add(fmt.Sprintf("%s.escalate_to[%d]", p, j), "unknown contact group %q", g)
		}
	}
	if err := pol.DownWhen.Validate(); err != nil {
		add(p+".down_when", "%v", err)
	}
	if pol.StaleAfter < 0 || pol.StaleAfter > maxLocationWindow {
		add(p+".stale_after", "must be from 0 (3 intervals) to %s (got %s)", maxLocationWindow, pol.StaleAfter)
	}
	if len(pol.EscalateTo) > 0 && pol.EscalateAfter <= 0 {
		add(p+".escalate_after", "is required with escalate_to")
	}
	return errs
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// fieldOf and msgOf split a provider's "field: message" error.
func fieldOf(e error) string {
	f, _, _ := strings.Cut(e.Error(), ": ")
	return f
}

func msgOf(e error) string {
	_, m, ok := strings.Cut(e.Error(), ": ")
	if !ok {
		return e.Error()
	}
	return m
}

// ProberTargets returns the checks alone, for the scheduler.
func (c *Config) ProberTargets() []prober.Target {
	out := make([]prober.Target, len(c.Targets))
	for i := range c.Targets {
		out[i] = c.Targets[i].Target
	}
	return out
}
