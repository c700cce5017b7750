package tenancy

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/secret"
)

// Kind describes one tenant-scoped collection of objects of type T:
// contact groups, alert policies or maintenance windows. Their documents
// have the config file's shape; the config file's own objects belong to
// tenant "default" and are read-only.
type Kind[T any] struct {
	Kind registry.ObjectKind
	Noun string // for messages
	// IDFromName: the object's name is its id (groups and policies are
	// referred to by name); else ids are generated with IDPrefix.
	IDFromName bool
	IDPrefix   string
	// Name returns a value's name.
	Name func(v T) string
	// fromConfig lists the config file's objects (tenant "default").
	fromConfig func(c *config.Config) []Object[T]
	// redact, when set, returns the value fit to show and to store in the
	// spec, and the credentials it took out (sealed apart, see Spec);
	// unredact puts them back; keep puts cur's credentials where an update
	// shows them redacted.
	redact   func(v T) (T, []string)
	unredact func(v T, secrets []string) T
	keep     func(v, cur T) T
}

// Object is one object of a kind with where it comes from.
type Object[T any] struct {
	ID, Source           string
	V                    T
	CreatedAt, UpdatedAt time.Time
}

// The object kinds.
var (
	ContactGroups = &Kind[config.ContactGroup]{
		Kind: registry.ContactGroups, Noun: "contact group", IDFromName: true,
		Name: func(g config.ContactGroup) string { return g.Name },
		fromConfig: func(c *config.Config) []Object[config.ContactGroup] {
			return configObjects(c.ContactGroups, func(_ int, g config.ContactGroup) string { return g.Name })
		},
		redact: redactGroup, unredact: unredactGroup, keep: keepGroupWebhooks,
	}
	AlertPolicies = &Kind[config.AlertPolicy]{
		Kind: registry.AlertPolicies, Noun: "alert policy", IDFromName: true,
		Name: func(p config.AlertPolicy) string { return p.Name },
		fromConfig: func(c *config.Config) []Object[config.AlertPolicy] {
			return configObjects(c.Policies, func(_ int, p config.AlertPolicy) string { return p.Name })
		},
	}
	MaintenanceWindows = &Kind[alerting.Window]{
		Kind: registry.MaintenanceWindows, Noun: "maintenance window", IDPrefix: "mw_",
		Name: func(w alerting.Window) string { return w.Name },
		fromConfig: func(c *config.Config) []Object[alerting.Window] {
			return configObjects(c.Maintenance, func(i int, _ alerting.Window) string { return "config-" + strconv.Itoa(i) })
		},
	}
)

func configObjects[T any](vs []T, id func(int, T) string) []Object[T] {
	var out []Object[T]
	for i, v := range vs {
		out = append(out, Object[T]{ID: id(i, v), Source: SourceConfig, V: v})
	}
	return out
}

// Decode reads a document (read-only fields and id removed) into a value.
// Its error is a *DocumentError.
func (k *Kind[T]) Decode(doc map[string]any) (T, error) {
	var v T
	err := FromDocument(doc, &v)
	return v, err
}

// Redacted is v fit to show: every credential redacted.
func (k *Kind[T]) Redacted(v T) T {
	if k.redact != nil {
		v, _ = k.redact(v)
	}
	return v
}

// Keep puts cur's credentials where v, an update, shows them redacted.
func (k *Kind[T]) Keep(v, cur T) T {
	if k.keep != nil {
		return k.keep(v, cur)
	}
	return v
}

// sealedField is the spec field that holds an object's sealed credentials
// (the store keeps one spec per object; the rest of it is in clear).
const sealedField = "sealed_secrets"

func (k *Kind[T]) aad(tenant, id string) []byte {
	return []byte("upwatch " + string(k.Kind) + " secrets\x00" + tenant + "\x00" + id)
}

// Spec is the stored form of v: its document with credentials redacted,
// and those sealed with mk under sealedField.
func (k *Kind[T]) Spec(tenant, id string, v T, mk crypt.MasterKey) ([]byte, error) {
	var secrets []string
	if k.redact != nil {
		v, secrets = k.redact(v)
	}
	doc, err := ToDocument(v)
	if err != nil {
		return nil, err
	}
	if len(secrets) > 0 {
		plain, err := json.Marshal(secrets)
		if err != nil {
			return nil, err
		}
		sealed, err := mk.Seal(plain, k.aad(tenant, id))
		if err != nil {
			return nil, fmt.Errorf("sealing the credentials of %s %s: %w", k.Noun, id, err)
		}
		doc[sealedField] = base64.StdEncoding.EncodeToString(sealed)
	}
	return json.Marshal(doc)
}

// Open reverses Spec. A spec written before credentials were sealed holds
// them in clear and opens as it is (Reseal rewrites it).
func (k *Kind[T]) Open(o registry.Object, mk crypt.MasterKey) (Object[T], error) {
	var doc map[string]any
	if err := json.Unmarshal(o.Spec, &doc); err != nil {
		return Object[T]{}, fmt.Errorf("%s %s: stored spec: %w", k.Noun, o.ID, err)
	}
	sealed, _ := doc[sealedField].(string)
	delete(doc, sealedField)
	v, err := k.Decode(doc)
	if err != nil {
		return Object[T]{}, fmt.Errorf("%s %s: stored spec: %w", k.Noun, o.ID, err)
	}
	if sealed != "" && k.unredact != nil {
		b, err := base64.StdEncoding.DecodeString(sealed)
		if err != nil {
			return Object[T]{}, fmt.Errorf("%s %s: credentials do not decode", k.Noun, o.ID)
		}
		plain, err := mk.Open(b, k.aad(o.TenantID, o.ID))
		if err != nil {
			return Object[T]{}, fmt.Errorf("%s %s: credentials: %w", k.Noun, o.ID, err)
		}
		var secrets []string
		if err := json.Unmarshal(plain, &secrets); err != nil {
			return Object[T]{}, fmt.Errorf("%s %s: credentials do not decode", k.Noun, o.ID)
		}
		v = k.unredact(v, secrets)
	}
	return Object[T]{ID: o.ID, Source: SourceAPI, V: v, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}, nil
}

// ObjectReader reads the registry's objects of a kind ("" tenant: every
// tenant's).
type ObjectReader interface {
	Object(ctx context.Context, kind registry.ObjectKind, tenantID, id string) (registry.Object, error)
	Objects(ctx context.Context, kind registry.ObjectKind, tenantID string) ([]registry.Object, error)
}

// List lists a tenant's objects of the kind: the config file's first
// (tenant "default"), then the registry's.
func (k *Kind[T]) List(ctx context.Context, r ObjectReader, cfg *config.Config, tenant string, mk crypt.MasterKey) ([]Object[T], error) {
	var out []Object[T]
	if tenant == registry.DefaultTenant {
		out = append(out, k.fromConfig(cfg)...)
	}
	os, err := r.Objects(ctx, k.Kind, tenant)
	if err != nil {
		return nil, err
	}
	for _, o := range os {
		oi, err := k.Open(o, mk)
		if err != nil {
			return nil, err
		}
		out = append(out, oi)
	}
	return out, nil
}

// Get returns a tenant's object of the kind, from the registry or (tenant
// "default") the config file; registry.ErrNotFound when it has none by id.
func (k *Kind[T]) Get(ctx context.Context, r ObjectReader, cfg *config.Config, tenant, id string, mk crypt.MasterKey) (Object[T], error) {
	o, err := r.Object(ctx, k.Kind, tenant, id)
	switch {
	case err == nil:
		return k.Open(o, mk)
	case !errors.Is(err, registry.ErrNotFound):
		return Object[T]{}, err
	}
	if tenant == registry.DefaultTenant {
		for _, c := range k.fromConfig(cfg) {
			if c.ID == id {
				return c, nil
			}
		}
	}
	return Object[T]{}, err
}

// Values are the objects' values.
func Values[T any](os []Object[T]) []T {
	out := make([]T, 0, len(os))
	for _, o := range os {
		out = append(out, o.V)
	}
	return out
}

// redactGroup takes a contact group's credentials out: each webhook URL
// (a credential as a whole: its path or query is the token), then every
// tagged field of its destinations (secret.EachTagged), in that order.
func redactGroup(g config.ContactGroup) (config.ContactGroup, []string) {
	var secrets []string
	if len(g.Webhooks) > 0 {
		secrets = g.Webhooks
		g.Webhooks = make([]string, len(secrets))
		for i, w := range secrets {
			g.Webhooks[i] = secret.RedactURL(w, secret.URLWhole)
		}
	}
	g.Destinations = g.Destinations.Clone()
	secret.EachTagged(&g.Destinations, func(kind string, f *string) {
		secrets = append(secrets, *f)
		*f = secret.RedactTagged(kind, *f)
	})
	return g, secrets
}

// unredactGroup reverses redactGroup. A group sealed before destinations
// existed has only its webhooks sealed.
func unredactGroup(g config.ContactGroup, secrets []string) config.ContactGroup {
	n := 0
	secret.EachTagged(&g.Destinations, func(string, *string) { n++ })
	if len(secrets) != len(g.Webhooks)+n {
		return g
	}
	g.Webhooks = secrets[:len(g.Webhooks):len(g.Webhooks)]
	rest := secrets[len(g.Webhooks):]
	g.Destinations = g.Destinations.Clone()
	secret.EachTagged(&g.Destinations, func(_ string, f *string) {
		*f, rest = rest[0], rest[1:]
	})
	return g
}

// keepGroupWebhooks puts back each stored webhook and destination
// credential whose redacted form an update sends.
func keepGroupWebhooks(g, c config.ContactGroup) config.ContactGroup {
	ws := slices.Clone(g.Webhooks)
	for i, w := range ws {
		for _, stored := range c.Webhooks {
			if w == secret.RedactURL(stored, secret.URLWhole) {
				ws[i] = stored
				break
			}
		}
	}
	g.Webhooks = ws
	stored := map[string]string{} // redacted form → credential
	cur := c.Destinations.Clone()
	secret.EachTagged(&cur, func(kind string, f *string) {
		if *f != "" {
			stored[secret.RedactTagged(kind, *f)] = *f
		}
	})
	g.Destinations = g.Destinations.Clone()
	secret.EachTagged(&g.Destinations, func(_ string, f *string) {
		if v, ok := stored[*f]; ok {
			*f = v
		}
	})
	return g
}
