package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/store"
)

// Tenancy is the API-managed part of what runs: every tenant's targets,
// contact groups, policies and maintenance windows, decoded (credentials
// opened). app merges it with the config file's into the scheduler and the
// alert engine.
type Tenancy struct {
	Targets  []TargetInfo
	Groups   map[string][]config.ContactGroup // by tenant
	Policies map[string][]config.AlertPolicy  // by tenant
	Windows  map[string][]alerting.Window     // by tenant, validated
}

// LoadTenancy reads every tenant's API objects. A target whose stored
// record does not open (a lost master key, say) is skipped and reported in
// the joined error; the rest still load.
func LoadTenancy(ctx context.Context, reg Registry, mk crypt.MasterKey) (Tenancy, error) {
	out := Tenancy{Groups: map[string][]config.ContactGroup{}, Policies: map[string][]config.AlertPolicy{}, Windows: map[string][]alerting.Window{}}
	recs, err := reg.Targets(ctx, "")
	if err != nil {
		return out, err
	}
	var errs []error
	for _, rec := range recs {
		ti, err := OpenTarget(rec, mk)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.Targets = append(out.Targets, ti)
	}
	for _, k := range objectKinds {
		os, err := reg.Objects(ctx, k.kind, "")
		if err != nil {
			return out, err
		}
		for _, o := range os {
			oi, err := k.open(o)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			switch v := oi.V.(type) {
			case config.ContactGroup:
				out.Groups[o.TenantID] = append(out.Groups[o.TenantID], v)
			case config.AlertPolicy:
				out.Policies[o.TenantID] = append(out.Policies[o.TenantID], v)
			case alerting.Window:
				if len(v.Validate("window")) > 0 {
					errs = append(errs, fmt.Errorf("maintenance window %s of tenant %s does not validate", o.ID, o.TenantID))
					continue
				}
				out.Windows[o.TenantID] = append(out.Windows[o.TenantID], v)
			}
		}
	}
	return out, errors.Join(errs...)
}

// Bootstrap makes sure tenant "default" exists and, when key is not empty
// and that tenant has no valid admin key yet, stores key (hashed) as its
// admin key. It reports whether it stored the key.
func Bootstrap(ctx context.Context, reg Registry, key string, now time.Time) (bool, error) {
	if err := reg.CreateTenant(ctx, store.Tenant{ID: store.DefaultTenant, Name: "default", CreatedAt: now}); err != nil && !errors.Is(err, store.ErrConflict) {
		return false, err
	}
	if key == "" {
		return false, nil
	}
	if !wellFormed(key) {
		return false, fmt.Errorf("the bootstrap key is malformed: it must be %q followed by %d base62 characters (`upwatch keygen` prints a master key, not an API key)", KeyPrefix, keySecretLen)
	}
	keys, err := reg.APIKeys(ctx, store.DefaultTenant)
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		valid := k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
		if valid && slices.Contains(k.Scopes, string(ScopeAdmin)) {
			return false, nil
		}
	}
	id, err := randomID("key_")
	if err != nil {
		return false, err
	}
	err = reg.CreateAPIKey(ctx, store.APIKey{ID: id, TenantID: store.DefaultTenant, Name: "bootstrap",
		Prefix: key[:keyPrefixLen], Hash: HashKey(key), Scopes: []string{string(ScopeAdmin)}, CreatedAt: now})
	return err == nil, err
}
