package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/store"
	"github.com/upwatch/upwatch/tenancy"
)

// Tenancy is the API-managed part of what runs: every tenant's targets,
// contact groups, policies and maintenance windows, decoded (credentials
// opened). app merges it with the config file's into the scheduler and the
// alert engine.
type Tenancy struct {
	Targets  []tenancy.TargetInfo
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
		ti, err := tenancy.OpenTarget(rec, mk)
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
			oi, err := k.open(o, mk)
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

// ResealStored rewrites every stored target and contact group whose spec
// still holds credentials in clear (written before secret headers, URL
// credentials and webhook URLs were sealed) in the sealed form, and says
// how many it rewrote. Run at start; a record that does not open is left
// as it is and reported in the joined error. Rewriting is idempotent, so
// several servers starting together may all run it.
func ResealStored(ctx context.Context, reg Registry, mk crypt.MasterKey) (int, error) {
	recs, err := reg.Targets(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, rec := range recs {
		ti, err := tenancy.OpenTarget(rec, mk)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sealed, err := tenancy.SealTarget(rec.TenantID, ti.Target, mk)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if bytes.Equal(sealed.Spec, rec.Spec) {
			continue
		}
		sealed.CreatedAt, sealed.UpdatedAt = rec.CreatedAt, rec.UpdatedAt
		if err := reg.UpdateTarget(ctx, sealed); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	for _, k := range objectKinds {
		if k.redact == nil {
			continue
		}
		os, err := reg.Objects(ctx, k.kind, "")
		if err != nil {
			return n, err
		}
		for _, o := range os {
			var doc map[string]any
			if json.Unmarshal(o.Spec, &doc) == nil && doc[sealedField] != nil {
				continue // sealed already
			}
			oi, err := k.open(o, mk)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if _, secrets := k.redact(oi.V); len(secrets) == 0 {
				continue
			}
			spec, err := k.spec(o.TenantID, o.ID, oi.V, mk)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := reg.UpdateObject(ctx, k.kind, store.Object{TenantID: o.TenantID, ID: o.ID, Spec: spec, UpdatedAt: o.UpdatedAt}); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
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
