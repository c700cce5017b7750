package tenancy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/registry"
)

// Reader reads every tenant's targets and objects ("" tenant: all).
type Reader interface {
	Targets(ctx context.Context, tenantID string) ([]registry.TargetRecord, error)
	Objects(ctx context.Context, kind registry.ObjectKind, tenantID string) ([]registry.Object, error)
}

// Rewriter is a Reader that rewrites records in place (Reseal).
type Rewriter interface {
	Reader
	UpdateTarget(ctx context.Context, t registry.TargetRecord) error
	UpdateObject(ctx context.Context, kind registry.ObjectKind, o registry.Object) error
}

// Set is the API-managed part of what runs: every tenant's targets,
// contact groups, policies and maintenance windows, decoded (credentials
// opened). Routes merges it with the config file's.
type Set struct {
	Targets  []TargetInfo
	Groups   map[string][]config.ContactGroup // by tenant
	Policies map[string][]config.AlertPolicy  // by tenant
	Windows  map[string][]alerting.Window     // by tenant, validated
}

// Load reads every tenant's API objects. A record that does not open (a
// lost master key, say) or a window that does not validate is skipped and
// reported in the joined error; the rest still load.
func Load(ctx context.Context, r Reader, mk crypt.MasterKey) (Set, error) {
	out := Set{Groups: map[string][]config.ContactGroup{}, Policies: map[string][]config.AlertPolicy{}, Windows: map[string][]alerting.Window{}}
	recs, err := r.Targets(ctx, "")
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
	if err := loadKind(ctx, r, ContactGroups, mk, &errs, func(o registry.Object, g config.ContactGroup) {
		out.Groups[o.TenantID] = append(out.Groups[o.TenantID], g)
	}); err != nil {
		return out, err
	}
	if err := loadKind(ctx, r, AlertPolicies, mk, &errs, func(o registry.Object, p config.AlertPolicy) {
		out.Policies[o.TenantID] = append(out.Policies[o.TenantID], p)
	}); err != nil {
		return out, err
	}
	if err := loadKind(ctx, r, MaintenanceWindows, mk, &errs, func(o registry.Object, w alerting.Window) {
		if len(w.Validate("window")) > 0 {
			errs = append(errs, fmt.Errorf("maintenance window %s of tenant %s does not validate", o.ID, o.TenantID))
			return
		}
		out.Windows[o.TenantID] = append(out.Windows[o.TenantID], w)
	}); err != nil {
		return out, err
	}
	return out, errors.Join(errs...)
}

// loadKind opens every tenant's objects of k and hands each to add; what
// does not open goes to errs. Only a failed read is returned.
func loadKind[T any](ctx context.Context, r Reader, k *Kind[T], mk crypt.MasterKey, errs *[]error, add func(registry.Object, T)) error {
	os, err := r.Objects(ctx, k.Kind, "")
	if err != nil {
		return err
	}
	for _, o := range os {
		oi, err := k.Open(o, mk)
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		add(o, oi.V)
	}
	return nil
}

// Reseal rewrites every stored target and contact group whose spec still
// holds credentials in clear (written before secret headers, URL
// credentials and webhook URLs were sealed) in the sealed form, and says
// how many it rewrote. Run at start; a record that does not open is left as
// it is and reported in the joined error. Rewriting is idempotent, so
// several servers starting together may all run it.
func Reseal(ctx context.Context, r Rewriter, mk crypt.MasterKey) (int, error) {
	recs, err := r.Targets(ctx, "")
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, rec := range recs {
		ti, err := OpenTarget(rec, mk)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sealed, err := SealTarget(rec.TenantID, ti.Target, mk)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if bytes.Equal(sealed.Spec, rec.Spec) {
			continue
		}
		sealed.CreatedAt, sealed.UpdatedAt = rec.CreatedAt, rec.UpdatedAt
		if err := r.UpdateTarget(ctx, sealed); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	m, err := resealKind(ctx, r, ContactGroups, mk, &errs)
	return n + m, errors.Join(append(errs, err)...)
}

// resealKind rewrites k's objects stored with credentials in clear.
func resealKind[T any](ctx context.Context, r Rewriter, k *Kind[T], mk crypt.MasterKey, errs *[]error) (int, error) {
	os, err := r.Objects(ctx, k.Kind, "")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, o := range os {
		var doc map[string]any
		if json.Unmarshal(o.Spec, &doc) == nil && doc[sealedField] != nil {
			continue // sealed already
		}
		oi, err := k.Open(o, mk)
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		if _, secrets := k.redact(oi.V); len(secrets) == 0 {
			continue
		}
		spec, err := k.Spec(o.TenantID, o.ID, oi.V, mk)
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		if err := r.UpdateObject(ctx, k.Kind, registry.Object{TenantID: o.TenantID, ID: o.ID, Spec: spec, UpdatedAt: o.UpdatedAt}); err != nil {
			*errs = append(*errs, err)
			continue
		}
		n++
	}
	return n, nil
}
