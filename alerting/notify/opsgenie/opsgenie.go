// Package opsgenie opens and closes Opsgenie alerts through the Alert API
// with "Authorization: GenieKey <key>": a DOWN creates one (POST
// {api}/v2/alerts, JSON {"message", "alias", "description", ...}), the UP
// closes it by alias (POST {api}/v2/alerts/{alias}/close?identifierType=alias).
// Both are answered 202 (processed asynchronously). Every message of one
// incident carries the same alias (notify.AlertKey): reminders add to the
// open alert instead of opening another.
package opsgenie

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/upwatch/upwatch/alerting/notify"
)

// Channel is the policy channel name.
const Channel = "opsgenie"

// API hosts by region.
const (
	USAPIURL = "https://api.opsgenie.com"
	EUAPIURL = "https://api.eu.opsgenie.com"
)

// Destination is one Opsgenie API integration.
type Destination struct {
	APIKey string `yaml:"api_key" json:"api_key" secret:"token"`
	// Region is "us" (default) or "eu": where the account lives.
	Region string `yaml:"region,omitempty" json:"region,omitempty"`
	// Priority of DOWN alerts, P1 to P5 (default: the integration's).
	Priority string `yaml:"priority,omitempty" json:"priority,omitempty"`
}

var (
	apiKey   = regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`)
	priority = regexp.MustCompile(`^P[1-5]$`)
)

// Validate reports every problem, each as "field: message".
func (d Destination) Validate() error {
	errs := []error{
		notify.CheckSecretField("api_key", d.APIKey, apiKey, "not an Opsgenie API key (a UUID)"),
		notify.CheckRegion(d.Region),
	}
	if d.Priority != "" && !priority.MatchString(d.Priority) {
		errs = append(errs, fmt.Errorf("priority: %q is not P1 to P5", d.Priority))
	}
	return errors.Join(errs...)
}

// Notifier makes one Alert API call per notification.
type Notifier = notify.JSONNotifier[Destination]

// New returns a notifier; client may be nil (notify.DefaultClient); base,
// if set, replaces the regions' hosts (tests).
func New(client *http.Client, base string) *Notifier {
	base = strings.TrimRight(base, "/")
	return notify.NewJSONNotifier(client, Channel, func(m notify.Message, d Destination) notify.Post {
		return request(notify.RegionURL(base, d.Region, USAPIURL, EUAPIURL), m, d)
	})
}

// request creates the incident's alert, or closes it for an UP.
func request(base string, m notify.Message, d Destination) notify.Post {
	h := http.Header{}
	h.Set("Authorization", "GenieKey "+d.APIKey)
	alias := notify.AlertKey(m)
	var u string
	var body map[string]any
	if notify.Resolves(m) {
		u = base + "/v2/alerts/" + url.PathEscape(alias) + "/close?identifierType=alias"
		body = map[string]any{"source": "upwatch", "note": notify.Truncate(strings.TrimSpace(m.Subject), 25000)}
	} else {
		u = base + "/v2/alerts"
		body = CreateRequest(m, d, alias)
	}
	// An error answers {"message": "...", "took": 0.1, "requestId": "..."}.
	return notify.Post{URL: u, Header: h, Body: body, Detail: notify.JSONDetail("message")}
}

// CreateRequest is the create-alert body for m.
func CreateRequest(m notify.Message, d Destination, alias string) map[string]any {
	details := map[string]string{"kind": m.Kind}
	if m.TargetURL != "" {
		details["url"] = m.TargetURL
	}
	if m.Cause != "" {
		details["cause"] = m.Cause
	}
	if m.Link != "" {
		details["link"] = m.Link
	}
	body := map[string]any{
		"message":     notify.Truncate(strings.TrimSpace(m.Subject), 130),
		"alias":       alias,
		"description": notify.Truncate(strings.TrimSpace(m.Text), 15000),
		"source":      "upwatch",
		"entity":      notify.Truncate(m.TargetName, 512),
		"tags":        []string{"upwatch", m.Kind},
		"details":     details,
	}
	if d.Priority != "" {
		body["priority"] = d.Priority
	}
	return body
}
