package registry

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Each backend has its own list of migrations (migrations, postgresMigrations),
// applied in order; the schema version is the number applied, and it means
// the same thing only within one backend. Append only: never edit a
// migration that has shipped. Both lists hold the same tables; the first two
// migrations are written once, with the engine's column types filled in.

// schemaV1: alert state, incidents and the notification outbox. Times are
// Unix nanoseconds.
const schemaV1 = `CREATE TABLE alert_state (
		target_id  TEXT   NOT NULL PRIMARY KEY,
		state      TEXT   NOT NULL, -- alerting.State as JSON
		updated_at {time} NOT NULL
	){norowid};
	CREATE TABLE incidents (
		id                TEXT   NOT NULL PRIMARY KEY,
		target_id         TEXT   NOT NULL,
		start             {time} NOT NULL,
		"end"             {time},          -- NULL while open
		cause             TEXT   NOT NULL,
		suppressed        {bool} NOT NULL,
		suppressed_reason TEXT   NOT NULL,
		in_maintenance    {bool} NOT NULL
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
		next_attempt {time}  NOT NULL,
		last_error   TEXT    NOT NULL,
		created_at   {time}  NOT NULL,
		sent_at      {time},           -- NULL until sent
		lease_until  {time}            -- NULL unless claimed
	);
	CREATE INDEX outbox_status_next ON outbox (status, next_attempt);
	CREATE INDEX outbox_incident ON outbox (incident_id, created_at);`

// schemaV2: tenancy and the API's objects. Every object row carries its
// tenant; specs are JSON; secrets are sealed with crypt.MasterKey.
var schemaV2 = `CREATE TABLE tenants (
		id         TEXT   NOT NULL PRIMARY KEY,
		name       TEXT   NOT NULL,
		created_at {time} NOT NULL
	){norowid};
	CREATE TABLE api_keys (
		id           TEXT    NOT NULL PRIMARY KEY,
		tenant_id    TEXT    NOT NULL REFERENCES tenants (id),
		name         TEXT    NOT NULL,
		prefix       TEXT    NOT NULL, -- the first characters of the key, to find it and show it
		hash         {bytes} NOT NULL, -- SHA-256 of the whole key; the key itself is never stored
		scopes       TEXT    NOT NULL, -- JSON array
		created_at   {time}  NOT NULL,
		expires_at   {time},           -- NULL: never
		revoked_at   {time},           -- NULL: valid
		last_used_at {time}            -- NULL: never used
	){norowid};
	CREATE INDEX api_keys_prefix ON api_keys (prefix);
	CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
	CREATE TABLE audit_log (
		id          {serial},
		tenant_id   TEXT   NOT NULL,
		key_id      TEXT   NOT NULL,
		action      TEXT   NOT NULL,
		object_type TEXT   NOT NULL,
		object_id   TEXT   NOT NULL,
		at          {time} NOT NULL
	);
	CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
	CREATE TABLE api_targets (
		id         TEXT    NOT NULL PRIMARY KEY, -- unique across tenants: series are keyed by it
		tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
		spec       TEXT    NOT NULL, -- JSON, credentials left out
		secrets    {bytes},          -- sealed credentials, NULL if none
		paused     {bool}  NOT NULL,
		created_at {time}  NOT NULL,
		updated_at {time}  NOT NULL
	){norowid};
	CREATE INDEX api_targets_tenant ON api_targets (tenant_id, id);
	` + objectTable(string(ContactGroups)) + objectTable(string(AlertPolicies)) + objectTable(string(MaintenanceWindows)) +
	`CREATE TABLE report_keys (
		tenant_id  TEXT    NOT NULL REFERENCES tenants (id),
		kid        TEXT    NOT NULL,
		secret     {bytes} NOT NULL, -- sealed with the master key
		created_at {time}  NOT NULL,
		retired_at {time},           -- NULL: current
		PRIMARY KEY (tenant_id, kid)
	){norowid};`

// schemaLeases: named leases with fencing tokens (lease.Store), and the
// token under which each outbox entry was claimed, so that only the
// claimant settles it.
const schemaLeases = `CREATE TABLE leases (
		name       TEXT   NOT NULL PRIMARY KEY,
		holder     TEXT   NOT NULL,
		token      BIGINT NOT NULL, -- one larger on every acquisition
		expires_at {time} NOT NULL  -- by the database's clock
	){norowid};
	ALTER TABLE outbox ADD COLUMN claim_token BIGINT;`

// schemaLeaseURL: where a lease's holder takes requests (its advertised
// base URL), so the servers that do not hold the alerting lease can send
// it what only the holder handles (probe agents' results).
const schemaLeaseURL = `ALTER TABLE leases ADD COLUMN holder_url TEXT NOT NULL DEFAULT '';`

// objectTable is the table of one ObjectKind.
func objectTable(name string) string {
	return `CREATE TABLE ` + name + ` (
		tenant_id  TEXT   NOT NULL REFERENCES tenants (id),
		id         TEXT   NOT NULL,
		spec       TEXT   NOT NULL,
		created_at {time} NOT NULL,
		updated_at {time} NOT NULL,
		PRIMARY KEY (tenant_id, id)
	){norowid};
	`
}

// sqliteTypes fill a shared migration for SQLite: {time} (Unix nanoseconds),
// {bool}, {bytes}, {serial} (an auto-increment primary key) and {norowid}
// (after a table keyed by its primary key).
var sqliteTypes = strings.NewReplacer("{time}", "INTEGER", "{bool}", "INTEGER", "{bytes}", "BLOB",
	"{serial}", "INTEGER PRIMARY KEY AUTOINCREMENT", "{norowid}", " WITHOUT ROWID")

// migrations are SQLite's.
var migrations = []string{
	sqliteTypes.Replace(schemaV1),
	sqliteTypes.Replace(schemaV2),

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

	sqliteTypes.Replace(schemaLeases),
	// web interface: users, sessions, incident notes (registry/web.go).
	sqliteTypes.Replace(schemaWeb),
	// incidents say where they were seen: a JSON list of locations with
	// their first and last failed check, empty with one location; probe
	// locations' events (unavailable, suspect, back) for operators.
	`ALTER TABLE incidents ADD COLUMN locations TEXT NOT NULL DEFAULT '';
	CREATE TABLE location_events (
		id       INTEGER PRIMARY KEY AUTOINCREMENT,
		location TEXT    NOT NULL,
		kind     TEXT    NOT NULL,
		at       INTEGER NOT NULL,
		detail   TEXT    NOT NULL
	);`,
	// Probe agents: heartbeats, and the results already taken.
	sqliteTypes.Replace(schemaAgents),
	// status pages, their incidents, badges (registry/statuspage.go).
	sqliteTypes.Replace(schemaStatusPages),
	// the lease holder's advertised URL (schemaLeaseURL).
	schemaLeaseURL,
	// acknowledged incidents: who and when (registry/ack.go).
	`ALTER TABLE incidents ADD COLUMN acked_by TEXT NOT NULL DEFAULT '';
	ALTER TABLE incidents ADD COLUMN acked_at INTEGER;`,
}

// migrate brings the schema up to date in one write transaction, which
// takes the dialect's schema lock, so two processes opening the same new
// database do not both migrate it. It returns the schema version.
func (s *Registry) migrate(ctx context.Context, attempts int) (int, error) {
	all := s.d.migrations
	var version int
	err := s.retry(ctx, attempts, func() error {
		return s.tryTx(ctx, func(tx txn) error {
			if s.d.lockSchema != nil {
				if err := s.d.lockSchema(ctx, tx); err != nil {
					return err
				}
			}
			if _, err := tx.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
				return err
			}
			switch err := tx.queryRow(ctx, `SELECT version FROM schema_version`).Scan(&version); {
			case errors.Is(err, sql.ErrNoRows):
				version = 0
				if _, err := tx.exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
					return err
				}
			case err != nil:
				return err
			}
			if version > len(all) {
				return fmt.Errorf("schema version %d is newer than this upwatch knows (%d); upgrade upwatch", version, len(all))
			}
			if version == len(all) {
				return nil
			}
			for i := version; i < len(all); i++ {
				if _, err := tx.tx.ExecContext(ctx, all[i]); err != nil { // DDL, not bound
					return fmt.Errorf("migration %d: %w", i+1, err)
				}
			}
			version = len(all)
			_, err := tx.exec(ctx, `UPDATE schema_version SET version = ?`, version)
			return err
		})
	})
	return version, err
}
