package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/upwatch/upwatch/report"
)

// DefaultTenant owns the targets, groups, policies and windows of the
// config file, and the bootstrap admin key.
const DefaultTenant = "default"

// Errors of the tenancy methods; test with errors.Is.
var (
	// ErrNotFound: no such object in that tenant.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the id is taken (for targets: by any tenant).
	ErrConflict = errors.New("already exists")
)

// Tenant is one customer of the API; every object belongs to one.
type Tenant struct {
	ID, Name  string
	CreatedAt time.Time
}

// APIKey is what the registry keeps of an API key: never the key itself,
// only its SHA-256 hash and its first characters (Prefix) to find and show it.
type APIKey struct {
	ID, TenantID, Name string
	Prefix             string
	Hash               []byte
	Scopes             []string
	CreatedAt          time.Time
	ExpiresAt          time.Time // zero: never
	RevokedAt          time.Time // zero: valid
	LastUsedAt         time.Time // zero: never used
}

// AuditEntry records one write made through the API.
type AuditEntry struct {
	ID                   int64
	TenantID, KeyID      string
	Action               string // create, update, delete, pause, resume, revoke, ...
	ObjectType, ObjectID string
	At                   time.Time
}

// AuditQuery pages through a tenant's audit log, newest first.
type AuditQuery struct {
	// Before continues below this entry id (0: from the newest).
	Before int64
	Limit  int
}

// TargetRecord is a target created through the API. Spec is its JSON with
// the credentials left out; Secrets are the credentials, sealed by the
// caller (the API binds them to tenant and target id).
type TargetRecord struct {
	TenantID, ID string
	// Key is what the target's data belongs to; CreateTarget and
	// ApplyTargets assign it, and it is never reused (see targetKey).
	Key                  string
	Spec                 []byte
	Secrets              []byte
	Paused               bool
	CreatedAt, UpdatedAt time.Time
}

// ObjectKind names one of the tenant-scoped object tables.
type ObjectKind string

// The object kinds.
const (
	ContactGroups      ObjectKind = "contact_groups"
	AlertPolicies      ObjectKind = "alert_policies"
	MaintenanceWindows ObjectKind = "maintenance_windows"
)

func (k ObjectKind) valid() bool {
	return k == ContactGroups || k == AlertPolicies || k == MaintenanceWindows
}

// Object is a contact group, alert policy or maintenance window: its id is
// unique within the tenant and its Spec is JSON.
type Object struct {
	TenantID, ID         string
	Spec                 []byte
	CreatedAt, UpdatedAt time.Time
}

// CreateTenant adds a tenant; ErrConflict if the id is taken.
func (s *Registry) CreateTenant(ctx context.Context, t Tenant) error {
	if t.ID == "" {
		return errors.New("registry store: create tenant: empty id")
	}
	_, err := s.exec(ctx, `INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)`,
		t.ID, t.Name, nanos(t.CreatedAt))
	return s.wrap("create tenant "+t.ID, err)
}

// Tenant returns one tenant, or ErrNotFound.
func (s *Registry) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	var created sql.NullInt64
	err := s.queryRow(ctx, `SELECT id, name, created_at FROM tenants WHERE id = ?`, id).Scan(&t.ID, &t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	t.CreatedAt = fromNanos(created)
	return t, s.wrap("tenant "+id, err)
}

// Tenants lists every tenant by id.
func (s *Registry) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.query(ctx, `SELECT id, name, created_at FROM tenants ORDER BY id`)
	out, err := scanAll(rows, err, func(sc scanner) (t Tenant, err error) {
		var created sql.NullInt64
		err = sc.Scan(&t.ID, &t.Name, &created)
		t.CreatedAt = fromNanos(created)
		return t, err
	})
	return out, s.wrap("tenants", err)
}

const keyColumns = `id, tenant_id, name, prefix, hash, scopes, created_at, expires_at, revoked_at, last_used_at`

func scanKey(sc scanner) (APIKey, error) {
	var k APIKey
	var scopes string
	var created, expires, revoked, used sql.NullInt64
	if err := sc.Scan(&k.ID, &k.TenantID, &k.Name, &k.Prefix, &k.Hash, &scopes, &created, &expires, &revoked, &used); err != nil {
		return k, err
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return k, fmt.Errorf("key %s: scopes: %w", k.ID, err)
	}
	k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt = fromNanos(created), fromNanos(expires), fromNanos(revoked), fromNanos(used)
	return k, nil
}

// CreateAPIKey stores a key's hash; the tenant must exist.
func (s *Registry) CreateAPIKey(ctx context.Context, k APIKey) error {
	if k.ID == "" || k.TenantID == "" || len(k.Hash) == 0 || k.Prefix == "" {
		return errors.New("registry store: create API key: id, tenant, prefix and hash are required")
	}
	scopes, err := json.Marshal(k.Scopes)
	if err != nil {
		return s.wrap("create API key", err)
	}
	_, err = s.exec(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.TenantID, k.Name, k.Prefix, k.Hash, string(scopes), nanos(k.CreatedAt),
		nullNanos(k.ExpiresAt), nullNanos(k.RevokedAt), nullNanos(k.LastUsedAt))
	return s.wrap("create API key "+k.ID, err)
}

// APIKeysByPrefix returns the keys (of any tenant) whose Prefix is prefix;
// the caller compares hashes.
func (s *Registry) APIKeysByPrefix(ctx context.Context, prefix string) ([]APIKey, error) {
	rows, err := s.query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE prefix = ?`, prefix)
	keys, err := scanAll(rows, err, scanKey)
	return keys, s.wrap("API keys by prefix", err)
}

// APIKeys lists a tenant's keys, oldest first, revoked ones included.
func (s *Registry) APIKeys(ctx context.Context, tenantID string) ([]APIKey, error) {
	rows, err := s.query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id`, tenantID)
	keys, err := scanAll(rows, err, scanKey)
	return keys, s.wrap("API keys", err)
}

// APIKey returns one of a tenant's keys, or ErrNotFound.
func (s *Registry) APIKey(ctx context.Context, tenantID, id string) (APIKey, error) {
	rows, err := s.query(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = ? AND id = ?`, tenantID, id)
	k, err := first(scanAll(rows, err, scanKey))
	return k, s.wrap("API key "+id, err)
}

// RevokeAPIKey marks a tenant's key revoked at at (a key already revoked
// keeps its first time); ErrNotFound if the tenant has no such key.
func (s *Registry) RevokeAPIKey(ctx context.Context, tenantID, id string, at time.Time) error {
	err := affected(s.exec(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE tenant_id = ? AND id = ?`,
		nanos(at), tenantID, id))
	return s.wrap("revoke API key "+id, err)
}

// TouchAPIKey sets a key's last_used_at (never backwards).
func (s *Registry) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`,
		nanos(at), id, nanos(at))
	return s.wrap("touch API key "+id, err)
}

// AppendAudit adds an entry to the audit log.
func (s *Registry) AppendAudit(ctx context.Context, e AuditEntry) error {
	_, err := s.exec(ctx, `INSERT INTO audit_log (tenant_id, key_id, action, object_type, object_id, at) VALUES (?, ?, ?, ?, ?, ?)`,
		e.TenantID, e.KeyID, e.Action, e.ObjectType, e.ObjectID, nanos(e.At))
	return s.wrap("append audit", err)
}

// Audit lists a tenant's audit entries, newest first.
func (s *Registry) Audit(ctx context.Context, tenantID string, q AuditQuery) ([]AuditEntry, error) {
	query := `SELECT id, tenant_id, key_id, action, object_type, object_id, at FROM audit_log WHERE tenant_id = ?`
	args := []any{tenantID}
	if q.Before > 0 {
		query, args = query+` AND id < ?`, append(args, q.Before)
	}
	rows, err := s.query(ctx, query+` ORDER BY id DESC LIMIT ?`, append(args, clampLimit(q.Limit))...)
	out, err := scanAll(rows, err, func(sc scanner) (e AuditEntry, err error) {
		var at sql.NullInt64
		err = sc.Scan(&e.ID, &e.TenantID, &e.KeyID, &e.Action, &e.ObjectType, &e.ObjectID, &at)
		e.At = fromNanos(at)
		return e, err
	})
	return out, s.wrap("audit", err)
}

// CreateTarget stores an API target under a new key and returns that key;
// ErrConflict if the tenant already has a target with that id.
func (s *Registry) CreateTarget(ctx context.Context, t TargetRecord) (string, error) {
	if t.ID == "" || t.TenantID == "" {
		return "", errors.New("registry store: create target: id and tenant are required")
	}
	err := s.withTx(ctx, func(tx txn) error { return insertTarget(ctx, tx, &t) })
	return t.Key, s.wrap("create target "+t.ID, err)
}

// UpdateTarget replaces a tenant's target (spec, secrets, paused,
// updated_at); ErrNotFound if the tenant has no such target.
func (s *Registry) UpdateTarget(ctx context.Context, t TargetRecord) error {
	err := affected(s.exec(ctx, `UPDATE api_targets SET spec = ?, secrets = ?, paused = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		string(t.Spec), t.Secrets, t.Paused, nanos(t.UpdatedAt), t.TenantID, t.ID))
	return s.wrap("update target "+t.ID, err)
}

// DeleteTarget removes a tenant's target; ErrNotFound if there is none.
func (s *Registry) DeleteTarget(ctx context.Context, tenantID, id string) error {
	err := affected(s.exec(ctx, `DELETE FROM api_targets WHERE tenant_id = ? AND id = ?`, tenantID, id))
	return s.wrap("delete target "+id, err)
}

const targetColumns = `id, tenant_id, target_key, spec, secrets, paused, created_at, updated_at`

func scanTarget(sc scanner) (t TargetRecord, err error) {
	var spec string
	var created, updated sql.NullInt64
	err = sc.Scan(&t.ID, &t.TenantID, &t.Key, &spec, &t.Secrets, &t.Paused, &created, &updated)
	t.Spec, t.CreatedAt, t.UpdatedAt = []byte(spec), fromNanos(created), fromNanos(updated)
	return t, err
}

// Target returns a tenant's target, or ErrNotFound (also when another
// tenant has it).
func (s *Registry) Target(ctx context.Context, tenantID, id string) (TargetRecord, error) {
	rows, err := s.query(ctx, `SELECT `+targetColumns+` FROM api_targets WHERE tenant_id = ? AND id = ?`, tenantID, id)
	t, err := first(scanAll(rows, err, scanTarget))
	return t, s.wrap("target "+id, err)
}

// first is the first of list, or ErrNotFound if it is empty.
func first[T any](list []T, err error) (T, error) {
	if err == nil && len(list) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return list[0], nil
}

// Targets lists a tenant's targets by id; an empty tenantID lists every
// tenant's (for the scheduler).
func (s *Registry) Targets(ctx context.Context, tenantID string) ([]TargetRecord, error) {
	query, args := `SELECT `+targetColumns+` FROM api_targets`, []any{}
	if tenantID != "" {
		query, args = query+` WHERE tenant_id = ?`, append(args, tenantID)
	}
	rows, err := s.query(ctx, query+` ORDER BY tenant_id, id`, args...)
	ts, err := scanAll(rows, err, scanTarget)
	return ts, s.wrap("targets", err)
}

func checkKind(k ObjectKind) error {
	if !k.valid() {
		return fmt.Errorf("unknown object kind %q", k)
	}
	return nil
}

// CreateObject stores a group, policy or window; ErrConflict if the tenant
// already has one of that kind with that id.
func (s *Registry) CreateObject(ctx context.Context, kind ObjectKind, o Object) error {
	if err := checkKind(kind); err != nil {
		return s.wrap("create object", err)
	}
	if o.ID == "" || o.TenantID == "" {
		return fmt.Errorf("registry store: create %s: id and tenant are required", kind)
	}
	_, err := s.exec(ctx, `INSERT INTO `+string(kind)+` (tenant_id, id, spec, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		o.TenantID, o.ID, string(o.Spec), nanos(o.CreatedAt), nanos(o.UpdatedAt))
	return s.wrap(fmt.Sprintf("create %s %s", kind, o.ID), err)
}

// UpdateObject replaces an object's spec and updated_at; ErrNotFound if the
// tenant has none with that id.
func (s *Registry) UpdateObject(ctx context.Context, kind ObjectKind, o Object) error {
	if err := checkKind(kind); err != nil {
		return s.wrap("update object", err)
	}
	err := affected(s.exec(ctx, `UPDATE `+string(kind)+` SET spec = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		string(o.Spec), nanos(o.UpdatedAt), o.TenantID, o.ID))
	return s.wrap(fmt.Sprintf("update %s %s", kind, o.ID), err)
}

// DeleteObject removes an object; ErrNotFound if there is none.
func (s *Registry) DeleteObject(ctx context.Context, kind ObjectKind, tenantID, id string) error {
	if err := checkKind(kind); err != nil {
		return s.wrap("delete object", err)
	}
	err := affected(s.exec(ctx, `DELETE FROM `+string(kind)+` WHERE tenant_id = ? AND id = ?`, tenantID, id))
	return s.wrap(fmt.Sprintf("delete %s %s", kind, id), err)
}

// Objects lists a tenant's objects of a kind by id; an empty tenantID
// lists every tenant's.
func (s *Registry) Objects(ctx context.Context, kind ObjectKind, tenantID string) ([]Object, error) {
	if err := checkKind(kind); err != nil {
		return nil, s.wrap("objects", err)
	}
	query, args := `SELECT tenant_id, id, spec, created_at, updated_at FROM `+string(kind), []any{}
	if tenantID != "" {
		query, args = query+` WHERE tenant_id = ?`, append(args, tenantID)
	}
	rows, err := s.query(ctx, query+` ORDER BY tenant_id, id`, args...)
	out, err := scanAll(rows, err, func(sc scanner) (o Object, err error) {
		var spec string
		var created, updated sql.NullInt64
		err = sc.Scan(&o.TenantID, &o.ID, &spec, &created, &updated)
		o.Spec, o.CreatedAt, o.UpdatedAt = []byte(spec), fromNanos(created), fromNanos(updated)
		return o, err
	})
	return out, s.wrap(string(kind), err)
}

// Object returns one of a tenant's objects, or ErrNotFound.
func (s *Registry) Object(ctx context.Context, kind ObjectKind, tenantID, id string) (Object, error) {
	if err := checkKind(kind); err != nil {
		return Object{}, s.wrap("object", err)
	}
	o := Object{TenantID: tenantID, ID: id}
	var spec string
	var created, updated sql.NullInt64
	err := s.queryRow(ctx, `SELECT spec, created_at, updated_at FROM `+string(kind)+` WHERE tenant_id = ? AND id = ?`,
		tenantID, id).Scan(&spec, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	o.Spec, o.CreatedAt, o.UpdatedAt = []byte(spec), fromNanos(created), fromNanos(updated)
	return o, s.wrap(fmt.Sprintf("%s %s", kind, id), err)
}

// reportKeyAAD binds a sealed report key to its tenant and kid.
func reportKeyAAD(tenantID, kid string) []byte {
	return []byte("upwatch report key\x00" + tenantID + "\x00" + kid)
}

// CreateReportKey stores a tenant's report key, its secret sealed with
// the store's master key (additional data: tenant and kid). It fails with
// crypt.ErrNoMasterKey when the store has no master key.
func (s *Registry) CreateReportKey(ctx context.Context, tenantID string, k report.Key) error {
	if tenantID == "" || k.ID == "" || len(k.Secret) != report.KeySize {
		return fmt.Errorf("registry store: create report key: tenant, kid and a %d-byte secret are required", report.KeySize)
	}
	sealed, err := s.masterKey.Seal([]byte(k.Secret), reportKeyAAD(tenantID, k.ID))
	if err != nil {
		return fmt.Errorf("registry store: create report key %s: %w", k.ID, err)
	}
	_, err = s.exec(ctx, `INSERT INTO report_keys (tenant_id, kid, secret, created_at) VALUES (?, ?, ?, ?)`,
		tenantID, k.ID, sealed, nanos(k.CreatedAt))
	return s.wrap("create report key "+k.ID, err)
}

// RetireReportKey marks a key retired at at; it still opens old reports.
func (s *Registry) RetireReportKey(ctx context.Context, tenantID, kid string, at time.Time) error {
	err := affected(s.exec(ctx, `UPDATE report_keys SET retired_at = COALESCE(retired_at, ?) WHERE tenant_id = ? AND kid = ?`,
		nanos(at), tenantID, kid))
	return s.wrap("retire report key "+kid, err)
}

func (s *Registry) openReportKey(tenantID, kid string, sealed []byte, created sql.NullInt64) (report.Key, error) {
	secret, err := s.masterKey.Open(sealed, reportKeyAAD(tenantID, kid))
	if err != nil {
		return report.Key{}, fmt.Errorf("report key %s: %w", kid, err)
	}
	return report.Key{ID: kid, Secret: secret, CreatedAt: fromNanos(created)}, nil
}

// ReportKeys returns a tenant's report keys, newest first, retired ones
// included.
func (s *Registry) ReportKeys(ctx context.Context, tenantID string) ([]report.Key, error) {
	rows, err := s.query(ctx, `SELECT kid, secret, created_at FROM report_keys WHERE tenant_id = ? ORDER BY created_at DESC, kid DESC`, tenantID)
	out, err := scanAll(rows, err, func(sc scanner) (report.Key, error) {
		var kid string
		var sealed []byte
		var created sql.NullInt64
		if err := sc.Scan(&kid, &sealed, &created); err != nil {
			return report.Key{}, err
		}
		return s.openReportKey(tenantID, kid, sealed, created)
	})
	return out, s.wrap("report keys", err)
}

// ReportKeyInfo is a report key's metadata, without its secret.
type ReportKeyInfo struct {
	KID       string
	CreatedAt time.Time
	// RetiredAt is when a rotation superseded the key; zero while it is
	// current.
	RetiredAt time.Time
}

// ReportKeyInfos returns the metadata of a tenant's report keys, newest
// first (the order of ReportKeys), retired ones included. Secrets are not
// read.
func (s *Registry) ReportKeyInfos(ctx context.Context, tenantID string) ([]ReportKeyInfo, error) {
	rows, err := s.query(ctx, `SELECT kid, created_at, retired_at FROM report_keys WHERE tenant_id = ?
		ORDER BY created_at DESC, kid DESC`, tenantID)
	out, err := scanAll(rows, err, func(sc scanner) (k ReportKeyInfo, err error) {
		var created, retired sql.NullInt64
		err = sc.Scan(&k.KID, &created, &retired)
		k.CreatedAt, k.RetiredAt = fromNanos(created), fromNanos(retired)
		return k, err
	})
	return out, s.wrap("report keys", err)
}

// LookupReportKey finds one of a tenant's report keys by kid.
func (s *Registry) LookupReportKey(ctx context.Context, tenantID, kid string) (report.Key, bool, error) {
	var sealed []byte
	var created sql.NullInt64
	err := s.queryRow(ctx, `SELECT secret, created_at FROM report_keys WHERE tenant_id = ? AND kid = ?`, tenantID, kid).Scan(&sealed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return report.Key{}, false, nil
	}
	if err != nil {
		return report.Key{}, false, s.wrap("report key "+kid, err)
	}
	k, err := s.openReportKey(tenantID, kid, sealed, created)
	if err != nil {
		return report.Key{}, false, fmt.Errorf("registry store: %w", err)
	}
	return k, true, nil
}
