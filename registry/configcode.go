package registry

import (
	"context"
	"errors"
	"fmt"
)

// TargetBatch is a set of writes to one tenant's API targets, applied
// together by ApplyTargets (config as code: PUT /api/v1/targets?format=yaml).
type TargetBatch struct {
	TenantID string
	// Create are new targets; ErrConflict if the tenant has one of the ids.
	// ApplyTargets sets their Key.
	Create []TargetRecord
	// Update replace existing targets of the tenant (spec, secrets, paused,
	// updated_at); ErrNotFound if the tenant has no target with an id.
	Update []TargetRecord
	// Delete are ids of the tenant's targets; ErrNotFound if one is missing.
	Delete []string
	// Audit entries are appended in the same transaction.
	Audit []AuditEntry
}

// Empty reports whether the batch writes nothing.
func (b TargetBatch) Empty() bool {
	return len(b.Create) == 0 && len(b.Update) == 0 && len(b.Delete) == 0 && len(b.Audit) == 0
}

// check rejects a batch without a tenant or with records of another.
func (b TargetBatch) check() error {
	if b.TenantID == "" {
		return errors.New("no tenant")
	}
	for _, t := range append(append([]TargetRecord(nil), b.Create...), b.Update...) {
		if t.ID == "" || t.TenantID != b.TenantID {
			return fmt.Errorf("target %q must have an id and belong to tenant %q", t.ID, b.TenantID)
		}
	}
	for _, e := range b.Audit {
		if e.TenantID != b.TenantID {
			return fmt.Errorf("audit entry of tenant %q in a batch of %q", e.TenantID, b.TenantID)
		}
	}
	return nil
}

// ApplyTargets applies b in one transaction: every write or none. Records
// and audit entries must belong to b.TenantID. Deletes run first, then
// updates, then creates, then the audit entries.
func (s *Registry) ApplyTargets(ctx context.Context, b TargetBatch) error {
	if err := b.check(); err != nil {
		return fmt.Errorf("registry store: apply targets: %w", err)
	}
	if b.Empty() {
		return nil
	}
	err := s.withTx(ctx, func(tx txn) error {
		for _, id := range b.Delete {
			if err := affected(tx.exec(ctx, `DELETE FROM api_targets WHERE tenant_id = ? AND id = ?`, b.TenantID, id)); err != nil {
				return s.wrap("delete target "+id, err)
			}
		}
		for _, t := range b.Update {
			if err := affected(tx.exec(ctx, `UPDATE api_targets SET spec = ?, secrets = ?, paused = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
				string(t.Spec), t.Secrets, t.Paused, nanos(t.UpdatedAt), t.TenantID, t.ID)); err != nil {
				return s.wrap("update target "+t.ID, err)
			}
		}
		for i := range b.Create {
			if err := insertTarget(ctx, tx, &b.Create[i]); err != nil {
				return s.wrap("create target "+b.Create[i].ID, err)
			}
		}
		for _, e := range b.Audit {
			if _, err := tx.exec(ctx, `INSERT INTO audit_log (tenant_id, key_id, action, object_type, object_id, at) VALUES (?, ?, ?, ?, ?, ?)`,
				e.TenantID, e.KeyID, e.Action, e.ObjectType, e.ObjectID, nanos(e.At)); err != nil {
				return s.wrap("append audit", err)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrConflict) {
		return s.wrap("apply targets", err)
	}
	return err
}
