package api

import (
	"context"
	"time"

	"github.com/upwatch/upwatch/report"
	"github.com/upwatch/upwatch/store"
)

// Registry is what the API needs of the registry store (store.SQLite
// implements it).
type Registry interface {
	CreateTenant(ctx context.Context, t store.Tenant) error
	Tenant(ctx context.Context, id string) (store.Tenant, error)
	Tenants(ctx context.Context) ([]store.Tenant, error)

	CreateAPIKey(ctx context.Context, k store.APIKey) error
	APIKeysByPrefix(ctx context.Context, prefix string) ([]store.APIKey, error)
	APIKeys(ctx context.Context, tenantID string) ([]store.APIKey, error)
	APIKey(ctx context.Context, tenantID, id string) (store.APIKey, error)
	RevokeAPIKey(ctx context.Context, tenantID, id string, at time.Time) error
	TouchAPIKey(ctx context.Context, id string, at time.Time) error

	AppendAudit(ctx context.Context, e store.AuditEntry) error
	Audit(ctx context.Context, tenantID string, q store.AuditQuery) ([]store.AuditEntry, error)

	CreateTarget(ctx context.Context, t store.TargetRecord) (string, error)
	UpdateTarget(ctx context.Context, t store.TargetRecord) error
	DeleteTarget(ctx context.Context, tenantID, id string) error
	Target(ctx context.Context, tenantID, id string) (store.TargetRecord, error)
	Targets(ctx context.Context, tenantID string) ([]store.TargetRecord, error)

	CreateObject(ctx context.Context, kind store.ObjectKind, o store.Object) error
	UpdateObject(ctx context.Context, kind store.ObjectKind, o store.Object) error
	DeleteObject(ctx context.Context, kind store.ObjectKind, tenantID, id string) error
	Object(ctx context.Context, kind store.ObjectKind, tenantID, id string) (store.Object, error)
	Objects(ctx context.Context, kind store.ObjectKind, tenantID string) ([]store.Object, error)

	// Report keys: the store seals the secret with the master key.
	CreateReportKey(ctx context.Context, tenantID string, k report.Key) error
	RetireReportKey(ctx context.Context, tenantID, kid string, at time.Time) error
	ReportKeys(ctx context.Context, tenantID string) ([]report.Key, error)
	LookupReportKey(ctx context.Context, tenantID, kid string) (report.Key, bool, error)
}

var _ Registry = (*store.SQLite)(nil)
