package api

import (
	"context"
	"time"

	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/report"
)

// What the API reads and writes, one small interface per resource; the
// registry (registry.Registry) implements them all and app passes it for
// each. Every one is required: none is discovered by a type assertion.

// TenantStore holds the tenants.
type TenantStore interface {
	CreateTenant(ctx context.Context, t registry.Tenant) error
	Tenant(ctx context.Context, id string) (registry.Tenant, error)
	Tenants(ctx context.Context) ([]registry.Tenant, error)
}

// KeyStore manages a tenant's API keys (stored as hashes).
type KeyStore interface {
	CreateAPIKey(ctx context.Context, k registry.APIKey) error
	APIKeys(ctx context.Context, tenantID string) ([]registry.APIKey, error)
	APIKey(ctx context.Context, tenantID, id string) (registry.APIKey, error)
	RevokeAPIKey(ctx context.Context, tenantID, id string, at time.Time) error
}

// KeyAuthenticator finds the keys a presented key may be and records when a
// key was last used.
type KeyAuthenticator interface {
	APIKeysByPrefix(ctx context.Context, prefix string) ([]registry.APIKey, error)
	TouchAPIKey(ctx context.Context, id string, at time.Time) error
}

// AuditLog records and lists who changed what.
type AuditLog interface {
	AppendAudit(ctx context.Context, e registry.AuditEntry) error
	Audit(ctx context.Context, tenantID string, q registry.AuditQuery) ([]registry.AuditEntry, error)
}

// TargetStore holds the API's target records (sealed by tenancy).
type TargetStore interface {
	CreateTarget(ctx context.Context, t registry.TargetRecord) (string, error)
	UpdateTarget(ctx context.Context, t registry.TargetRecord) error
	DeleteTarget(ctx context.Context, tenantID, id string) error
	Target(ctx context.Context, tenantID, id string) (registry.TargetRecord, error)
	Targets(ctx context.Context, tenantID string) ([]registry.TargetRecord, error)
}

// TargetBatcher applies a tenant's target writes and their audit entries
// in one transaction (PUT /targets?format=yaml).
type TargetBatcher interface {
	ApplyTargets(ctx context.Context, b registry.TargetBatch) error
}

// ObjectStore holds contact groups, alert policies and maintenance windows.
type ObjectStore interface {
	CreateObject(ctx context.Context, kind registry.ObjectKind, o registry.Object) error
	UpdateObject(ctx context.Context, kind registry.ObjectKind, o registry.Object) error
	DeleteObject(ctx context.Context, kind registry.ObjectKind, tenantID, id string) error
	Object(ctx context.Context, kind registry.ObjectKind, tenantID, id string) (registry.Object, error)
	Objects(ctx context.Context, kind registry.ObjectKind, tenantID string) ([]registry.Object, error)
}

// ReportKeyStore holds report keys; the store seals each secret with the
// master key (AAD = tenant + kid), so the API handles report.Key values in
// clear and must never log or return the secret except once, as a JWK, on
// creation. ReportKeys is newest first; ReportKeyInfos lists the keys
// without opening their secrets.
type ReportKeyStore interface {
	CreateReportKey(ctx context.Context, tenantID string, k report.Key) error
	RetireReportKey(ctx context.Context, tenantID, kid string, at time.Time) error
	ReportKeys(ctx context.Context, tenantID string) ([]report.Key, error)
	ReportKeyInfos(ctx context.Context, tenantID string) ([]registry.ReportKeyInfo, error)
}

// StatusPageStore holds status pages (slug and domain unique across
// tenants), their incidents and the targets' badges.
type StatusPageStore interface {
	CreateStatusPage(ctx context.Context, p registry.StatusPage) error
	UpdateStatusPage(ctx context.Context, p registry.StatusPage) error
	DeleteStatusPage(ctx context.Context, tenantID, id string) error
	StatusPage(ctx context.Context, tenantID, id string) (registry.StatusPage, error)
	StatusPages(ctx context.Context, tenantID string) ([]registry.StatusPage, error)
	StatusPageBySlug(ctx context.Context, slug, domain string) (registry.StatusPage, error)

	CreateStatusIncident(ctx context.Context, inc registry.StatusIncident) error
	AddStatusUpdate(ctx context.Context, tenantID, incidentID string, u registry.StatusUpdate) error
	UpdateStatusIncidentTitle(ctx context.Context, tenantID, id, title string) error
	DeleteStatusIncident(ctx context.Context, tenantID, id string) error
	StatusIncident(ctx context.Context, tenantID, id string) (registry.StatusIncident, error)
	StatusIncidents(ctx context.Context, tenantID, pageID string, since time.Time) ([]registry.StatusIncident, error)

	CreateBadge(ctx context.Context, b registry.Badge) error
	TargetBadge(ctx context.Context, tenantID, targetID string) (registry.Badge, error)
	DeleteBadge(ctx context.Context, tenantID, targetID string) error
}

// Stores are the API's stores, one per resource. All are required.
type Stores struct {
	Tenants    TenantStore
	Keys       KeyStore
	KeyAuth    KeyAuthenticator
	Audit      AuditLog
	Targets    TargetStore
	Batch      TargetBatcher
	Objects    ObjectStore
	ReportKeys ReportKeyStore
	// StatusPages holds status pages, their incidents and badges.
	StatusPages StatusPageStore
}

// missing names the first store not given, or "".
func (s Stores) missing() string {
	for _, c := range []struct {
		name string
		set  bool
	}{
		{"Tenants", s.Tenants != nil}, {"Keys", s.Keys != nil}, {"KeyAuth", s.KeyAuth != nil},
		{"Audit", s.Audit != nil}, {"Targets", s.Targets != nil}, {"Batch", s.Batch != nil},
		{"Objects", s.Objects != nil}, {"ReportKeys", s.ReportKeys != nil},
		{"StatusPages", s.StatusPages != nil},
	} {
		if !c.set {
			return c.name
		}
	}
	return ""
}
