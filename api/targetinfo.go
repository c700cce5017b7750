package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/secret"
	"github.com/upwatch/upwatch/store"
)

// Target sources.
const (
	SourceAPI    = "api"
	SourceConfig = "config"
)

// TargetInfo is one target of a tenant, from the API or the config file.
// Target is normalized and holds its credentials: never return or log them.
type TargetInfo struct {
	TenantID string
	Source   string // SourceAPI or SourceConfig
	Target   config.Target
	// Key is what the target's samples, incidents and state belong to:
	// store.TargetRecord.Key for an API target, the id for a config one.
	// Read data by it, never by the id, which another target may have had.
	Key                  string
	CreatedAt, UpdatedAt time.Time // zero for config targets
}

// configTarget is a config file target as a TargetInfo of tenant default.
func configTarget(t config.Target) TargetInfo {
	return TargetInfo{TenantID: store.DefaultTenant, Source: SourceConfig, Target: t, Key: t.ID}
}

// shown is r as the target's tenant knows it: under the target's id, not
// its key.
func (ti TargetInfo) shown(r prober.Result) prober.Result {
	r.TargetID = ti.Target.ID
	return r
}

// targetOf returns the caller's target id, or a 404 problem (also when the
// target belongs to another tenant).
func (s *Server) targetOf(ctx context.Context, tenantID, id string) (TargetInfo, error) {
	rec, err := s.o.Store.Target(ctx, tenantID, id)
	switch {
	case err == nil:
		return OpenTarget(rec, s.o.MasterKey)
	case !errors.Is(err, store.ErrNotFound):
		return TargetInfo{}, err
	}
	if tenantID == store.DefaultTenant {
		for _, t := range s.o.Config().Targets {
			if t.ID == id {
				return configTarget(t), nil
			}
		}
	}
	return TargetInfo{}, notFound("target", id)
}

// targetsOf lists every target of a tenant: the config file's first (tenant
// "default" only), then the API's, each by id.
func (s *Server) targetsOf(ctx context.Context, tenantID string) ([]TargetInfo, error) {
	var out []TargetInfo
	if tenantID == store.DefaultTenant {
		for _, t := range s.o.Config().Targets {
			out = append(out, configTarget(t))
		}
	}
	recs, err := s.o.Store.Targets(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		ti, err := OpenTarget(rec, s.o.MasterKey)
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

// targetSecrets are the credentials of a target, sealed apart from its
// spec: the auth fields by name at the top level (password, token, key,
// client_secret, as rows written before headers and URLs were sealed have
// them), the secret headers' values and the URL holding credentials.
type targetSecrets struct {
	Auth    map[string]string `json:"-"`
	Headers map[string]string `json:"headers,omitempty"`
	URL     string            `json:"url,omitempty"`
}

func (s targetSecrets) empty() bool { return len(s.Auth) == 0 && len(s.Headers) == 0 && s.URL == "" }

func (s targetSecrets) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for k, v := range s.Auth {
		m[k] = v
	}
	if len(s.Headers) > 0 {
		m["headers"] = s.Headers
	}
	if s.URL != "" {
		m["url"] = s.URL
	}
	return json.Marshal(m)
}

func (s *targetSecrets) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for k, raw := range m {
		var err error
		switch k {
		case "headers":
			err = json.Unmarshal(raw, &s.Headers)
		case "url":
			err = json.Unmarshal(raw, &s.URL)
		default:
			var v string
			if err = json.Unmarshal(raw, &v); err == nil && v != "" {
				if s.Auth == nil {
					s.Auth = map[string]string{}
				}
				s.Auth[k] = v
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func secretsAAD(tenantID, targetID string) []byte {
	return []byte("upwatch target secrets\x00" + tenantID + "\x00" + targetID)
}

// splitSecrets returns a copy of t with every credential taken out (auth
// fields empty, secret headers "<secret>", the URL redacted) and the
// credentials taken. t itself is not changed.
func splitSecrets(t config.Target) (config.Target, targetSecrets) {
	var sec targetSecrets
	if t.HTTP == nil {
		return t, sec
	}
	h := *t.HTTP
	if h.Auth != nil {
		a := *h.Auth
		for _, f := range a.SecretFields() {
			if v := f.Value.Reveal(); v != "" {
				if sec.Auth == nil {
					sec.Auth = map[string]string{}
				}
				sec.Auth[f.Name] = v
			}
			*f.Value = secret.Secret{}
		}
		h.Auth = &a
	}
	if len(h.Headers) > 0 {
		hs := make(map[string]string, len(h.Headers))
		for name, v := range h.Headers {
			if h.SecretHeader(name) {
				if sec.Headers == nil {
					sec.Headers = map[string]string{}
				}
				sec.Headers[name], v = v, secret.Redacted
			}
			hs[name] = v
		}
		h.Headers = hs
	}
	if shown := secret.RedactURL(h.URL, secret.URLCredentials); shown != h.URL {
		sec.URL, h.URL = h.URL, shown
	}
	t.HTTP = &h
	return t, sec
}

// redactTarget is a copy of t fit to show: every credential as
// "<secret>" (the URL's as xxxxx). GET, lists and the YAML export all show
// targets through it.
func redactTarget(t config.Target) config.Target {
	r, sec := splitSecrets(t)
	if r.HTTP != nil && r.HTTP.Auth != nil {
		for _, f := range r.HTTP.Auth.SecretFields() {
			if sec.Auth[f.Name] != "" {
				*f.Value = secret.New(secret.Redacted)
			}
		}
	}
	return r
}

// SealTarget turns an API target into its registry record: the spec as
// JSON with every credential left out (auth fields, secret headers, the
// URL's password and secret query values), the credentials sealed with mk
// (additional data: tenant and target id).
func SealTarget(tenantID string, t config.Target, mk crypt.MasterKey) (store.TargetRecord, error) {
	rec := store.TargetRecord{TenantID: tenantID, ID: t.ID, Paused: t.Paused}
	t, sec := splitSecrets(t)
	doc, err := targetDocument(t)
	if err != nil {
		return rec, err
	}
	if rec.Spec, err = json.Marshal(doc); err != nil {
		return rec, err
	}
	if !sec.empty() {
		plain, err := json.Marshal(sec)
		if err != nil {
			return rec, err
		}
		if rec.Secrets, err = mk.Seal(plain, secretsAAD(tenantID, t.ID)); err != nil {
			return rec, fmt.Errorf("sealing the credentials of target %s: %w", t.ID, err)
		}
	}
	return rec, nil
}

// OpenTarget reverses SealTarget: the normalized, validated target with its
// credentials. Records written before headers and URLs were sealed hold
// those in the spec and open as they are (ResealTargets rewrites them).
func OpenTarget(rec store.TargetRecord, mk crypt.MasterKey) (TargetInfo, error) {
	ti := TargetInfo{TenantID: rec.TenantID, Source: SourceAPI, Key: rec.Key, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
	var doc map[string]any
	if err := json.Unmarshal(rec.Spec, &doc); err != nil {
		return ti, fmt.Errorf("target %s: stored spec: %w", rec.ID, err)
	}
	t, err := decodeTarget(doc)
	if err != nil {
		return ti, fmt.Errorf("target %s: stored spec does not decode: %w", rec.ID, err)
	}
	if len(rec.Secrets) > 0 {
		plain, err := mk.Open(rec.Secrets, secretsAAD(rec.TenantID, rec.ID))
		if err != nil {
			return ti, fmt.Errorf("target %s: credentials: %w", rec.ID, err)
		}
		var sec targetSecrets
		if err := json.Unmarshal(plain, &sec); err != nil {
			return ti, fmt.Errorf("target %s: credentials do not decode", rec.ID)
		}
		if h := t.HTTP; h != nil {
			if h.Auth != nil {
				for _, f := range h.Auth.SecretFields() {
					*f.Value = lit(sec.Auth[f.Name])
				}
			}
			for name, v := range sec.Headers {
				if h.Headers == nil {
					h.Headers = map[string]string{}
				}
				h.Headers[name] = v
			}
			if sec.URL != "" {
				h.URL = sec.URL
			}
		}
	}
	t.ID, t.Paused = rec.ID, rec.Paused
	t.Normalize()
	_ = t.Validate("target") // compiles the regexes the checks need
	ti.Target = t
	return ti, nil
}

func lit(v string) secret.Secret {
	if v == "" {
		return secret.Secret{}
	}
	return secret.New(v)
}

// Read-only fields of a target document, dropped from input so a document
// read with GET can be sent back with PUT.
var readOnlyTargetFields = []string{"source", "created_at", "updated_at"}

// targetDocument is t in the API's (and config file's) shape; auth
// secrets show as "<secret>", headers and the URL as they are (show a
// target through redactTarget).
func targetDocument(t config.Target) (map[string]any, error) { return toDocument(t) }

// targetFromDocument decodes an API target document (not yet normalized or
// validated). Credentials given as env: or file: references are refused:
// those read the server's environment and files.
func targetFromDocument(doc map[string]any) (config.Target, error) {
	if h, ok := doc["http"].(map[string]any); ok {
		const onlyConfig = "env: and file: references are only for the config file; send the credential itself"
		var errs []prober.FieldError
		if a, ok := h["auth"].(map[string]any); ok {
			for _, f := range (&prober.Auth{}).SecretFields() {
				if v, ok := a[f.Name].(string); ok && prober.IsSecretRef(v) {
					errs = append(errs, prober.FieldError{Path: "http.auth." + f.Name, Msg: onlyConfig})
				}
			}
		}
		if hs, ok := h["headers"].(map[string]any); ok {
			for _, name := range slices.Sorted(maps.Keys(hs)) {
				if v, ok := hs[name].(string); ok && prober.IsSecretRef(v) {
					errs = append(errs, prober.FieldError{Path: "http.headers." + name, Msg: onlyConfig})
				}
			}
		}
		if len(errs) > 0 {
			return config.Target{}, ValidationProblem(errs)
		}
	}
	return decodeTarget(doc)
}

// decodeTarget decodes a target document as it is (a stored spec holds no
// references: the API refused them).
func decodeTarget(doc map[string]any) (config.Target, error) {
	var t config.Target
	for _, f := range readOnlyTargetFields {
		delete(doc, f)
	}
	err := fromDocument(doc, &t)
	return t, err
}
