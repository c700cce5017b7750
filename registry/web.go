package registry

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// schemaWeb: the web interface's users (a password hash per tenant and
// name), their sessions (only a hash of the cookie is stored) and the
// notes and acknowledgements written on incidents.
const schemaWeb = `CREATE TABLE web_users (
		tenant_id     TEXT   NOT NULL REFERENCES tenants (id),
		name          TEXT   NOT NULL,
		password_hash TEXT   NOT NULL, -- argon2id, PHC string format
		role          TEXT   NOT NULL, -- viewer, editor, admin
		created_at    {time} NOT NULL,
		PRIMARY KEY (tenant_id, name)
	){norowid};
	CREATE TABLE web_sessions (
		hash       {bytes} NOT NULL PRIMARY KEY, -- SHA-256 of the cookie's token
		tenant_id  TEXT    NOT NULL,
		user_name  TEXT    NOT NULL,
		csrf       TEXT    NOT NULL, -- the session's form token
		created_at {time}  NOT NULL,
		expires_at {time}  NOT NULL
	){norowid};
	CREATE INDEX web_sessions_user ON web_sessions (tenant_id, user_name);
	CREATE TABLE incident_notes (
		id          {serial},
		tenant_id   TEXT   NOT NULL,
		incident_id TEXT   NOT NULL,
		user_name   TEXT   NOT NULL,
		kind        TEXT   NOT NULL, -- note or ack
		text        TEXT   NOT NULL,
		at          {time} NOT NULL
	);
	CREATE INDEX incident_notes_incident ON incident_notes (tenant_id, incident_id, id);`

// WebUser is a person who signs in to the web interface of one tenant.
type WebUser struct {
	TenantID, Name string
	// PasswordHash is the argon2id hash in PHC string format; the
	// password itself is never stored.
	PasswordHash string
	Role         string
	CreatedAt    time.Time
}

// WebSession is a signed-in browser: Hash is the SHA-256 of the cookie's
// token, CSRF the token its forms carry.
type WebSession struct {
	Hash                 []byte
	TenantID, UserName   string
	CSRF                 string
	CreatedAt, ExpiresAt time.Time
}

// IncidentNote is a note or an acknowledgement on an incident.
type IncidentNote struct {
	ID                   int64
	TenantID, IncidentID string
	UserName             string
	Kind                 string // "note" or "ack"
	Text                 string
	At                   time.Time
}

// CreateWebUser adds a user; ErrConflict if the name is taken in the
// tenant (or the tenant does not exist).
func (s *Registry) CreateWebUser(ctx context.Context, u WebUser) error {
	if u.TenantID == "" || u.Name == "" || u.PasswordHash == "" || u.Role == "" {
		return errors.New("registry store: create web user: tenant, name, password hash and role are required")
	}
	_, err := s.exec(ctx, `INSERT INTO web_users (tenant_id, name, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?)`,
		u.TenantID, u.Name, u.PasswordHash, u.Role, nanos(u.CreatedAt))
	return s.wrap("create web user "+u.Name, err)
}

// UpdateWebUser replaces a user's password hash and role; ErrNotFound if
// the tenant has no such user.
func (s *Registry) UpdateWebUser(ctx context.Context, u WebUser) error {
	err := affected(s.exec(ctx, `UPDATE web_users SET password_hash = ?, role = ? WHERE tenant_id = ? AND name = ?`,
		u.PasswordHash, u.Role, u.TenantID, u.Name))
	return s.wrap("update web user "+u.Name, err)
}

// DeleteWebUser removes a user and every session of theirs.
func (s *Registry) DeleteWebUser(ctx context.Context, tenantID, name string) error {
	err := s.withTx(ctx, func(tx txn) error {
		if _, err := tx.exec(ctx, `DELETE FROM web_sessions WHERE tenant_id = ? AND user_name = ?`, tenantID, name); err != nil {
			return err
		}
		return affected(tx.exec(ctx, `DELETE FROM web_users WHERE tenant_id = ? AND name = ?`, tenantID, name))
	})
	return s.wrap("delete web user "+name, err)
}

func scanWebUser(sc scanner) (WebUser, error) {
	var u WebUser
	var created sql.NullInt64
	err := sc.Scan(&u.TenantID, &u.Name, &u.PasswordHash, &u.Role, &created)
	u.CreatedAt = fromNanos(created)
	return u, err
}

// WebUser returns one user of a tenant, or ErrNotFound.
func (s *Registry) WebUser(ctx context.Context, tenantID, name string) (WebUser, error) {
	rows, err := s.query(ctx, `SELECT tenant_id, name, password_hash, role, created_at FROM web_users WHERE tenant_id = ? AND name = ?`, tenantID, name)
	u, err := first(scanAll(rows, err, scanWebUser))
	return u, s.wrap("web user "+name, err)
}

// WebUsers lists a tenant's users by name.
func (s *Registry) WebUsers(ctx context.Context, tenantID string) ([]WebUser, error) {
	rows, err := s.query(ctx, `SELECT tenant_id, name, password_hash, role, created_at FROM web_users WHERE tenant_id = ? ORDER BY name`, tenantID)
	out, err := scanAll(rows, err, scanWebUser)
	return out, s.wrap("web users", err)
}

// CreateWebSession stores a session.
func (s *Registry) CreateWebSession(ctx context.Context, ws WebSession) error {
	if len(ws.Hash) == 0 || ws.TenantID == "" || ws.UserName == "" || ws.CSRF == "" {
		return errors.New("registry store: create web session: hash, tenant, user and csrf are required")
	}
	_, err := s.exec(ctx, `INSERT INTO web_sessions (hash, tenant_id, user_name, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		ws.Hash, ws.TenantID, ws.UserName, ws.CSRF, nanos(ws.CreatedAt), nanos(ws.ExpiresAt))
	return s.wrap("create web session", err)
}

// WebSession returns the session with this hash, or ErrNotFound; the
// caller checks ExpiresAt.
func (s *Registry) WebSession(ctx context.Context, hash []byte) (WebSession, error) {
	rows, err := s.query(ctx, `SELECT hash, tenant_id, user_name, csrf, created_at, expires_at FROM web_sessions WHERE hash = ?`, hash)
	ws, err := first(scanAll(rows, err, func(sc scanner) (WebSession, error) {
		var ws WebSession
		var created, expires sql.NullInt64
		err := sc.Scan(&ws.Hash, &ws.TenantID, &ws.UserName, &ws.CSRF, &created, &expires)
		ws.CreatedAt, ws.ExpiresAt = fromNanos(created), fromNanos(expires)
		return ws, err
	}))
	return ws, s.wrap("web session", err)
}

// DeleteWebSession ends one session (no error if it is already gone).
func (s *Registry) DeleteWebSession(ctx context.Context, hash []byte) error {
	_, err := s.exec(ctx, `DELETE FROM web_sessions WHERE hash = ?`, hash)
	return s.wrap("delete web session", err)
}

// DeleteWebSessions ends every session of a user ("sign out everywhere").
func (s *Registry) DeleteWebSessions(ctx context.Context, tenantID, userName string) error {
	_, err := s.exec(ctx, `DELETE FROM web_sessions WHERE tenant_id = ? AND user_name = ?`, tenantID, userName)
	return s.wrap("delete web sessions", err)
}

// DeleteExpiredWebSessions removes the sessions that expired before now.
func (s *Registry) DeleteExpiredWebSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM web_sessions WHERE expires_at < ?`, nanos(now))
	if err != nil {
		return 0, s.wrap("delete expired web sessions", err)
	}
	n, err := res.RowsAffected()
	return n, s.wrap("delete expired web sessions", err)
}

// AddIncidentNote records a note or acknowledgement.
func (s *Registry) AddIncidentNote(ctx context.Context, n IncidentNote) error {
	if n.TenantID == "" || n.IncidentID == "" || n.UserName == "" || (n.Kind != "note" && n.Kind != "ack") {
		return errors.New("registry store: add incident note: tenant, incident, user and kind (note or ack) are required")
	}
	_, err := s.exec(ctx, `INSERT INTO incident_notes (tenant_id, incident_id, user_name, kind, text, at) VALUES (?, ?, ?, ?, ?, ?)`,
		n.TenantID, n.IncidentID, n.UserName, n.Kind, n.Text, nanos(n.At))
	return s.wrap("add incident note", err)
}

// IncidentNotes lists the notes of a tenant's incidents, oldest first;
// with no ids, none.
func (s *Registry) IncidentNotes(ctx context.Context, tenantID string, incidentIDs []string) ([]IncidentNote, error) {
	if len(incidentIDs) == 0 {
		return nil, nil
	}
	q := `SELECT id, tenant_id, incident_id, user_name, kind, text, at FROM incident_notes WHERE tenant_id = ? AND incident_id IN (?` +
		repeatPlaceholders(len(incidentIDs)-1) + `) ORDER BY id`
	args := []any{tenantID}
	for _, id := range incidentIDs {
		args = append(args, id)
	}
	rows, err := s.query(ctx, q, args...)
	out, err := scanAll(rows, err, func(sc scanner) (IncidentNote, error) {
		var n IncidentNote
		var at sql.NullInt64
		err := sc.Scan(&n.ID, &n.TenantID, &n.IncidentID, &n.UserName, &n.Kind, &n.Text, &at)
		n.At = fromNanos(at)
		return n, err
	})
	return out, s.wrap("incident notes", err)
}

// repeatPlaceholders is ", ?" n times.
func repeatPlaceholders(n int) string {
	b := make([]byte, 0, 3*n)
	for range n {
		b = append(b, ", ?"...)
	}
	return string(b)
}
