package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/report"
)

// Report keys are per tenant: the newest is current and seals new reports;
// older ones stay in the registry (sealed under the master key) so the
// reports they sealed still open. A key's secret leaves the server once,
// as a JWK in the answer that created it.

// reportKeyDoc describes a report key, never its secret.
type reportKeyDoc struct {
	KID       string    `json:"kid"`
	CreatedAt time.Time `json:"created_at"`
	// Current is true for the key that seals new reports.
	Current bool `json:"current"`
	// RetiredAt is when a rotation superseded the key; absent while it is
	// current.
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

// newReportKeyDoc is the answer that creates a key: the only time its JWK
// is shown.
type newReportKeyDoc struct {
	reportKeyDoc
	JWK json.RawMessage `json:"jwk"`
	// Retired lists the kids no longer current after a rotation; they still
	// open the reports they sealed.
	Retired []string `json:"retired,omitempty"`
	Note    string   `json:"note"`
}

// reportKeysDoc is the list envelope, newest key first; keys repeats the
// items for clients written before the envelope was the same everywhere.
type reportKeysDoc struct {
	list[reportKeyDoc]
	Keys []reportKeyDoc `json:"keys"`
}

const jwkNote = "store this JWK now: it is shown only once. Open reports with any JOSE library " +
	"(alg dir, enc A256GCM) or `upwatch report decrypt -key-file KEY`; keep retired keys " +
	"(a JWK Set {\"keys\":[...]}) to open older reports."

func (s *Server) createReportKey(w http.ResponseWriter, r *http.Request, p Principal) error {
	keys, err := s.o.ReportKeys.ReportKeys(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	if len(keys) > 0 {
		return Problem(http.StatusConflict, "Conflict",
			fmt.Sprintf("the tenant already has report key %s; POST /api/v1/report-keys/rotate makes a new current key", keys[0].ID))
	}
	return s.newReportKey(w, r, p, nil)
}

func (s *Server) rotateReportKey(w http.ResponseWriter, r *http.Request, p Principal) error {
	keys, err := s.o.ReportKeys.ReportKeys(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	return s.newReportKey(w, r, p, keys)
}

// newReportKey creates a current key, newer than every key in old, and
// retires the previous current one.
func (s *Server) newReportKey(w http.ResponseWriter, r *http.Request, p Principal, old []report.Key) error {
	now := s.o.Now().UTC()
	// Keys are ordered by creation time: the new key must sort first even
	// when the clock has not moved since the last one.
	for _, k := range old {
		if !now.After(k.CreatedAt) {
			now = k.CreatedAt.Add(time.Nanosecond)
		}
	}
	k, err := report.NewKey(now)
	if err != nil {
		return err
	}
	if err := s.o.ReportKeys.CreateReportKey(r.Context(), p.TenantID, k); err != nil {
		return err
	}
	doc := newReportKeyDoc{reportKeyDoc: reportKeyDoc{KID: k.ID, CreatedAt: k.CreatedAt, Current: true}, Note: jwkNote}
	action := "create"
	if len(old) > 0 {
		action = "rotate"
		if err := s.o.ReportKeys.RetireReportKey(r.Context(), p.TenantID, old[0].ID, now); err != nil {
			return err
		}
		doc.Retired = []string{old[0].ID}
	}
	if err := s.o.Audit.AppendAudit(r.Context(), registry.AuditEntry{
		TenantID: p.TenantID, KeyID: p.KeyID, Action: action, ObjectType: "report_key", ObjectID: k.ID, At: now,
	}); err != nil {
		return err
	}
	if doc.JWK, err = k.JWK(); err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/report-keys")
	writeSecretJSON(w, http.StatusCreated, doc)
	return nil
}

func (s *Server) listReportKeys(w http.ResponseWriter, r *http.Request, p Principal) error {
	doc := reportKeysDoc{Keys: []reportKeyDoc{}}
	keys, err := s.o.ReportKeys.ReportKeyInfos(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	for i, k := range keys {
		d := reportKeyDoc{KID: k.KID, CreatedAt: k.CreatedAt.UTC(), Current: i == 0}
		if !k.RetiredAt.IsZero() {
			at := k.RetiredAt.UTC()
			d.RetiredAt = &at
		}
		doc.Keys = append(doc.Keys, d)
	}
	page, err := pageInOrder(r, doc.Keys, func(k reportKeyDoc) string { return k.KID })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reportKeysDoc{list: page, Keys: page.Items})
	return nil
}

// reportDoc is the plaintext of an encrypted report: the selector SLA
// document with when it was made and for whom.
type reportDoc struct {
	// Version is the report format's version, 1.
	Version     int       `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	Tenant      tenantDoc `json:"tenant"`
	selectorSLADoc
}

type tenantDoc struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// getSLAReport answers an SLA document for the selected targets (all
// without a selector), sealed as a JWE under the tenant's current report
// key: application/jose, compact serialization.
func (s *Server) getSLAReport(w http.ResponseWriter, r *http.Request, p Principal) error {
	keys, err := s.o.ReportKeys.ReportKeys(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return Problem(http.StatusConflict, "No Report Key",
			"the tenant has no report key yet; an admin creates one with POST /api/v1/report-keys")
	}
	doc, err := s.selectorSLA(r.Context(), r, p.TenantID)
	if err != nil {
		return err
	}
	t, err := s.o.Tenants.Tenant(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	plain, err := json.Marshal(reportDoc{
		Version: 1, GeneratedAt: s.o.Now().UTC(),
		Tenant:         tenantDoc{ID: t.ID, Name: t.Name},
		selectorSLADoc: doc,
	})
	if err != nil {
		return err
	}
	token, err := report.Encrypt(plain, keys[0])
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", report.MediaType)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(token)) // the client went away: nothing to tell it
	return nil
}
