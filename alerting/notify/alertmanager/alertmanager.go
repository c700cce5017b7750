// Package alertmanager posts notifications in the body Prometheus
// Alertmanager's webhook receiver sends (version "4"), so tools that
// consume Alertmanager webhooks (alert bridges, chat bots, incident tools)
// take upwatch's alerts as they are: one alert per message, "firing" for
// DOWN (and reminders, escalation, degraded, TLS expiry), "resolved" for
// the UP, with the same labels and fingerprint for every message of one
// incident.
package alertmanager

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
)

// Channel is the policy channel name.
const Channel = "alertmanager"

// Destination is one receiver of Alertmanager-style webhooks.
type Destination struct {
	URL string `yaml:"url" json:"url" secret:"url"`
}

// Validate reports every problem, each as "field: message".
func (d Destination) Validate() error { return notify.CheckURLField("url", d.URL) }

// Message is the webhook body (Alertmanager's webhook_config, version 4).
type Message struct {
	Version           string            `json:"version"` // "4"
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"` // firing, resolved
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero (0001-01-01T00:00:00Z) while firing
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// alertNames by message kind.
var alertNames = map[string]string{
	notify.KindDegraded:  "UpwatchTargetDegraded",
	notify.KindTLSExpiry: "UpwatchCertificateExpiring",
}

// NewMessage is the body for m. Labels: alertname (UpwatchTargetDown,
// UpwatchTargetDegraded, UpwatchCertificateExpiring), target, target_id,
// instance (the target's URL), severity, and incident_id (the same for
// every message of one incident, as is the fingerprint).
func NewMessage(m notify.Message) Message {
	name, severity := "UpwatchTargetDown", "critical"
	if n, ok := alertNames[m.Kind]; ok {
		name, severity = n, "warning"
	}
	labels := map[string]string{"alertname": name, "target": m.TargetName, "target_id": m.TargetID, "severity": severity}
	if m.TargetURL != "" {
		labels["instance"] = m.TargetURL
	}
	if m.IncidentID != "" {
		labels["incident_id"] = m.IncidentID
	}
	annotations := map[string]string{"summary": strings.TrimSpace(m.Subject), "description": strings.TrimSpace(m.Text)}
	if m.Cause != "" {
		annotations["cause"] = m.Cause
	}
	status := "firing"
	a := Alert{
		Status: status, Labels: labels, Annotations: annotations,
		StartsAt: m.StartedAt.UTC(), GeneratorURL: m.Link, Fingerprint: fingerprint(labels),
	}
	if notify.Resolves(m) {
		status = "resolved"
		a.Status = status
		a.EndsAt = m.StartedAt.Add(m.Duration).UTC()
	}
	group := map[string]string{"alertname": name, "target_id": m.TargetID}
	return Message{
		Version: "4", GroupKey: groupKey(group), Status: status, Receiver: m.To.Name,
		GroupLabels: group, CommonLabels: maps.Clone(labels), CommonAnnotations: maps.Clone(annotations),
		ExternalURL: m.Link, Alerts: []Alert{a},
	}
}

// groupKey is shaped as Alertmanager's: {}:{name="value", ...}.
func groupKey(labels map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+strconv.Quote(labels[k]))
	}
	return "{}:{" + strings.Join(parts, ", ") + "}"
}

// fingerprint is 16 hex digits of a hash over the sorted labels.
func fingerprint(labels map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte(k + "\x00" + labels[k] + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Notifier posts one webhook per notification.
type Notifier = notify.JSONNotifier[Destination]

// New returns a notifier posting NewMessage(m); client may be nil
// (notify.DefaultClient).
func New(client *http.Client) *Notifier {
	return notify.NewJSONNotifier(client, Channel, func(m notify.Message, d Destination) notify.Post {
		return notify.Post{URL: d.URL, Body: NewMessage(m)}
	})
}
