package tenancy

import (
	"cmp"
	"net"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/secret"
)

// Routes builds what runs from the config file (tenant "default") and the
// API's objects: the scheduler's targets, the engine's routes and the
// maintenance windows. Every target is routed, so its incidents are
// recorded even when its policy tells nobody. What runs is keyed by each
// target's key (TargetInfo.Key), never by its id: ids are per tenant and
// can be taken again. A target's policy and contact groups are its
// tenant's (a config target's, the config file's); depends_on and
// maintenance windows name ids of their own tenant and are resolved to
// keys here, so a window covers only targets of its own tenant.
func Routes(cfg *config.Config, set Set) ([]prober.Target, map[string]alerting.Route, []alerting.Window) {
	all := make([]TargetInfo, 0, len(cfg.Targets)+len(set.Targets))
	for _, t := range cfg.Targets {
		all = append(all, ConfigTarget(t))
	}
	all = append(all, set.Targets...)
	byTenant := map[string][]TargetInfo{}
	keys := map[string]map[string]string{} // tenant → id → key
	for _, ti := range all {
		byTenant[ti.TenantID] = append(byTenant[ti.TenantID], ti)
		if keys[ti.TenantID] == nil {
			keys[ti.TenantID] = map[string]string{}
		}
		keys[ti.TenantID][ti.Target.ID] = ti.Key
	}
	globalHook := ""
	if cfg.Alerting.Webhook != nil {
		globalHook = cfg.Alerting.Webhook.URL
	}
	fromFile := newDirectory(cfg.ContactGroups, cfg.Policies)
	dirs := map[string]directory{}
	targets := make([]prober.Target, 0, len(all))
	routes := make(map[string]alerting.Route, len(all))
	for _, ti := range all {
		t := ti.Target
		pt := t.Target
		pt.ID = ti.Key
		targets = append(targets, pt)
		dir := fromFile
		if ti.Source != SourceConfig {
			d, ok := dirs[ti.TenantID]
			if !ok {
				d = tenantDirectory(cfg, set, ti.TenantID)
				dirs[ti.TenantID] = d
			}
			dir = d
		}
		r := alerting.Route{Name: t.Name, URL: targetURL(t.Target), Labels: t.Labels, Interval: t.Interval}
		for _, parent := range t.DependsOn {
			if k, ok := keys[ti.TenantID][parent]; ok {
				r.DependsOn = append(r.DependsOn, k)
			}
		}
		if pol, ok := dir.policies[t.AlertPolicy]; ok {
			r.Policy = pol.Policy
			r.Channels = pol.Channels
			r.Recipients = recipients(dir.groups, pol.ContactGroups, globalHook)
			r.Escalation = recipients(dir.groups, pol.EscalateTo, globalHook)
		}
		if t.Push != nil {
			// One missed deadline is the outage and one ping the recovery,
			// unless the policy says otherwise.
			r.Policy.FailureThreshold = cmp.Or(r.Policy.FailureThreshold, 1)
			r.Policy.SuccessThreshold = cmp.Or(r.Policy.SuccessThreshold, 1)
			r.Interval = t.Push.Period
		}
		routes[ti.Key] = r
	}
	var windows []alerting.Window
	resolve := func(tenant string, ws []alerting.Window) {
		for _, w := range ws {
			var ids []string
			for _, ti := range byTenant[tenant] {
				if w.Applies(ti.Target.ID, ti.Target.Labels) {
					ids = append(ids, ti.Key)
				}
			}
			if len(ids) == 0 {
				continue
			}
			w.Targets, w.Labels = ids, nil
			windows = append(windows, w)
		}
	}
	resolve(registry.DefaultTenant, cfg.Maintenance)
	for tenant, ws := range set.Windows {
		resolve(tenant, ws)
	}
	return targets, routes, windows
}

// directory is the contact groups and policies a target's policy names
// resolve in, by name.
type directory struct {
	groups   map[string]config.ContactGroup
	policies map[string]config.AlertPolicy
}

func newDirectory(groups []config.ContactGroup, policies []config.AlertPolicy) directory {
	d := directory{groups: map[string]config.ContactGroup{}, policies: map[string]config.AlertPolicy{}}
	d.add(groups, policies)
	return d
}

func (d directory) add(groups []config.ContactGroup, policies []config.AlertPolicy) {
	for _, g := range groups {
		d.groups[g.Name] = g
	}
	for _, p := range policies {
		d.policies[p.Name] = p
	}
}

// tenantDirectory is a tenant's API groups and policies; tenant "default"
// also has the config file's (the API's win a name both use).
func tenantDirectory(cfg *config.Config, set Set, tenant string) directory {
	d := newDirectory(nil, nil)
	if tenant == registry.DefaultTenant {
		d.add(cfg.ContactGroups, cfg.Policies)
	}
	d.add(set.Groups[tenant], set.Policies[tenant])
	return d
}

// recipients flattens groups into distinct recipients: each member, each
// group webhook and destination, and the global webhook once.
func recipients(groups map[string]config.ContactGroup, names []string, globalHook string) []notify.Recipient {
	var out []notify.Recipient
	seen := map[notify.Recipient]bool{}
	add := func(r notify.Recipient) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, name := range names {
		g := groups[name]
		for _, m := range g.Members {
			add(notify.Recipient{Name: m.Name, Email: m.Email, Phone: m.Phone})
		}
		for _, w := range g.Webhooks {
			add(notify.Recipient{Name: g.Name, WebhookURL: w})
		}
		for _, r := range g.Destinations.Recipients(g.Name) {
			add(r)
		}
	}
	if globalHook != "" && len(names) > 0 {
		add(notify.Recipient{Name: "webhook", WebhookURL: globalHook})
	}
	return out
}

// targetURL is what a message shows as the target's address.
func targetURL(t prober.Target) string {
	switch {
	case t.HTTP != nil:
		return secret.RedactURL(t.HTTP.URL, secret.URLCredentials)
	case t.TCP != nil:
		return "tcp://" + t.TCP.Address
	case t.TLS != nil:
		return "tls://" + t.TLS.Address
	case t.DNS != nil:
		server := t.DNS.Server
		if server == "" {
			server = "system-resolver"
		} else if h, p, err := net.SplitHostPort(server); err == nil {
			server = net.JoinHostPort(h, p)
		}
		return "dns://" + server + "/" + t.DNS.Name + "?type=" + t.DNS.Type
	case t.ICMP != nil:
		return "icmp://" + t.ICMP.Host
	case t.GRPC != nil:
		return "grpc://" + t.GRPC.Address + "/" + t.GRPC.Service
	}
	return "" // a push target's only address is its secret ping URL
}
