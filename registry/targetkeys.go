package registry

import (
	"context"
	"strconv"
)

// Every API target's samples, incidents, alert state and notifications
// belong to its key, not to its id: ids are chosen by tenants and can be
// deleted and taken again, keys are never reused. A key is
// "<tenant>/<id>", with "~<n>" added for the n-th target a tenant creates
// under the same id. Target ids cannot hold "/" or "~", so no key is ever a
// config file target's id (which is that target's key).

// targetKey is the key of the target a tenant creates under id after
// `earlier` targets with that id.
func targetKey(tenantID, id string, earlier int) string {
	k := tenantID + "/" + id
	if earlier > 0 {
		k += "~" + strconv.Itoa(earlier+1)
	}
	return k
}

// insertTarget gives t a key never used before, records the key for good
// and stores t, inside tx.
func insertTarget(ctx context.Context, tx txn, t *TargetRecord) error {
	var earlier int
	if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM target_keys WHERE tenant_id = ? AND id = ?`,
		t.TenantID, t.ID).Scan(&earlier); err != nil {
		return err
	}
	t.Key = targetKey(t.TenantID, t.ID, earlier)
	if _, err := tx.exec(ctx, `INSERT INTO target_keys (target_key, tenant_id, id, created_at) VALUES (?, ?, ?, ?)`,
		t.Key, t.TenantID, t.ID, nanos(t.CreatedAt)); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `INSERT INTO api_targets (tenant_id, id, target_key, spec, secrets, paused, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.TenantID, t.ID, t.Key, string(t.Spec), t.Secrets, t.Paused, nanos(t.CreatedAt), nanos(t.UpdatedAt))
	return err
}
