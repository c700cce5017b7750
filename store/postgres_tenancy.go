package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/upwatch/upwatch/report"
)

// CreateTenant adds a tenant; ErrConflict if the id is taken.
func (s *Postgres) CreateTenant(ctx context.Context, t Tenant) error {
	if t.ID == "" {
		return errors.New("registry store: create tenant: empty id")
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)`,
		t.ID, t.Name, nanos(t.CreatedAt))
	return pgWrap("create tenant "+t.ID, err)
}

// Tenant returns one tenant, or ErrNotFound.
func (s *Postgres) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	var created sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created_at FROM tenants WHERE id = $1`, id).Scan(&t.ID, &t.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	t.CreatedAt = fromNanos(created)
	return t, pgWrap("tenant "+id, err)
}

// Tenants lists every tenant by id.
func (s *Postgres) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at FROM tenants ORDER BY id`)
	if err != nil {
		return nil, pgWrap("tenants", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Tenant
	for rows.Next() {
		var t Tenant
		var created sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &created); err != nil {
			return nil, pgWrap("tenants", err)
		}
		t.CreatedAt = fromNanos(created)
		out = append(out, t)
	}
	return out, pgWrap("tenants", rows.Err())
}

// CreateAPIKey stores a key's hash; the tenant must exist.
func (s *Postgres) CreateAPIKey(ctx context.Context, k APIKey) error {
	if k.ID == "" || k.TenantID == "" || len(k.Hash) == 0 || k.Prefix == "" {
		return errors.New("registry store: create API key: id, tenant, prefix and hash are required")
	}
	scopes, err := json.Marshal(k.Scopes)
	if err != nil {
		return pgWrap("create API key", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO api_keys (`+keyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		k.ID, k.TenantID, k.Name, k.Prefix, k.Hash, string(scopes), nanos(k.CreatedAt),
		nullNanos(k.ExpiresAt), nullNanos(k.RevokedAt), nullNanos(k.LastUsedAt))
	return pgWrap("create API key "+k.ID, err)
}

// APIKeysByPrefix returns the keys (of any tenant) whose Prefix is prefix;
// the caller compares hashes.
func (s *Postgres) APIKeysByPrefix(ctx context.Context, prefix string) ([]APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE prefix = $1`, prefix)
	if err != nil {
		return nil, pgWrap("API keys by prefix", err)
	}
	keys, err := scanKeys(rows)
	return keys, pgWrap("API keys by prefix", err)
}

// APIKeys lists a tenant's keys, oldest first, revoked ones included.
func (s *Postgres) APIKeys(ctx context.Context, tenantID string) ([]APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id`, tenantID)
	if err != nil {
		return nil, pgWrap("API keys", err)
	}
	keys, err := scanKeys(rows)
	return keys, pgWrap("API keys", err)
}

// APIKey returns one of a tenant's keys, or ErrNotFound.
func (s *Postgres) APIKey(ctx context.Context, tenantID, id string) (APIKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return APIKey{}, pgWrap("API key", err)
	}
	keys, err := scanKeys(rows)
	if err == nil && len(keys) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return APIKey{}, pgWrap("API key "+id, err)
	}
	return keys[0], nil
}

// RevokeAPIKey marks a tenant's key revoked at at (a key already revoked
// keeps its first time); ErrNotFound if the tenant has no such key.
func (s *Postgres) RevokeAPIKey(ctx context.Context, tenantID, id string, at time.Time) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE tenant_id = $2 AND id = $3`,
		nanos(at), tenantID, id))
	return pgWrap("revoke API key "+id, err)
}

// TouchAPIKey sets a key's last_used_at (never backwards).
func (s *Postgres) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)`,
		nanos(at), id, nanos(at))
	return pgWrap("touch API key "+id, err)
}

// AppendAudit adds an entry to the audit log.
func (s *Postgres) AppendAudit(ctx context.Context, e AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_log (tenant_id, key_id, action, object_type, object_id, at) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.TenantID, e.KeyID, e.Action, e.ObjectType, e.ObjectID, nanos(e.At))
	return pgWrap("append audit", err)
}

// Audit lists a tenant's audit entries, newest first.
func (s *Postgres) Audit(ctx context.Context, tenantID string, q AuditQuery) ([]AuditEntry, error) {
	query := `SELECT id, tenant_id, key_id, action, object_type, object_id, at FROM audit_log WHERE tenant_id = $1`
	args := []any{tenantID}
	if q.Before > 0 {
		query, args = query+` AND id < $2`, append(args, q.Before)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)+1), append(args, clampLimit(q.Limit))...)
	if err != nil {
		return nil, pgWrap("audit", err)
	}
	defer func() { _ = rows.Close() }()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at sql.NullInt64
		if err := rows.Scan(&e.ID, &e.TenantID, &e.KeyID, &e.Action, &e.ObjectType, &e.ObjectID, &at); err != nil {
			return nil, pgWrap("audit", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, pgWrap("audit", rows.Err())
}

// CreateTarget stores an API target under a new key and returns that key;
// ErrConflict if the tenant already has a target with that id.
func (s *Postgres) CreateTarget(ctx context.Context, t TargetRecord) (string, error) {
	if t.ID == "" || t.TenantID == "" {
		return "", errors.New("registry store: create target: id and tenant are required")
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error { return insertTarget(ctx, tx, postgresBind, &t) })
	return t.Key, pgWrap("create target "+t.ID, err)
}

// UpdateTarget replaces a tenant's target (spec, secrets, paused,
// updated_at); ErrNotFound if the tenant has no such target.
func (s *Postgres) UpdateTarget(ctx context.Context, t TargetRecord) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE api_targets SET spec = $1, secrets = $2, paused = $3, updated_at = $4 WHERE tenant_id = $5 AND id = $6`,
		string(t.Spec), t.Secrets, t.Paused, nanos(t.UpdatedAt), t.TenantID, t.ID))
	return pgWrap("update target "+t.ID, err)
}

// DeleteTarget removes a tenant's target; ErrNotFound if there is none.
func (s *Postgres) DeleteTarget(ctx context.Context, tenantID, id string) error {
	err := affected(s.db.ExecContext(ctx, `DELETE FROM api_targets WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return pgWrap("delete target "+id, err)
}

// Target returns a tenant's target, or ErrNotFound (also when another
// tenant has it).
func (s *Postgres) Target(ctx context.Context, tenantID, id string) (TargetRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+targetColumns+` FROM api_targets WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return TargetRecord{}, pgWrap("target", err)
	}
	ts, err := scanTargets(rows)
	if err == nil && len(ts) == 0 {
		err = ErrNotFound
	}
	if err != nil {
		return TargetRecord{}, pgWrap("target "+id, err)
	}
	return ts[0], nil
}

// Targets lists a tenant's targets by id; an empty tenantID lists every
// tenant's (for the scheduler).
func (s *Postgres) Targets(ctx context.Context, tenantID string) ([]TargetRecord, error) {
	query, args := `SELECT `+targetColumns+` FROM api_targets`, []any{}
	if tenantID != "" {
		query, args = query+` WHERE tenant_id = $1`, append(args, tenantID)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY tenant_id, id`, args...)
	if err != nil {
		return nil, pgWrap("targets", err)
	}
	ts, err := scanTargets(rows)
	return ts, pgWrap("targets", err)
}

// CreateObject stores a group, policy or window; ErrConflict if the tenant
// already has one of that kind with that id.
func (s *Postgres) CreateObject(ctx context.Context, kind ObjectKind, o Object) error {
	if err := checkKind(kind); err != nil {
		return pgWrap("create object", err)
	}
	if o.ID == "" || o.TenantID == "" {
		return fmt.Errorf("registry store: create %s: id and tenant are required", kind)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO `+string(kind)+` (tenant_id, id, spec, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
		o.TenantID, o.ID, string(o.Spec), nanos(o.CreatedAt), nanos(o.UpdatedAt))
	return pgWrap(fmt.Sprintf("create %s %s", kind, o.ID), err)
}

// UpdateObject replaces an object's spec and updated_at; ErrNotFound if the
// tenant has none with that id.
func (s *Postgres) UpdateObject(ctx context.Context, kind ObjectKind, o Object) error {
	if err := checkKind(kind); err != nil {
		return pgWrap("update object", err)
	}
	err := affected(s.db.ExecContext(ctx, `UPDATE `+string(kind)+` SET spec = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4`,
		string(o.Spec), nanos(o.UpdatedAt), o.TenantID, o.ID))
	return pgWrap(fmt.Sprintf("update %s %s", kind, o.ID), err)
}

// DeleteObject removes an object; ErrNotFound if there is none.
func (s *Postgres) DeleteObject(ctx context.Context, kind ObjectKind, tenantID, id string) error {
	if err := checkKind(kind); err != nil {
		return pgWrap("delete object", err)
	}
	err := affected(s.db.ExecContext(ctx, `DELETE FROM `+string(kind)+` WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return pgWrap(fmt.Sprintf("delete %s %s", kind, id), err)
}

// Objects lists a tenant's objects of a kind by id; an empty tenantID
// lists every tenant's.
func (s *Postgres) Objects(ctx context.Context, kind ObjectKind, tenantID string) ([]Object, error) {
	if err := checkKind(kind); err != nil {
		return nil, pgWrap("objects", err)
	}
	query, args := `SELECT tenant_id, id, spec, created_at, updated_at FROM `+string(kind), []any{}
	if tenantID != "" {
		query, args = query+` WHERE tenant_id = $1`, append(args, tenantID)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY tenant_id, id`, args...)
	if err != nil {
		return nil, pgWrap(string(kind), err)
	}
	defer func() { _ = rows.Close() }()
	var out []Object
	for rows.Next() {
		var o Object
		var spec string
		var created, updated sql.NullInt64
		if err := rows.Scan(&o.TenantID, &o.ID, &spec, &created, &updated); err != nil {
			return nil, pgWrap(string(kind), err)
		}
		o.Spec, o.CreatedAt, o.UpdatedAt = []byte(spec), fromNanos(created), fromNanos(updated)
		out = append(out, o)
	}
	return out, pgWrap(string(kind), rows.Err())
}

// Object returns one of a tenant's objects, or ErrNotFound.
func (s *Postgres) Object(ctx context.Context, kind ObjectKind, tenantID, id string) (Object, error) {
	if err := checkKind(kind); err != nil {
		return Object{}, pgWrap("object", err)
	}
	o := Object{TenantID: tenantID, ID: id}
	var spec string
	var created, updated sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT spec, created_at, updated_at FROM `+string(kind)+` WHERE tenant_id = $1 AND id = $2`,
		tenantID, id).Scan(&spec, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	o.Spec, o.CreatedAt, o.UpdatedAt = []byte(spec), fromNanos(created), fromNanos(updated)
	return o, pgWrap(fmt.Sprintf("%s %s", kind, id), err)
}

// CreateReportKey stores a tenant's report key, its secret sealed with
// PostgresOptions.MasterKey (additional data: tenant and kid). It fails with
// crypt.ErrNoMasterKey when the store has no master key.
func (s *Postgres) CreateReportKey(ctx context.Context, tenantID string, k report.Key) error {
	if tenantID == "" || k.ID == "" || len(k.Secret) != report.KeySize {
		return fmt.Errorf("registry store: create report key: tenant, kid and a %d-byte secret are required", report.KeySize)
	}
	sealed, err := s.opts.MasterKey.Seal([]byte(k.Secret), reportKeyAAD(tenantID, k.ID))
	if err != nil {
		return fmt.Errorf("registry store: create report key %s: %w", k.ID, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO report_keys (tenant_id, kid, secret, created_at) VALUES ($1, $2, $3, $4)`,
		tenantID, k.ID, sealed, nanos(k.CreatedAt))
	return pgWrap("create report key "+k.ID, err)
}

// RetireReportKey marks a key retired at at; it still opens old reports.
func (s *Postgres) RetireReportKey(ctx context.Context, tenantID, kid string, at time.Time) error {
	err := affected(s.db.ExecContext(ctx, `UPDATE report_keys SET retired_at = COALESCE(retired_at, $1) WHERE tenant_id = $2 AND kid = $3`,
		nanos(at), tenantID, kid))
	return pgWrap("retire report key "+kid, err)
}

func (s *Postgres) openReportKey(tenantID, kid string, sealed []byte, created sql.NullInt64) (report.Key, error) {
	secret, err := s.opts.MasterKey.Open(sealed, reportKeyAAD(tenantID, kid))
	if err != nil {
		return report.Key{}, fmt.Errorf("registry store: report key %s: %w", kid, err)
	}
	return report.Key{ID: kid, Secret: secret, CreatedAt: fromNanos(created)}, nil
}

// ReportKeys returns a tenant's report keys, newest first, retired ones
// included.
func (s *Postgres) ReportKeys(ctx context.Context, tenantID string) ([]report.Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kid, secret, created_at FROM report_keys WHERE tenant_id = $1 ORDER BY created_at DESC, kid DESC`, tenantID)
	if err != nil {
		return nil, pgWrap("report keys", err)
	}
	defer func() { _ = rows.Close() }()
	var out []report.Key
	for rows.Next() {
		var kid string
		var sealed []byte
		var created sql.NullInt64
		if err := rows.Scan(&kid, &sealed, &created); err != nil {
			return nil, pgWrap("report keys", err)
		}
		k, err := s.openReportKey(tenantID, kid, sealed, created)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, pgWrap("report keys", rows.Err())
}

// ReportKeyInfos returns the metadata of a tenant's report keys, newest
// first (the order of ReportKeys), retired ones included. Secrets are not
// read.
func (s *Postgres) ReportKeyInfos(ctx context.Context, tenantID string) ([]ReportKeyInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kid, created_at, retired_at FROM report_keys WHERE tenant_id = $1
		ORDER BY created_at DESC, kid DESC`, tenantID)
	if err != nil {
		return nil, pgWrap("report keys", err)
	}
	defer func() { _ = rows.Close() }()
	var out []ReportKeyInfo
	for rows.Next() {
		var k ReportKeyInfo
		var created, retired sql.NullInt64
		if err := rows.Scan(&k.KID, &created, &retired); err != nil {
			return nil, pgWrap("report keys", err)
		}
		k.CreatedAt = fromNanos(created)
		if retired.Valid {
			k.RetiredAt = fromNanos(retired)
		}
		out = append(out, k)
	}
	return out, pgWrap("report keys", rows.Err())
}

// LookupReportKey finds one of a tenant's report keys by kid.
func (s *Postgres) LookupReportKey(ctx context.Context, tenantID, kid string) (report.Key, bool, error) {
	var sealed []byte
	var created sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT secret, created_at FROM report_keys WHERE tenant_id = $1 AND kid = $2`, tenantID, kid).Scan(&sealed, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return report.Key{}, false, nil
	}
	if err != nil {
		return report.Key{}, false, pgWrap("report key "+kid, err)
	}
	k, err := s.openReportKey(tenantID, kid, sealed, created)
	return k, err == nil, err
}

// ApplyTargets applies b in one transaction: every write or none. Records
// and audit entries must belong to b.TenantID. Deletes run first, then
// updates, then creates, then the audit entries.
func (s *Postgres) ApplyTargets(ctx context.Context, b TargetBatch) error {
	if b.TenantID == "" {
		return errors.New("registry store: apply targets: no tenant")
	}
	for _, t := range append(append([]TargetRecord(nil), b.Create...), b.Update...) {
		if t.ID == "" || t.TenantID != b.TenantID {
			return fmt.Errorf("registry store: apply targets: target %q must have an id and belong to tenant %q", t.ID, b.TenantID)
		}
	}
	for _, e := range b.Audit {
		if e.TenantID != b.TenantID {
			return fmt.Errorf("registry store: apply targets: audit entry of tenant %q in a batch of %q", e.TenantID, b.TenantID)
		}
	}
	if b.Empty() {
		return nil
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		for _, id := range b.Delete {
			if err := affected(tx.ExecContext(ctx, `DELETE FROM api_targets WHERE tenant_id = $1 AND id = $2`, b.TenantID, id)); err != nil {
				return pgWrap("delete target "+id, err)
			}
		}
		for _, t := range b.Update {
			if err := affected(tx.ExecContext(ctx, `UPDATE api_targets SET spec = $1, secrets = $2, paused = $3, updated_at = $4 WHERE tenant_id = $5 AND id = $6`,
				string(t.Spec), t.Secrets, t.Paused, nanos(t.UpdatedAt), t.TenantID, t.ID)); err != nil {
				return pgWrap("update target "+t.ID, err)
			}
		}
		for i := range b.Create {
			if err := insertTarget(ctx, tx, postgresBind, &b.Create[i]); err != nil {
				return pgWrap("create target "+b.Create[i].ID, err)
			}
		}
		for _, e := range b.Audit {
			if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (tenant_id, key_id, action, object_type, object_id, at) VALUES ($1, $2, $3, $4, $5, $6)`,
				e.TenantID, e.KeyID, e.Action, e.ObjectType, e.ObjectID, nanos(e.At)); err != nil {
				return pgWrap("append audit", err)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrConflict) {
		return pgWrap("apply targets", err)
	}
	return err
}
