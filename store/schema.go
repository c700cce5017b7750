package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order; the schema version is the number applied.
// Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: alert state, incidents and the notification outbox. Times are Unix
	// nanoseconds.
	`CREATE TABLE alert_state (
		target_id  TEXT    NOT NULL PRIMARY KEY,
		state      TEXT    NOT NULL, -- alerting.State as JSON
		updated_at INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE incidents (
		id                TEXT    NOT NULL PRIMARY KEY,
		target_id         TEXT    NOT NULL,
		start             INTEGER NOT NULL,
		"end"             INTEGER,          -- NULL while open
		cause             TEXT    NOT NULL,
		suppressed        INTEGER NOT NULL,
		suppressed_reason TEXT    NOT NULL,
		in_maintenance    INTEGER NOT NULL
	);
	CREATE INDEX incidents_target_start ON incidents (target_id, start);
	CREATE INDEX incidents_start ON incidents (start);
	CREATE TABLE outbox (
		key          TEXT    NOT NULL PRIMARY KEY,
		channel      TEXT    NOT NULL,
		incident_id  TEXT    NOT NULL, -- from the message, for listing
		message      TEXT    NOT NULL, -- notify.Message as JSON
		status       TEXT    NOT NULL,
		attempts     INTEGER NOT NULL,
		next_attempt INTEGER NOT NULL,
		last_error   TEXT    NOT NULL,
		created_at   INTEGER NOT NULL,
		sent_at      INTEGER,          -- NULL until sent
		lease_until  INTEGER           -- NULL unless claimed
	);
	CREATE INDEX outbox_status_next ON outbox (status, next_attempt);
	CREATE INDEX outbox_incident ON outbox (incident_id, created_at);`,

	// 2: tenancy and the API's objects. Every object row carries its
	// tenant; specs are JSON; secrets are sealed with crypt.MasterKey.
	`CREATE TABLE tenants (
		id         TEXT    NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		created_at INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE TABLE api_keys (
		id           TEXT    NOT NULL PRIMARY KEY,
		tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
		name         TEXT    NOT NULL,
		prefix       TEXT    NOT NULL, -- the first characters of the key, to find it and show it
		hash         BLOB    NOT NULL, -- SHA-256 of the whole key; the key itself is never stored
		scopes       TEXT    NOT NULL, -- JSON array
		created_at   INTEGER NOT NULL,
		expires_at   INTEGER,          -- NULL: never
		revoked_at   INTEGER,          -- NULL: valid
		last_used_at INTEGER           -- NULL: never used
	) WITHOUT ROWID;
	CREATE INDEX api_keys_prefix ON api_keys (prefix);
	CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
	CREATE TABLE audit_log (
		id          INTEGER PRIMARY KEY AUTOINCREMENT,
		tenant_id   TEXT    NOT NULL,
		key_id      TEXT    NOT NULL,
		action      TEXT    NOT NULL,
		object_type TEXT    NOT NULL,
		object_id   TEXT    NOT NULL,
		at          INTEGER NOT NULL
	);
	CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
	CREATE TABLE api_targets (
		id         TEXT    NOT NULL PRIMARY KEY, -- unique across tenants: series are keyed by it
		tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
		spec       TEXT    NOT NULL, -- JSON, credentials left out
		secrets    BLOB,             -- sealed credentials, NULL if none
		paused     INTEGER NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE INDEX api_targets_tenant ON api_targets (tenant_id, id);
	CREATE TABLE contact_groups (
		tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
		id         TEXT    NOT NULL,
		spec       TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (tenant_id, id)
	) WITHOUT ROWID;
	CREATE TABLE alert_policies (
		tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
		id         TEXT    NOT NULL,
		spec       TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (tenant_id, id)
	) WITHOUT ROWID;
	CREATE TABLE maintenance_windows (
		tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
		id         TEXT    NOT NULL,
		spec       TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (tenant_id, id)
	) WITHOUT ROWID;
	CREATE TABLE report_keys (
		tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
		kid        TEXT    NOT NULL,
		secret     BLOB    NOT NULL, -- sealed with the master key
		created_at INTEGER NOT NULL,
		retired_at INTEGER,          -- NULL: current
		PRIMARY KEY (tenant_id, kid)
	) WITHOUT ROWID;`,

	// 3: target ids are per tenant; a target's data belongs to its key,
	// which is never reused (target_keys keeps every key ever given out).
	// Targets from before keep their id as their key, so their data stays
	// theirs.
	`CREATE TABLE target_keys (
		target_key TEXT    NOT NULL PRIMARY KEY,
		tenant_id  TEXT    NOT NULL,
		id         TEXT    NOT NULL,
		created_at INTEGER NOT NULL
	) WITHOUT ROWID;
	CREATE INDEX target_keys_tenant_id ON target_keys (tenant_id, id);
	INSERT INTO target_keys (target_key, tenant_id, id, created_at) SELECT id, tenant_id, id, created_at FROM api_targets;
	CREATE TABLE api_targets_v3 (
		tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
		id         TEXT    NOT NULL,
		target_key TEXT    NOT NULL UNIQUE REFERENCES target_keys (target_key),
		spec       TEXT    NOT NULL, -- JSON, credentials left out
		secrets    BLOB,             -- sealed credentials, NULL if none
		paused     INTEGER NOT NULL,
		created_at INTEGER NOT NULL,
		updated_at INTEGER NOT NULL,
		PRIMARY KEY (tenant_id, id)
	) WITHOUT ROWID;
	INSERT INTO api_targets_v3 (tenant_id, id, target_key, spec, secrets, paused, created_at, updated_at)
		SELECT tenant_id, id, id, spec, secrets, paused, created_at, updated_at FROM api_targets;
	DROP TABLE api_targets;
	ALTER TABLE api_targets_v3 RENAME TO api_targets;`,
}

// migrate brings the schema up to date in one write transaction, so two
// processes opening the same new file do not both migrate it. It returns the
// schema version.
func migrate(ctx context.Context, db *sql.DB) (int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return 0, err
	}
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); err {
	case nil:
	case sql.ErrNoRows:
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return 0, err
		}
	default:
		return 0, err
	}
	if version > len(migrations) {
		return 0, fmt.Errorf("schema version %d is newer than this upwatch knows (%d); upgrade upwatch", version, len(migrations))
	}
	if version == len(migrations) {
		return version, nil
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return 0, fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
		return 0, err
	}
	return len(migrations), tx.Commit()
}
