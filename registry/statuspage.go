package registry

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// schemaStatusPages: public status pages, their incidents and updates, and
// the targets' badge tokens (package statuspage serves them). A page's slug
// and custom domain are unique across tenants: they are how an anonymous
// visitor finds it.
const schemaStatusPages = `CREATE TABLE status_pages (
		tenant_id  TEXT   NOT NULL REFERENCES tenants (id),
		id         TEXT   NOT NULL,
		slug       TEXT   NOT NULL UNIQUE,
		domain     TEXT   UNIQUE, -- NULL: none
		spec       TEXT   NOT NULL, -- JSON: title, logo, components
		created_at {time} NOT NULL,
		updated_at {time} NOT NULL,
		PRIMARY KEY (tenant_id, id)
	){norowid};
	CREATE TABLE status_incidents (
		tenant_id   TEXT   NOT NULL,
		page_id     TEXT   NOT NULL,
		id          TEXT   NOT NULL,
		title       TEXT   NOT NULL,
		created_at  {time} NOT NULL,
		PRIMARY KEY (tenant_id, id)
	){norowid};
	CREATE INDEX status_incidents_page ON status_incidents (tenant_id, page_id, created_at);
	CREATE TABLE status_incident_updates (
		tenant_id   TEXT   NOT NULL,
		incident_id TEXT   NOT NULL,
		id          TEXT   NOT NULL,
		status      TEXT   NOT NULL,
		body        TEXT   NOT NULL,
		at          {time} NOT NULL,
		PRIMARY KEY (tenant_id, incident_id, id)
	){norowid};
	CREATE TABLE badges (
		token      TEXT   NOT NULL PRIMARY KEY,
		tenant_id  TEXT   NOT NULL,
		target_id  TEXT   NOT NULL,
		target_key TEXT   NOT NULL,
		created_at {time} NOT NULL,
		UNIQUE (tenant_id, target_id)
	){norowid};`

// StatusPage is a public status page of a tenant. Slug and Domain (when
// set) are unique across tenants; Spec is the page's JSON (package
// statuspage's Spec).
type StatusPage struct {
	TenantID, ID         string
	Slug, Domain         string
	Spec                 []byte
	CreatedAt, UpdatedAt time.Time
}

// StatusIncident is an incident an editor writes on a status page, with its
// updates oldest first.
type StatusIncident struct {
	TenantID, PageID, ID string
	Title                string
	CreatedAt            time.Time
	Updates              []StatusUpdate
}

// StatusUpdate is one update of a status page incident.
type StatusUpdate struct {
	ID     string
	Status string // investigating, identified, monitoring, resolved
	Body   string
	At     time.Time
}

// Badge makes one target's status public under an unguessable token.
// TargetKey is the target's key when the badge was made: a later target
// with the same id is not the badge's.
type Badge struct {
	Token, TenantID, TargetID, TargetKey string
	CreatedAt                            time.Time
}

const pageColumns = `tenant_id, id, slug, domain, spec, created_at, updated_at`

func scanPage(sc scanner) (StatusPage, error) {
	var p StatusPage
	var domain sql.NullString
	var spec string
	var created, updated sql.NullInt64
	err := sc.Scan(&p.TenantID, &p.ID, &p.Slug, &domain, &spec, &created, &updated)
	p.Domain, p.Spec = domain.String, []byte(spec)
	p.CreatedAt, p.UpdatedAt = fromNanos(created), fromNanos(updated)
	return p, err
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// CreateStatusPage adds a page; ErrConflict when its id (in the tenant),
// slug or domain (in any tenant) is taken.
func (s *Registry) CreateStatusPage(ctx context.Context, p StatusPage) error {
	if p.TenantID == "" || p.ID == "" || p.Slug == "" {
		return errors.New("registry store: create status page: tenant, id and slug are required")
	}
	_, err := s.exec(ctx, `INSERT INTO status_pages (`+pageColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.TenantID, p.ID, p.Slug, nullString(p.Domain), string(p.Spec), nanos(p.CreatedAt), nanos(p.UpdatedAt))
	return s.wrap("create status page "+p.ID, err)
}

// UpdateStatusPage replaces a page's slug, domain and spec; ErrNotFound if
// the tenant has no such page, ErrConflict if the slug or domain is taken.
func (s *Registry) UpdateStatusPage(ctx context.Context, p StatusPage) error {
	err := affected(s.exec(ctx, `UPDATE status_pages SET slug = ?, domain = ?, spec = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`,
		p.Slug, nullString(p.Domain), string(p.Spec), nanos(p.UpdatedAt), p.TenantID, p.ID))
	return s.wrap("update status page "+p.ID, err)
}

// DeleteStatusPage removes a page and its incidents; ErrNotFound if the
// tenant has no such page.
func (s *Registry) DeleteStatusPage(ctx context.Context, tenantID, id string) error {
	err := s.withTx(ctx, func(tx txn) error {
		if err := affected(tx.exec(ctx, `DELETE FROM status_pages WHERE tenant_id = ? AND id = ?`, tenantID, id)); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `DELETE FROM status_incident_updates WHERE tenant_id = ? AND incident_id IN
			(SELECT id FROM status_incidents WHERE tenant_id = ? AND page_id = ?)`, tenantID, tenantID, id); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `DELETE FROM status_incidents WHERE tenant_id = ? AND page_id = ?`, tenantID, id)
		return err
	})
	return s.wrap("delete status page "+id, err)
}

// StatusPage returns one of a tenant's pages, or ErrNotFound.
func (s *Registry) StatusPage(ctx context.Context, tenantID, id string) (StatusPage, error) {
	rows, err := s.query(ctx, `SELECT `+pageColumns+` FROM status_pages WHERE tenant_id = ? AND id = ?`, tenantID, id)
	p, err := first(scanAll(rows, err, scanPage))
	return p, s.wrap("status page "+id, err)
}

// StatusPages lists a tenant's pages by id.
func (s *Registry) StatusPages(ctx context.Context, tenantID string) ([]StatusPage, error) {
	rows, err := s.query(ctx, `SELECT `+pageColumns+` FROM status_pages WHERE tenant_id = ? ORDER BY id`, tenantID)
	out, err := scanAll(rows, err, scanPage)
	return out, s.wrap("status pages", err)
}

// StatusPageBySlug finds a page of any tenant by its slug, or by its custom
// domain when slug is empty; ErrNotFound if there is none.
func (s *Registry) StatusPageBySlug(ctx context.Context, slug, domain string) (StatusPage, error) {
	col, v := "slug", slug
	if slug == "" {
		col, v = "domain", domain
	}
	if v == "" {
		return StatusPage{}, s.wrap("status page", ErrNotFound)
	}
	rows, err := s.query(ctx, `SELECT `+pageColumns+` FROM status_pages WHERE `+col+` = ?`, v)
	p, err := first(scanAll(rows, err, scanPage))
	return p, s.wrap("status page "+v, err)
}

// CreateStatusIncident adds an incident with its first update.
func (s *Registry) CreateStatusIncident(ctx context.Context, inc StatusIncident) error {
	if inc.TenantID == "" || inc.PageID == "" || inc.ID == "" || len(inc.Updates) != 1 {
		return errors.New("registry store: create status incident: tenant, page, id and one update are required")
	}
	err := s.withTx(ctx, func(tx txn) error {
		if _, err := tx.exec(ctx, `INSERT INTO status_incidents (tenant_id, page_id, id, title, created_at) VALUES (?, ?, ?, ?, ?)`,
			inc.TenantID, inc.PageID, inc.ID, inc.Title, nanos(inc.CreatedAt)); err != nil {
			return err
		}
		return addUpdate(ctx, tx, inc.TenantID, inc.ID, inc.Updates[0])
	})
	return s.wrap("create status incident "+inc.ID, err)
}

func addUpdate(ctx context.Context, tx txn, tenantID, incidentID string, u StatusUpdate) error {
	_, err := tx.exec(ctx, `INSERT INTO status_incident_updates (tenant_id, incident_id, id, status, body, at) VALUES (?, ?, ?, ?, ?, ?)`,
		tenantID, incidentID, u.ID, u.Status, u.Body, nanos(u.At))
	return err
}

// AddStatusUpdate appends an update to a tenant's incident; ErrNotFound if
// the tenant has no such incident.
func (s *Registry) AddStatusUpdate(ctx context.Context, tenantID, incidentID string, u StatusUpdate) error {
	err := s.withTx(ctx, func(tx txn) error {
		var one int
		if err := tx.queryRow(ctx, `SELECT 1 FROM status_incidents WHERE tenant_id = ? AND id = ?`, tenantID, incidentID).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		return addUpdate(ctx, tx, tenantID, incidentID, u)
	})
	return s.wrap("add status update to "+incidentID, err)
}

// UpdateStatusIncidentTitle changes an incident's title; ErrNotFound if the
// tenant has no such incident.
func (s *Registry) UpdateStatusIncidentTitle(ctx context.Context, tenantID, id, title string) error {
	err := affected(s.exec(ctx, `UPDATE status_incidents SET title = ? WHERE tenant_id = ? AND id = ?`, title, tenantID, id))
	return s.wrap("update status incident "+id, err)
}

// DeleteStatusIncident removes an incident and its updates; ErrNotFound if
// the tenant has no such incident.
func (s *Registry) DeleteStatusIncident(ctx context.Context, tenantID, id string) error {
	err := s.withTx(ctx, func(tx txn) error {
		if err := affected(tx.exec(ctx, `DELETE FROM status_incidents WHERE tenant_id = ? AND id = ?`, tenantID, id)); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `DELETE FROM status_incident_updates WHERE tenant_id = ? AND incident_id = ?`, tenantID, id)
		return err
	})
	return s.wrap("delete status incident "+id, err)
}

// StatusIncidents lists a page's incidents created at or after since (zero:
// all), newest first, each with its updates oldest first.
func (s *Registry) StatusIncidents(ctx context.Context, tenantID, pageID string, since time.Time) ([]StatusIncident, error) {
	rows, err := s.query(ctx, `SELECT tenant_id, page_id, id, title, created_at FROM status_incidents
		WHERE tenant_id = ? AND page_id = ? AND created_at >= ? ORDER BY created_at DESC, id DESC`, tenantID, pageID, nanos(since))
	incs, err := scanAll(rows, err, func(sc scanner) (StatusIncident, error) {
		var inc StatusIncident
		var created sql.NullInt64
		err := sc.Scan(&inc.TenantID, &inc.PageID, &inc.ID, &inc.Title, &created)
		inc.CreatedAt = fromNanos(created)
		return inc, err
	})
	if err != nil || len(incs) == 0 {
		return incs, s.wrap("status incidents", err)
	}
	rows, err = s.query(ctx, `SELECT u.incident_id, u.id, u.status, u.body, u.at FROM status_incident_updates u
		JOIN status_incidents i ON i.tenant_id = u.tenant_id AND i.id = u.incident_id
		WHERE i.tenant_id = ? AND i.page_id = ? AND i.created_at >= ? ORDER BY u.at, u.id`, tenantID, pageID, nanos(since))
	type row struct {
		inc string
		u   StatusUpdate
	}
	ups, err := scanAll(rows, err, func(sc scanner) (row, error) {
		var r row
		var at sql.NullInt64
		err := sc.Scan(&r.inc, &r.u.ID, &r.u.Status, &r.u.Body, &at)
		r.u.At = fromNanos(at)
		return r, err
	})
	if err != nil {
		return nil, s.wrap("status incident updates", err)
	}
	byID := make(map[string]int, len(incs))
	for i, inc := range incs {
		byID[inc.ID] = i
	}
	for _, r := range ups {
		if i, ok := byID[r.inc]; ok {
			incs[i].Updates = append(incs[i].Updates, r.u)
		}
	}
	return incs, nil
}

// StatusIncident returns one of a tenant's incidents with its updates, or
// ErrNotFound.
func (s *Registry) StatusIncident(ctx context.Context, tenantID, id string) (StatusIncident, error) {
	var pageID string
	err := s.queryRow(ctx, `SELECT page_id FROM status_incidents WHERE tenant_id = ? AND id = ?`, tenantID, id).Scan(&pageID)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return StatusIncident{}, s.wrap("status incident "+id, err)
	}
	incs, err := s.StatusIncidents(ctx, tenantID, pageID, time.Time{})
	for _, inc := range incs {
		if inc.ID == id {
			return inc, err
		}
	}
	return StatusIncident{}, s.wrap("status incident "+id, errors.Join(err, ErrNotFound))
}

// CreateBadge stores a badge; ErrConflict if the target has one.
func (s *Registry) CreateBadge(ctx context.Context, b Badge) error {
	if b.Token == "" || b.TenantID == "" || b.TargetID == "" || b.TargetKey == "" {
		return errors.New("registry store: create badge: token, tenant, target and key are required")
	}
	_, err := s.exec(ctx, `INSERT INTO badges (token, tenant_id, target_id, target_key, created_at) VALUES (?, ?, ?, ?, ?)`,
		b.Token, b.TenantID, b.TargetID, b.TargetKey, nanos(b.CreatedAt))
	return s.wrap("create badge for "+b.TargetID, err)
}

const badgeColumns = `token, tenant_id, target_id, target_key, created_at`

func scanBadge(sc scanner) (Badge, error) {
	var b Badge
	var created sql.NullInt64
	err := sc.Scan(&b.Token, &b.TenantID, &b.TargetID, &b.TargetKey, &created)
	b.CreatedAt = fromNanos(created)
	return b, err
}

// TargetBadge returns a tenant's target's badge, or ErrNotFound.
func (s *Registry) TargetBadge(ctx context.Context, tenantID, targetID string) (Badge, error) {
	rows, err := s.query(ctx, `SELECT `+badgeColumns+` FROM badges WHERE tenant_id = ? AND target_id = ?`, tenantID, targetID)
	b, err := first(scanAll(rows, err, scanBadge))
	return b, s.wrap("badge of "+targetID, err)
}

// BadgeByToken returns the badge with token, or ErrNotFound.
func (s *Registry) BadgeByToken(ctx context.Context, token string) (Badge, error) {
	rows, err := s.query(ctx, `SELECT `+badgeColumns+` FROM badges WHERE token = ?`, token)
	b, err := first(scanAll(rows, err, scanBadge))
	return b, s.wrap("badge", err)
}

// DeleteBadge revokes a tenant's target's badge; ErrNotFound if it has none.
func (s *Registry) DeleteBadge(ctx context.Context, tenantID, targetID string) error {
	err := affected(s.exec(ctx, `DELETE FROM badges WHERE tenant_id = ? AND target_id = ?`, tenantID, targetID))
	return s.wrap("delete badge of "+targetID, err)
}
