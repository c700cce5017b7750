package registry

import (
	"context"
	"strings"
	"time"

	"github.com/upwatch/upwatch/fleet"
)

// schemaAgents holds probe agents' heartbeats (fleet.Store) and the key of
// every agent result taken in the last DedupeWindow, so a batch an agent
// sends again is not counted twice, even by another server or after a
// restart.
const schemaAgents = `
	CREATE TABLE agents (
		id         TEXT   NOT NULL PRIMARY KEY,
		location   TEXT   NOT NULL,
		name       TEXT   NOT NULL,
		version    TEXT   NOT NULL,
		key_id     TEXT   NOT NULL,
		seen_at    {time} NOT NULL,
		expires_at {time} NOT NULL
	);
	CREATE INDEX agents_location ON agents (location, expires_at);
	CREATE TABLE agent_results (
		target_key TEXT   NOT NULL,
		location   TEXT   NOT NULL,
		scheduled  {time} NOT NULL,
		PRIMARY KEY (target_key, location, scheduled)
	){norowid};
	CREATE INDEX agent_results_scheduled ON agent_results (scheduled);`

// DedupeWindow is how long the key of an agent result is kept: a result
// scheduled longer ago than this is refused (it could be a resend whose key
// is gone).
const DedupeWindow = 24 * time.Hour

var _ fleet.Store = (*Registry)(nil)

// Heartbeat implements fleet.Store.
func (s *Registry) Heartbeat(ctx context.Context, m fleet.Member) error {
	_, err := s.exec(ctx, `INSERT INTO agents (id, location, name, version, key_id, seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET location = excluded.location, name = excluded.name, version = excluded.version,
			key_id = excluded.key_id, seen_at = excluded.seen_at, expires_at = excluded.expires_at`,
		m.ID, m.Location, m.Name, m.Version, m.KeyID, nanos(m.SeenAt), nanos(m.ExpiresAt))
	return s.wrap("agent heartbeat "+m.ID, err)
}

// LiveMembers implements fleet.Store.
func (s *Registry) LiveMembers(ctx context.Context, location string, now time.Time) ([]fleet.Member, error) {
	rows, err := s.query(ctx, `SELECT id, location, name, version, key_id, seen_at, expires_at FROM agents
		WHERE location = ? AND expires_at > ? ORDER BY id`, location, nanos(now))
	ms, err := scanAll(rows, err, func(sc scanner) (fleet.Member, error) {
		var m fleet.Member
		var seen, expires int64
		err := sc.Scan(&m.ID, &m.Location, &m.Name, &m.Version, &m.KeyID, &seen, &expires)
		m.SeenAt, m.ExpiresAt = time.Unix(0, seen).UTC(), time.Unix(0, expires).UTC()
		return m, err
	})
	return ms, s.wrap("live agents", err)
}

// ResultKey names one check from one location.
type ResultKey struct {
	TargetKey string
	Location  string
	Scheduled time.Time
}

// ClaimResults records keys as taken, in one transaction, and reports for
// each whether it is new: false means a result with that key was taken
// before (a resend), by this server or another, or earlier in keys.
func (s *Registry) ClaimResults(ctx context.Context, keys []ResultKey) ([]bool, error) {
	return s.claimResults(ctx, nil, keys)
}

// claimResults claims keys, if f is not nil only while f's lease is the
// writer's.
func (s *Registry) claimResults(ctx context.Context, f *fence, keys []ResultKey) ([]bool, error) {
	fresh := make([]bool, len(keys))
	err := s.withTx(ctx, func(tx txn) error {
		if _, err := f.check(ctx, tx, s.d.lockShare); err != nil {
			return err
		}
		taken := make(map[ResultKey]bool, len(keys))
		for start := 0; start < len(keys); start += claimChunk {
			chunk := keys[start:min(start+claimChunk, len(keys))]
			var q strings.Builder
			q.WriteString(`INSERT INTO agent_results (target_key, location, scheduled) VALUES `)
			args := make([]any, 0, 3*len(chunk))
			for i, k := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?)")
				args = append(args, k.TargetKey, k.Location, k.Scheduled.UnixNano())
			}
			q.WriteString(` ON CONFLICT DO NOTHING RETURNING target_key, location, scheduled`)
			rows, err := tx.query(ctx, q.String(), args...)
			got, err := scanAll(rows, err, func(sc scanner) (ResultKey, error) {
				var k ResultKey
				var at int64
				err := sc.Scan(&k.TargetKey, &k.Location, &at)
				k.Scheduled = time.Unix(0, at).UTC()
				return k, err
			})
			if err != nil {
				return err
			}
			for _, k := range got {
				taken[k] = true
			}
		}
		for i, k := range keys {
			k.Scheduled = k.Scheduled.UTC()
			fresh[i] = taken[k]
			delete(taken, k) // a key repeated in keys is new once
		}
		return nil
	})
	return fresh, s.wrap("claim agent results", err)
}

// claimChunk is how many keys one INSERT takes (3 parameters each, well
// under SQLite's and PostgreSQL's limits).
const claimChunk = 500

// PruneResults forgets the keys of results scheduled before before.
func (s *Registry) PruneResults(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM agent_results WHERE scheduled < ?`, before.UnixNano())
	if err != nil {
		return 0, s.wrap("prune agent results", err)
	}
	n, err := res.RowsAffected()
	return n, s.wrap("prune agent results", err)
}
