package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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

// targetSecrets are the credentials of a target, sealed apart from its spec.
type targetSecrets struct {
	Password     string `json:"password,omitempty"`
	Token        string `json:"token,omitempty"`
	Key          string `json:"key,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
}

func secretsAAD(tenantID, targetID string) []byte {
	return []byte("upwatch target secrets\x00" + tenantID + "\x00" + targetID)
}

// SealTarget turns an API target into its registry record: the spec as
// JSON with the credentials left out, the credentials sealed with mk
// (additional data: tenant and target id).
func SealTarget(tenantID string, t config.Target, mk crypt.MasterKey) (store.TargetRecord, error) {
	rec := store.TargetRecord{TenantID: tenantID, ID: t.ID, Paused: t.Paused}
	var sec targetSecrets
	if t.HTTP != nil && t.HTTP.Auth != nil {
		a := *t.HTTP.Auth
		sec = targetSecrets{a.Password.Reveal(), a.Token.Reveal(), a.Key.Reveal(), a.ClientSecret.Reveal()}
		a.Password, a.Token, a.Key, a.ClientSecret = secret.Secret{}, secret.Secret{}, secret.Secret{}, secret.Secret{}
		h := *t.HTTP
		h.Auth = &a
		t.HTTP = &h
	}
	doc, err := targetDocument(t)
	if err != nil {
		return rec, err
	}
	if rec.Spec, err = json.Marshal(doc); err != nil {
		return rec, err
	}
	if sec != (targetSecrets{}) {
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
// credentials.
func OpenTarget(rec store.TargetRecord, mk crypt.MasterKey) (TargetInfo, error) {
	ti := TargetInfo{TenantID: rec.TenantID, Source: SourceAPI, Key: rec.Key, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
	var doc map[string]any
	if err := json.Unmarshal(rec.Spec, &doc); err != nil {
		return ti, fmt.Errorf("target %s: stored spec: %w", rec.ID, err)
	}
	t, err := targetFromDocument(doc)
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
		if t.HTTP != nil && t.HTTP.Auth != nil {
			a := t.HTTP.Auth
			a.Password, a.Token, a.Key, a.ClientSecret = lit(sec.Password), lit(sec.Token), lit(sec.Key), lit(sec.ClientSecret)
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

// targetDocument is t in the API's (and config file's) shape; credentials
// show as "<secret>".
func targetDocument(t config.Target) (map[string]any, error) { return toDocument(t) }

// targetFromDocument decodes an API target document (not yet normalized or
// validated). Credentials given as env: or file: references are refused:
// those read the server's environment and files.
func targetFromDocument(doc map[string]any) (config.Target, error) {
	var t config.Target
	for _, f := range readOnlyTargetFields {
		delete(doc, f)
	}
	if h, ok := doc["http"].(map[string]any); ok {
		if a, ok := h["auth"].(map[string]any); ok {
			var errs []prober.FieldError
			for _, f := range []string{"password", "token", "key", "client_secret"} {
				if v, ok := a[f].(string); ok && (strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:")) {
					errs = append(errs, prober.FieldError{Path: "http.auth." + f, Msg: "env: and file: references are only for the config file; send the credential itself"})
				}
			}
			if len(errs) > 0 {
				return t, ValidationProblem(errs)
			}
		}
	}
	err := fromDocument(doc, &t)
	return t, err
}
