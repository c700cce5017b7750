// Package pagerduty opens and resolves PagerDuty alerts through the Events
// API v2: POST {events}/v2/enqueue with JSON {"routing_key",
// "event_action": "trigger"|"resolve", "dedup_key", "payload"}, answered
// 202 {"status": "success", "dedup_key": ...}; 400 is an invalid event,
// 429 and 5xx are retried. Every message of one incident carries the same
// dedup_key (notify.AlertKey), so the UP resolves the alert the DOWN
// opened and reminders add to it rather than open another.
package pagerduty

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
)

// Channel is the policy channel name.
const Channel = "pagerduty"

// Events API hosts by region.
const (
	USEventsURL = "https://events.pagerduty.com"
	EUEventsURL = "https://events.eu.pagerduty.com"
)

// Destination is one PagerDuty service (its Events API v2 integration).
type Destination struct {
	RoutingKey string `yaml:"routing_key" json:"routing_key" secret:"token"`
	// Region is "us" (default) or "eu": where the account lives.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Severity of DOWN alerts: critical (default), error, warning or info.
	Severity string `yaml:"severity,omitempty" json:"severity,omitempty"`
}

var (
	routingKey = regexp.MustCompile(`^[A-Za-z0-9]{32}$`)
	severities = []string{"critical", "error", "warning", "info"}
)

// Validate reports every problem, each as "field: message".
func (d Destination) Validate() error {
	errs := []error{
		notify.CheckSecretField("routing_key", d.RoutingKey, routingKey, "not an Events API v2 integration key (32 letters and digits)"),
		notify.CheckRegion(d.Region),
	}
	if d.Severity != "" && !slices.Contains(severities, d.Severity) {
		errs = append(errs, fmt.Errorf("severity: %q is not one of %s", d.Severity, strings.Join(severities, ", ")))
	}
	return errors.Join(errs...)
}

// Notifier sends one event per notification: NewEvent(m) to the
// destination's region.
type Notifier = notify.JSONNotifier[Destination]

// New returns a notifier; client may be nil (notify.DefaultClient); base,
// if set, replaces the regions' hosts (tests).
func New(client *http.Client, base string) *Notifier {
	base = strings.TrimRight(base, "/")
	return notify.NewJSONNotifier(client, Channel, func(m notify.Message, d Destination) notify.Post {
		u := notify.RegionURL(base, d.Region, USEventsURL, EUEventsURL) + "/v2/enqueue"
		return notify.Post{URL: u, Body: NewEvent(m, d), Detail: detail}
	})
}

// Event is an Events API v2 event.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"` // trigger, resolve
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload,omitempty"` // trigger only
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
	Links       []Link   `json:"links,omitempty"`
}

// Payload is a trigger's alert.
type Payload struct {
	Summary       string            `json:"summary"` // at most 1024 characters
	Source        string            `json:"source"`
	Severity      string            `json:"severity"`
	Timestamp     string            `json:"timestamp,omitempty"`
	Component     string            `json:"component,omitempty"`
	Class         string            `json:"class,omitempty"`
	CustomDetails map[string]string `json:"custom_details,omitempty"`
}

// Link is a link shown with the alert.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text,omitempty"`
}

// NewEvent is the event for m: a resolve for an UP, else a trigger.
func NewEvent(m notify.Message, d Destination) Event {
	e := Event{RoutingKey: d.RoutingKey, DedupKey: notify.AlertKey(m), EventAction: "trigger"}
	if notify.Resolves(m) {
		e.EventAction = "resolve"
		return e
	}
	sev := d.Severity
	if sev == "" {
		sev = "critical"
	}
	if m.Kind == notify.KindDegraded || m.Kind == notify.KindTLSExpiry {
		sev = "warning"
	}
	source := m.TargetURL
	if source == "" {
		source = m.TargetName
	}
	details := map[string]string{"target": m.TargetName, "kind": m.Kind}
	if m.Cause != "" {
		details["cause"] = m.Cause
	}
	if m.IncidentID != "" {
		details["incident_id"] = m.IncidentID
	}
	e.Payload = &Payload{
		Summary: notify.Truncate(strings.TrimSpace(m.Subject), 1024), Source: source, Severity: sev,
		Component: m.TargetName, Class: m.Kind, CustomDetails: details,
	}
	if !m.StartedAt.IsZero() {
		e.Payload.Timestamp = m.StartedAt.UTC().Format(time.RFC3339)
	}
	e.Client = "upwatch"
	if m.Link != "" {
		e.ClientURL = m.Link
		e.Links = []Link{{Href: m.Link, Text: "upwatch incident"}}
	}
	return e
}

// detail explains an error answer {"status": "invalid event", "message":
// "Event object is invalid", "errors": ["..."]}.
func detail(body []byte) string {
	var r struct {
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	if json.Unmarshal(body, &r) != nil || (r.Message == "" && len(r.Errors) == 0) {
		return ""
	}
	return notify.Snippet([]byte(strings.Join(append([]string{r.Message}, r.Errors...), "; ")))
}
