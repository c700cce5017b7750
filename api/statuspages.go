package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/statuspage"
	"github.com/upwatch/upwatch/tenancy"
)

// Status pages, their incidents and the targets' badges: what editors
// (write scope) change here, package statuspage shows to the public. What a
// page may hold, and its bounds, are statuspage's (Spec.Validate).

func (s *Server) registerStatusPageRoutes(r *mux.Router) {
	s.route(r, http.MethodGet, "/status-pages", ScopeRead, s.listStatusPages)
	s.route(r, http.MethodPost, "/status-pages", ScopeWrite, s.createStatusPage)
	s.route(r, http.MethodGet, "/status-pages/{id}", ScopeRead, s.getStatusPage)
	s.route(r, http.MethodPut, "/status-pages/{id}", ScopeWrite, s.putStatusPage)
	s.route(r, http.MethodDelete, "/status-pages/{id}", ScopeWrite, s.deleteStatusPage)
	s.route(r, http.MethodGet, "/status-pages/{id}/components", ScopeRead, s.getComponents)
	s.route(r, http.MethodPut, "/status-pages/{id}/components", ScopeWrite, s.putComponents)
	s.route(r, http.MethodGet, "/status-pages/{id}/incidents", ScopeRead, s.listStatusIncidents)
	s.route(r, http.MethodPost, "/status-pages/{id}/incidents", ScopeWrite, s.createStatusIncident)
	s.route(r, http.MethodGet, "/status-pages/{id}/incidents/{incident}", ScopeRead, s.getStatusIncident)
	s.route(r, http.MethodPatch, "/status-pages/{id}/incidents/{incident}", ScopeWrite, s.patchStatusIncident)
	s.route(r, http.MethodDelete, "/status-pages/{id}/incidents/{incident}", ScopeWrite, s.deleteStatusIncident)
	s.route(r, http.MethodPost, "/status-pages/{id}/incidents/{incident}/updates", ScopeWrite, s.addStatusUpdate)
	s.route(r, http.MethodGet, "/targets/{id}/badge", ScopeRead, s.getBadge)
	s.route(r, http.MethodPost, "/targets/{id}/badge", ScopeWrite, s.enableBadge)
	s.route(r, http.MethodDelete, "/targets/{id}/badge", ScopeWrite, s.disableBadge)
}

// MaintenanceWindows lists a tenant's valid maintenance windows.
func (s *Server) MaintenanceWindows(ctx context.Context, tenantID string) ([]alerting.Window, error) {
	return s.maintenanceWindows(ctx, tenantID)
}

// pageInput is a status page document as clients send it.
type pageInput struct {
	Slug       string                 `json:"slug"`
	Domain     string                 `json:"domain"`
	Title      string                 `json:"title"`
	LogoURL    string                 `json:"logo_url"`
	Components []statuspage.Component `json:"components"`
}

// pageDoc is a status page as the API shows it.
type pageDoc struct {
	ID         string                 `json:"id"`
	Slug       string                 `json:"slug"`
	Domain     string                 `json:"domain,omitempty"`
	Title      string                 `json:"title"`
	LogoURL    string                 `json:"logo_url,omitempty"`
	Components []statuspage.Component `json:"components"`
	URL        string                 `json:"url"`
	CreatedAt  time.Time              `json:"created_at"`
	UpdatedAt  time.Time              `json:"updated_at"`
}

func newPageDoc(p registry.StatusPage) (pageDoc, error) {
	var spec statuspage.Spec
	if err := json.Unmarshal(p.Spec, &spec); err != nil {
		return pageDoc{}, fmt.Errorf("status page %s: stored spec: %w", p.ID, err)
	}
	if spec.Components == nil {
		spec.Components = []statuspage.Component{}
	}
	return pageDoc{ID: p.ID, Slug: p.Slug, Domain: p.Domain, Title: spec.Title, LogoURL: spec.LogoURL,
		Components: spec.Components, URL: "/status/" + p.Slug, CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC()}, nil
}

// pageOf is a tenant's page, or a 404 problem (also for another tenant's).
func (s *Server) pageOf(ctx context.Context, tenantID, id string) (registry.StatusPage, error) {
	p, err := s.o.StatusPages.StatusPage(ctx, tenantID, id)
	return p, storeErr(err, "status page", id)
}

// validatePage checks a page document of tenant; self is the page's id on
// update, so its own slug and domain do not count as taken.
func (s *Server) validatePage(ctx context.Context, tenant, self string, in *pageInput) error {
	in.Domain = statuspage.NormalizeDomain(in.Domain)
	errs := append(statuspage.ValidateSlug(in.Slug), statuspage.ValidateDomain(in.Domain)...)
	if in.Domain != "" && s.o.Config().StatusPages.Reserved(in.Domain) {
		errs = append(errs, invalid.Field{Path: "domain", Msg: "is reserved by the operator"})
	}
	known, err := s.targetIDs(ctx, tenant)
	if err != nil {
		return err
	}
	spec := statuspage.Spec{Title: in.Title, LogoURL: in.LogoURL, Components: in.Components}
	errs = append(errs, spec.Validate(func(id string) bool { return known[id] })...)
	if len(errs) > 0 {
		return ValidationProblem(errs)
	}
	return s.uniquePage(ctx, self, in.Slug, in.Domain)
}

// uniquePage answers 409 naming the field when the slug or domain belongs
// to another page (of any tenant).
func (s *Server) uniquePage(ctx context.Context, self, slug, domain string) error {
	for _, f := range []struct{ field, slug, domain string }{{"slug", slug, ""}, {"domain", "", domain}} {
		if f.slug == "" && f.domain == "" {
			continue
		}
		p, err := s.o.StatusPages.StatusPageBySlug(ctx, f.slug, f.domain)
		if errors.Is(err, registry.ErrNotFound) || (err == nil && p.ID == self && self != "") {
			continue
		}
		if err != nil {
			return err
		}
		return takenProblem(f.field)
	}
	return nil
}

func takenProblem(field string) error {
	pe := Problem(http.StatusConflict, "Conflict", "this "+field+" is taken by another status page").(*ProblemError)
	pe.Errors = []FieldIssue{{Path: field, Message: "is taken by another status page"}}
	return pe
}

// pageStoreErr maps a conflict on write (a race past uniquePage) to 409.
func pageStoreErr(err error, id string) error {
	if errors.Is(err, registry.ErrConflict) {
		return Problem(http.StatusConflict, "Conflict", "the slug or domain is taken by another status page")
	}
	return storeErr(err, "status page", id)
}

func (s *Server) targetIDs(ctx context.Context, tenant string) (map[string]bool, error) {
	ts, err := s.targetsOf(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ts))
	for _, t := range ts {
		out[t.Target.ID] = true
	}
	return out, nil
}

func pageSpec(in pageInput) ([]byte, error) {
	if in.Components == nil {
		in.Components = []statuspage.Component{}
	}
	return json.Marshal(statuspage.Spec{Title: in.Title, LogoURL: in.LogoURL, Components: in.Components})
}

func (s *Server) listStatusPages(w http.ResponseWriter, r *http.Request, p Principal) error {
	ps, err := s.o.StatusPages.StatusPages(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	out := make([]pageDoc, 0, len(ps))
	for _, pg := range ps {
		d, err := newPageDoc(pg)
		if err != nil {
			return err
		}
		out = append(out, d)
	}
	writeJSON(w, http.StatusOK, newList(out))
	return nil
}

func (s *Server) createStatusPage(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	var in pageInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.validatePage(ctx, p.TenantID, "", &in); err != nil {
		return err
	}
	existing, err := s.o.StatusPages.StatusPages(ctx, p.TenantID)
	if err != nil {
		return err
	}
	if len(existing) >= statuspage.MaxPagesPerTenant {
		return boundProblem("max_status_pages", statuspage.MaxPagesPerTenant, len(existing), "status pages per tenant")
	}
	id, err := randomID("sp_")
	if err != nil {
		return err
	}
	spec, err := pageSpec(in)
	if err != nil {
		return err
	}
	now := s.o.Now()
	pg := registry.StatusPage{TenantID: p.TenantID, ID: id, Slug: in.Slug, Domain: in.Domain, Spec: spec, CreatedAt: now, UpdatedAt: now}
	if err := s.o.StatusPages.CreateStatusPage(ctx, pg); err != nil {
		return pageStoreErr(err, id)
	}
	if err := s.audit(ctx, p, "create", "status_page", id); err != nil {
		return err
	}
	d, err := newPageDoc(pg)
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/status-pages/"+id)
	writeJSON(w, http.StatusCreated, d)
	return nil
}

// boundProblem is the 422 for a count at its bound.
func boundProblem(limit string, value, usage int, what string) error {
	pe := Problem(http.StatusUnprocessableEntity, "Quota Exceeded", fmt.Sprintf("at most %d %s; delete one first", value, what)).(*ProblemError)
	pe.Type = ProblemType + "quota"
	pe.Limit, pe.LimitValue, pe.Usage, pe.Requested = limit, value, usage, usage+1
	return pe
}

func (s *Server) getStatusPage(w http.ResponseWriter, r *http.Request, p Principal) error {
	pg, err := s.pageOf(r.Context(), p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	return writeView(w, http.StatusOK, pg, newPageDoc)
}

func (s *Server) putStatusPage(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	cur, err := s.pageOf(ctx, p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	var in pageInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if err := s.validatePage(ctx, p.TenantID, cur.ID, &in); err != nil {
		return err
	}
	spec, err := pageSpec(in)
	if err != nil {
		return err
	}
	return s.savePage(w, r, p, cur, in.Slug, in.Domain, spec)
}

func (s *Server) savePage(w http.ResponseWriter, r *http.Request, p Principal, cur registry.StatusPage, slug, domain string, spec []byte) error {
	ctx := r.Context()
	cur.Slug, cur.Domain, cur.Spec, cur.UpdatedAt = slug, domain, spec, s.o.Now()
	if err := s.o.StatusPages.UpdateStatusPage(ctx, cur); err != nil {
		return pageStoreErr(err, cur.ID)
	}
	if err := s.audit(ctx, p, "update", "status_page", cur.ID); err != nil {
		return err
	}
	return writeView(w, http.StatusOK, cur, newPageDoc)
}

func (s *Server) deleteStatusPage(w http.ResponseWriter, r *http.Request, p Principal) error {
	id := mux.Vars(r)["id"]
	if err := s.o.StatusPages.DeleteStatusPage(r.Context(), p.TenantID, id); err != nil {
		return storeErr(err, "status page", id)
	}
	return s.auditNoContent(r.Context(), w, p, "delete", "status_page", id)
}

// auditNoContent records a write done and answers 204.
func (s *Server) auditNoContent(ctx context.Context, w http.ResponseWriter, p Principal, action, objectType, objectID string) error {
	if err := s.audit(ctx, p, action, objectType, objectID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// componentsDoc is a page's components alone.
type componentsDoc struct {
	Components []statuspage.Component `json:"components"`
}

func newComponentsDoc(p registry.StatusPage) (componentsDoc, error) {
	d, err := newPageDoc(p)
	return componentsDoc{Components: d.Components}, err
}

func (s *Server) getComponents(w http.ResponseWriter, r *http.Request, p Principal) error {
	pg, err := s.pageOf(r.Context(), p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	return writeView(w, http.StatusOK, pg, newComponentsDoc)
}

func (s *Server) putComponents(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	cur, err := s.pageOf(ctx, p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	var in componentsDoc
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	d, err := newPageDoc(cur)
	if err != nil {
		return err
	}
	known, err := s.targetIDs(ctx, p.TenantID)
	if err != nil {
		return err
	}
	spec := statuspage.Spec{Title: d.Title, LogoURL: d.LogoURL, Components: in.Components}
	if spec.Components == nil {
		spec.Components = []statuspage.Component{}
	}
	if errs := spec.Validate(func(id string) bool { return known[id] }); len(errs) > 0 {
		return ValidationProblem(errs)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return s.savePage(w, r, p, cur, cur.Slug, cur.Domain, b)
}

// incidentInput creates an incident with its first update; title alone
// renames one (PATCH).
type incidentInput struct {
	Title  string `json:"title"`
	Status string `json:"status"`
	Body   string `json:"body"`
}

type updateDoc struct {
	ID     string    `json:"id"`
	Status string    `json:"status"`
	Body   string    `json:"body"`
	At     time.Time `json:"at"`
}

type pageIncidentDoc struct {
	ID         string      `json:"id"`
	PageID     string      `json:"page_id"`
	Title      string      `json:"title"`
	Status     string      `json:"status"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
	ResolvedAt *time.Time  `json:"resolved_at,omitempty"`
	Updates    []updateDoc `json:"updates"`
}

func newPageIncidentDoc(inc registry.StatusIncident) pageIncidentDoc {
	d := pageIncidentDoc{ID: inc.ID, PageID: inc.PageID, Title: inc.Title, CreatedAt: inc.CreatedAt.UTC(), UpdatedAt: inc.CreatedAt.UTC(), Updates: []updateDoc{}}
	for _, u := range inc.Updates {
		d.Updates = append(d.Updates, updateDoc{ID: u.ID, Status: u.Status, Body: u.Body, At: u.At.UTC()})
		d.Status, d.UpdatedAt = u.Status, u.At.UTC()
	}
	if d.Status == statuspage.Resolved {
		d.ResolvedAt = timePtr(d.UpdatedAt)
	}
	return d
}

// incidentOf is a tenant's incident on the page in the path, or a 404.
func (s *Server) incidentOf(ctx context.Context, r *http.Request, tenant string) (registry.StatusIncident, error) {
	v := mux.Vars(r)
	if _, err := s.pageOf(ctx, tenant, v["id"]); err != nil {
		return registry.StatusIncident{}, err
	}
	inc, err := s.o.StatusPages.StatusIncident(ctx, tenant, v["incident"])
	if err == nil && inc.PageID != v["id"] {
		err = registry.ErrNotFound
	}
	return inc, storeErr(err, "incident", v["incident"])
}

func (s *Server) listStatusIncidents(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	pg, err := s.pageOf(ctx, p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	incs, err := s.o.StatusPages.StatusIncidents(ctx, p.TenantID, pg.ID, time.Time{})
	if err != nil {
		return err
	}
	out := make([]pageIncidentDoc, 0, len(incs))
	for _, inc := range incs {
		out = append(out, newPageIncidentDoc(inc))
	}
	writeJSON(w, http.StatusOK, newList(out))
	return nil
}

func (s *Server) createStatusIncident(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	pg, err := s.pageOf(ctx, p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	var in incidentInput
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if errs := append(statuspage.ValidateIncident(in.Title), statuspage.ValidateUpdate("", in.Status, in.Body)...); len(errs) > 0 {
		return ValidationProblem(errs)
	}
	incs, err := s.o.StatusPages.StatusIncidents(ctx, p.TenantID, pg.ID, time.Time{})
	if err != nil {
		return err
	}
	if len(incs) >= statuspage.MaxIncidentsPerPage {
		return boundProblem("max_incidents_per_page", statuspage.MaxIncidentsPerPage, len(incs), "incidents per status page")
	}
	id, err := randomID("spi_")
	if err != nil {
		return err
	}
	uid, err := randomID("spu_")
	if err != nil {
		return err
	}
	now := s.o.Now()
	inc := registry.StatusIncident{TenantID: p.TenantID, PageID: pg.ID, ID: id, Title: in.Title, CreatedAt: now,
		Updates: []registry.StatusUpdate{{ID: uid, Status: in.Status, Body: in.Body, At: now}}}
	if err := s.o.StatusPages.CreateStatusIncident(ctx, inc); err != nil {
		return err
	}
	if err := s.audit(ctx, p, "create", "status_incident", id); err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/status-pages/"+pg.ID+"/incidents/"+id)
	writeJSON(w, http.StatusCreated, newPageIncidentDoc(inc))
	return nil
}

func (s *Server) getStatusIncident(w http.ResponseWriter, r *http.Request, p Principal) error {
	inc, err := s.incidentOf(r.Context(), r, p.TenantID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newPageIncidentDoc(inc))
	return nil
}

func (s *Server) patchStatusIncident(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	inc, err := s.incidentOf(ctx, r, p.TenantID)
	if err != nil {
		return err
	}
	var in struct {
		Title string `json:"title"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if errs := statuspage.ValidateIncident(in.Title); len(errs) > 0 {
		return ValidationProblem(errs)
	}
	err = s.o.StatusPages.UpdateStatusIncidentTitle(ctx, p.TenantID, inc.ID, in.Title)
	inc.Title = in.Title
	return s.incidentUpdated(ctx, w, p, err, http.StatusOK, inc)
}

// incidentUpdated finishes a write to incident inc: storeErr of the
// store's err, the audit entry, then inc as it is now, with status.
func (s *Server) incidentUpdated(ctx context.Context, w http.ResponseWriter, p Principal, err error, status int, inc registry.StatusIncident) error {
	if err != nil {
		return storeErr(err, "incident", inc.ID)
	}
	if err := s.audit(ctx, p, "update", "status_incident", inc.ID); err != nil {
		return err
	}
	writeJSON(w, status, newPageIncidentDoc(inc))
	return nil
}

func (s *Server) deleteStatusIncident(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	inc, err := s.incidentOf(ctx, r, p.TenantID)
	if err != nil {
		return err
	}
	if err := s.o.StatusPages.DeleteStatusIncident(ctx, p.TenantID, inc.ID); err != nil {
		return storeErr(err, "incident", inc.ID)
	}
	return s.auditNoContent(ctx, w, p, "delete", "status_incident", inc.ID)
}

func (s *Server) addStatusUpdate(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	inc, err := s.incidentOf(ctx, r, p.TenantID)
	if err != nil {
		return err
	}
	var in struct {
		Status string `json:"status"`
		Body   string `json:"body"`
	}
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	if errs := statuspage.ValidateUpdate("", in.Status, in.Body); len(errs) > 0 {
		return ValidationProblem(errs)
	}
	if len(inc.Updates) >= statuspage.MaxUpdatesPerIncident {
		return boundProblem("max_updates_per_incident", statuspage.MaxUpdatesPerIncident, len(inc.Updates), "updates per incident")
	}
	uid, err := randomID("spu_")
	if err != nil {
		return err
	}
	u := registry.StatusUpdate{ID: uid, Status: in.Status, Body: in.Body, At: s.o.Now()}
	err = s.o.StatusPages.AddStatusUpdate(ctx, p.TenantID, inc.ID, u)
	inc.Updates = append(inc.Updates, u)
	return s.incidentUpdated(ctx, w, p, err, http.StatusCreated, inc)
}

// badgeDoc is a target's badge: its token and the paths of its images.
type badgeDoc struct {
	TargetID  string            `json:"target_id"`
	Token     string            `json:"token"`
	Images    map[string]string `json:"images"` // file → path, e.g. "status.svg" → "/badge/<token>/status.svg"
	CreatedAt time.Time         `json:"created_at"`
}

func newBadgeDoc(b registry.Badge) badgeDoc {
	d := badgeDoc{TargetID: b.TargetID, Token: b.Token, Images: map[string]string{}, CreatedAt: b.CreatedAt.UTC()}
	for _, f := range slices.Sorted(maps.Keys(statuspage.BadgeFiles)) {
		d.Images[strings.TrimSuffix(f, ".svg")] = "/badge/" + b.Token + "/" + f
	}
	return d
}

// badgeOf is the badge of a tenant's target (404 when the target or its
// badge is missing, or the badge was made for an earlier target of that id).
func (s *Server) badgeOf(ctx context.Context, tenant, id string) (tenancy.TargetInfo, registry.Badge, error) {
	ti, err := s.targetOf(ctx, tenant, id)
	if err != nil {
		return ti, registry.Badge{}, err
	}
	b, err := s.o.StatusPages.TargetBadge(ctx, tenant, id)
	return ti, b, storeErr(err, "badge of target", id)
}

func (s *Server) getBadge(w http.ResponseWriter, r *http.Request, p Principal) error {
	ti, b, err := s.badgeOf(r.Context(), p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	if b.TargetKey != ti.Key {
		return notFound("badge of target", ti.Target.ID)
	}
	writeJSON(w, http.StatusOK, newBadgeDoc(b))
	return nil
}

// enableBadge makes a target's badges public under a new unguessable
// token (201), or answers the one it has (200).
func (s *Server) enableBadge(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	ti, b, err := s.badgeOf(ctx, p.TenantID, mux.Vars(r)["id"])
	var pe *ProblemError
	switch {
	case err == nil && b.TargetKey == ti.Key:
		writeJSON(w, http.StatusOK, newBadgeDoc(b))
		return nil
	case err == nil: // left by an earlier target of this id
		if err := s.o.StatusPages.DeleteBadge(ctx, p.TenantID, ti.Target.ID); err != nil && !errors.Is(err, registry.ErrNotFound) {
			return err
		}
	case ti.Key == "" || !errors.As(err, &pe) || pe.Status != http.StatusNotFound:
		return err
	}
	// 40 base62 characters: about 238 random bits.
	token, err := randomString(40)
	if err != nil {
		return err
	}
	b = registry.Badge{Token: token, TenantID: p.TenantID, TargetID: ti.Target.ID, TargetKey: ti.Key, CreatedAt: s.o.Now()}
	if err := s.o.StatusPages.CreateBadge(ctx, b); err != nil {
		return storeErr(err, "badge of target", ti.Target.ID)
	}
	if err := s.audit(ctx, p, "create", "badge", ti.Target.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, newBadgeDoc(b))
	return nil
}

func (s *Server) disableBadge(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	if _, err := s.targetOf(ctx, p.TenantID, id); err != nil {
		return err
	}
	if err := s.o.StatusPages.DeleteBadge(ctx, p.TenantID, id); err != nil {
		return storeErr(err, "badge of target", id)
	}
	return s.auditNoContent(ctx, w, p, "delete", "badge", id)
}
