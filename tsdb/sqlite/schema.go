package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/upwatch/upwatch/tsdb"
)

// migrations are applied in order; the schema version is the number applied.
// Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: samples, hourly rollups and per-target run state.
	`CREATE TABLE samples (
		target_id   TEXT    NOT NULL,
		target      TEXT    NOT NULL,
		kind        TEXT    NOT NULL,
		location    TEXT    NOT NULL,
		start       INTEGER NOT NULL, -- Unix ns
		duration    INTEGER NOT NULL, -- ns
		dns         INTEGER NOT NULL,
		connect     INTEGER NOT NULL,
		tls         INTEGER NOT NULL,
		ttfb        INTEGER NOT NULL,
		transfer    INTEGER NOT NULL,
		success     INTEGER NOT NULL,
		error_class TEXT    NOT NULL,
		error       TEXT    NOT NULL,
		status_code INTEGER NOT NULL,
		tls_expiry  INTEGER,          -- Unix ns, NULL without TLS
		body_bytes  INTEGER NOT NULL,
		remote_addr TEXT    NOT NULL
	);
	CREATE INDEX samples_target_start ON samples (target_id, start);
	CREATE TABLE rollups (
		target_id   TEXT    NOT NULL,
		hour        INTEGER NOT NULL, -- Unix s of the hour's start
		checks      INTEGER NOT NULL,
		failures    INTEGER NOT NULL,
		latency_min INTEGER NOT NULL,
		latency_max INTEGER NOT NULL,
		latency_sum INTEGER NOT NULL,
		` + bucketColumns("%s INTEGER NOT NULL", ",\n\t\t") + `,
		PRIMARY KEY (target_id, hour)
	) WITHOUT ROWID;
	CREATE TABLE target_state (
		target_id             TEXT    NOT NULL PRIMARY KEY,
		last_start            INTEGER NOT NULL, -- Unix ns
		last_success          INTEGER NOT NULL,
		consecutive_failures  INTEGER NOT NULL,
		consecutive_successes INTEGER NOT NULL,
		status_since          INTEGER NOT NULL  -- Unix ns
	) WITHOUT ROWID;`,
	// 2: a sample is identified by target, start and location, so writing
	// it again (a write-ahead log replayed after a crash) stores nothing
	// new. Copies an older version stored are dropped first.
	`DELETE FROM samples WHERE rowid NOT IN (SELECT min(rowid) FROM samples GROUP BY target_id, start, location);
	DROP INDEX samples_target_start;
	CREATE UNIQUE INDEX samples_key ON samples (target_id, start, location);`,
	// 3: of the per-target run state only the newest start is read (by
	// Latest and retention); the run tracking nothing read is dropped.
	`CREATE TABLE latest (
		target_id  TEXT    NOT NULL PRIMARY KEY,
		last_start INTEGER NOT NULL -- Unix ns of the target's newest sample
	) WITHOUT ROWID;
	INSERT INTO latest (target_id, last_start) SELECT target_id, last_start FROM target_state;
	DROP TABLE target_state;`,
	// 4: closed hours of raw samples live in blocks, one per target and
	// hour (see block.go); samples keeps the open hour and late arrivals
	// until compaction moves them into their block. Rows an older version
	// wrote stay in samples and are compacted like any others. A rowid
	// table: in a WITHOUT ROWID table a block over ~1 KB would spill into
	// an overflow page of its own.
	`CREATE TABLE blocks (
		target_id TEXT    NOT NULL,
		hour      INTEGER NOT NULL, -- Unix s of the hour's start
		samples   INTEGER NOT NULL, -- how many samples data holds
		data      BLOB    NOT NULL
	);
	CREATE UNIQUE INDEX blocks_key ON blocks (target_id, hour);`,
	// 5: a block spans hours hours from hour: 1 while its hour is the
	// newest closed, 24 once its UTC day has closed and compaction merged
	// the day's hour blocks into one (a block's fixed cost, about 2 bytes
	// per sample at one hour, shrinks to next to nothing, and the larger
	// blob fills its pages).
	`ALTER TABLE blocks ADD COLUMN hours INTEGER NOT NULL DEFAULT 1;`,
	// 6: what a target said in a check (headers, body excerpt), kept only
	// for the checks its capture mode selects, apart from samples so their
	// rows and blocks stay as small as before (evidence.go).
	`CREATE TABLE evidence (
		target_id TEXT    NOT NULL,
		start     INTEGER NOT NULL, -- Unix ns, the sample's
		location  TEXT    NOT NULL,
		size      INTEGER NOT NULL, -- bytes of data, for the per-target bound
		data      BLOB    NOT NULL  -- prober.Evidence as deflated JSON
	);
	CREATE UNIQUE INDEX evidence_key ON evidence (target_id, start, location);`,
}

// bucketColumns renders one format per histogram bucket column (b0…b12),
// joined by sep.
func bucketColumns(format, sep string) string {
	cols := make([]string, tsdb.NumBuckets)
	for i := range cols {
		cols[i] = fmt.Sprintf(format, fmt.Sprintf("b%d", i))
	}
	return strings.Join(cols, sep)
}

func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var version int
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); err {
	case nil:
	case sql.ErrNoRows:
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return err
		}
	default:
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this upwatch knows (%d); upgrade upwatch", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
		return err
	}
	return tx.Commit()
}

const sampleColumns = `target_id, target, kind, location, start, duration, dns, connect, tls, ttfb, transfer,
	success, error_class, error, status_code, tls_expiry, body_bytes, remote_addr`

// The write statements, as multi-row inserts: a prefix, one "(?, …)" group
// per row and a suffix.
var (
	insertSample = multiRow{
		prefix: `INSERT INTO samples (` + sampleColumns + `) VALUES `,
		cols:   18,
		suffix: ` ON CONFLICT (target_id, start, location) DO NOTHING`,
	}
	// A sample older than the newest stored (a late one, a replay) leaves
	// last_start alone.
	upsertLatest = multiRow{
		prefix: `INSERT INTO latest (target_id, last_start) VALUES `,
		cols:   2,
		suffix: ` ON CONFLICT (target_id) DO UPDATE SET last_start = max(last_start, excluded.last_start)`,
	}
	upsertRollup = multiRow{
		prefix: insertRollup,
		cols:   7 + tsdb.NumBuckets,
		suffix: upsertRollupSet,
	}
	// upsertCheck is upsertRollup for a rollup of one check (each target's
	// in a batch, at many targets) from five parameters a row instead of
	// twenty, binding them being much of the cost: target, hour, failures
	// (0 or 1), latency and the index of its bucket. Rows select from the
	// VALUES, as a parameter cannot be used twice in them without a
	// number, which the driver binds by name, at a higher cost. "WHERE
	// true" lets the parser tell the upsert from a join.
	upsertCheck = multiRow{
		prefix: strings.TrimSuffix(insertRollup, "VALUES ") + `SELECT column1, column2, 1, column3, column4, column4, column4, ` +
			checkBuckets() + ` FROM (VALUES `,
		cols:   5,
		suffix: `) WHERE true` + upsertRollupSet,
	}
)

// checkBuckets renders the bucket columns of upsertCheck from the index
// in column5.
func checkBuckets() string {
	buckets := make([]string, tsdb.NumBuckets)
	for i := range buckets {
		buckets[i] = fmt.Sprintf("column5 = %d", i)
	}
	return strings.Join(buckets, ", ")
}

var insertRollup = `INSERT INTO rollups (target_id, hour, checks, failures, latency_min, latency_max, latency_sum, ` +
	bucketColumns("%s", ", ") + `) VALUES `

// upsertRollupSet merges a batch's partial rollup into the stored one.
var upsertRollupSet = ` ON CONFLICT (target_id, hour) DO UPDATE SET
		checks = checks + excluded.checks,
		failures = failures + excluded.failures,
		latency_min = min(latency_min, excluded.latency_min),
		latency_max = max(latency_max, excluded.latency_max),
		latency_sum = latency_sum + excluded.latency_sum,
		` + bucketColumns("%[1]s = %[1]s + excluded.%[1]s", ",\n\t\t")
