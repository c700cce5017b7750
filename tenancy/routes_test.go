package tenancy

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/pagerduty"
	"github.com/upwatch/upwatch/alerting/notify/slack"
	"github.com/upwatch/upwatch/alerting/notify/webhook"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
)

// TestRoutesScopeWindowsToTheirTenant: a window of one tenant (or of the
// config file) never covers another tenant's targets.
func TestRoutesScopeWindowsToTheirTenant(t *testing.T) {
	mk := func(id string, labels map[string]string) config.Target {
		ct := config.Target{Target: prober.Target{ID: id, Name: id, Kind: "tcp", Labels: labels, TCP: &prober.TCPSpec{Address: "a.example.com:1"}}}
		ct.Normalize()
		return ct
	}
	win := func(w alerting.Window) alerting.Window {
		require.Empty(t, w.Validate("w"))
		return w
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := &config.Config{Targets: []config.Target{mk("cfg", nil)},
		Maintenance: []alerting.Window{win(alerting.Window{Start: start, End: start.Add(time.Hour)})}}
	ten := Set{
		Targets: []TargetInfo{
			{TenantID: "default", Source: SourceAPI, Target: mk("a1", map[string]string{"env": "prod"}), Key: "default/a1"},
			{TenantID: "b", Source: SourceAPI, Target: mk("b1", map[string]string{"env": "prod"}), Key: "b/b1"},
		},
		Windows: map[string][]alerting.Window{"b": {win(alerting.Window{Labels: map[string]string{"env": "prod"}, Start: start, End: start.Add(time.Hour)})}},
	}
	targets, routes, windows := Routes(cfg, ten)
	assert.Len(t, targets, 3)
	assert.Len(t, routes, 3)
	require.Len(t, windows, 2)
	at := start.Add(time.Minute)
	covered := func(id string, labels map[string]string) (n int) {
		for i := range windows {
			if windows[i].Active(at, id, labels) {
				n++
			}
		}
		return n
	}
	assert.Equal(t, 1, covered("cfg", nil))
	assert.Equal(t, 1, covered("default/a1", map[string]string{"env": "prod"}), "the config's window covers tenant default only")
	assert.Equal(t, 1, covered("b/b1", map[string]string{"env": "prod"}), "b's window covers b's targets only")
	assert.Contains(t, routes, "default/a1", "what runs is keyed by the target's key")
	assert.Equal(t, []string{"default/a1", "b/b1"}, []string{targets[1].ID, targets[2].ID})
}

// TestRoutesResolvePoliciesPerTenant: a target's policy and groups are its
// tenant's (tenant default's API targets also see the config file's; a
// config target sees the config file's only), depends_on resolves to keys
// within the tenant, and the global webhook joins every told policy once.
func TestRoutesResolvePoliciesPerTenant(t *testing.T) {
	mk := func(id, policy string, deps ...string) config.Target {
		ct := config.Target{Target: prober.Target{ID: id, Name: id, Kind: "tcp", TCP: &prober.TCPSpec{Address: id + ".example.com:1"}},
			AlertPolicy: policy, DependsOn: deps}
		ct.Normalize()
		return ct
	}
	cfg := &config.Config{
		Targets:       []config.Target{mk("gw", "p"), mk("web", "p", "gw")},
		ContactGroups: []config.ContactGroup{{Name: "ops", Members: []config.Member{{Name: "Ann", Email: "ann@example.com"}}}},
		Policies:      []config.AlertPolicy{{Name: "p", Channels: []string{"email"}, ContactGroups: []string{"ops"}}},
	}
	cfg.Alerting.Webhook = &webhook.Config{URL: "https://hooks.example.com/all"}
	set := Set{
		Targets: []TargetInfo{
			{TenantID: "default", Source: SourceAPI, Target: mk("api", "p", "gw"), Key: "k-api"},
			{TenantID: "b", Source: SourceAPI, Target: mk("gw", "p"), Key: "k-bgw"},
			{TenantID: "b", Source: SourceAPI, Target: mk("app", "p", "gw", "web"), Key: "k-bapp"},
		},
		Groups:   map[string][]config.ContactGroup{"b": {{Name: "ops", Members: []config.Member{{Name: "Bob", Email: "bob@example.com"}}}}},
		Policies: map[string][]config.AlertPolicy{"b": {{Name: "p", Channels: []string{"sms"}, ContactGroups: []string{"ops"}}}},
	}
	targets, routes, _ := Routes(cfg, set)
	ids := make([]string, len(targets))
	for i, pt := range targets {
		ids[i] = pt.ID
	}
	assert.Equal(t, []string{"gw", "web", "k-api", "k-bgw", "k-bapp"}, ids, "config targets first, each by its key")
	hook := notify.Recipient{Name: "webhook", WebhookURL: "https://hooks.example.com/all"}
	ann := notify.Recipient{Name: "Ann", Email: "ann@example.com"}
	assert.Equal(t, []notify.Recipient{ann, hook}, routes["web"].Recipients)
	assert.Equal(t, []string{"gw"}, routes["web"].DependsOn)
	assert.Equal(t, []notify.Recipient{ann, hook}, routes["k-api"].Recipients, "tenant default's API targets see the config file's groups")
	assert.Equal(t, []string{"gw"}, routes["k-api"].DependsOn)
	assert.Equal(t, []notify.Recipient{{Name: "Bob", Email: "bob@example.com"}, hook}, routes["k-bapp"].Recipients)
	assert.Equal(t, []string{"sms"}, routes["k-bapp"].Channels)
	assert.Equal(t, []string{"k-bgw"}, routes["k-bapp"].DependsOn, "b's gw, not default's; web is not b's")
	assert.Equal(t, "tcp://app.example.com:1", routes["k-bapp"].URL)
}

// A group's chat and paging destinations become recipients on their own
// channels, each carrying its destination (credentials and all) for the
// notifier; nothing else of the group leaks into them.
func TestRoutesCarryDestinations(t *testing.T) {
	ct := config.Target{Target: prober.Target{ID: "web", Name: "web", Kind: "tcp", TCP: &prober.TCPSpec{Address: "web.example.com:1"}}, AlertPolicy: "p"}
	ct.Normalize()
	cfg := &config.Config{
		Targets: []config.Target{ct},
		ContactGroups: []config.ContactGroup{{Name: "ops", Destinations: config.Destinations{
			PagerDuty: []pagerduty.Destination{{RoutingKey: "0123456789abcdef0123456789abcdef"}},
			Slack:     []slack.Destination{{WebhookURL: "https://hooks.slack.com/services/T/B/X"}},
		}}},
		Policies: []config.AlertPolicy{{Name: "p", Channels: []string{"pagerduty", "slack"}, ContactGroups: []string{"ops"}}},
	}
	_, routes, _ := Routes(cfg, Set{})
	assert.Equal(t, []notify.Recipient{
		{Name: "ops", Channel: "slack", Endpoint: `{"webhook_url":"https://hooks.slack.com/services/T/B/X"}`},
		{Name: "ops", Channel: "pagerduty", Endpoint: `{"routing_key":"0123456789abcdef0123456789abcdef"}`},
	}, routes["web"].Recipients)
}
