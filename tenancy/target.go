package tenancy

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/secret"
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
	// registry.TargetRecord.Key for an API target, the id for a config one.
	// Read data by it, never by the id, which another target may have had.
	Key                  string
	CreatedAt, UpdatedAt time.Time // zero for config targets
}

// ConfigTarget is a config file target as a TargetInfo of tenant default.
func ConfigTarget(t config.Target) TargetInfo {
	return TargetInfo{TenantID: registry.DefaultTenant, Source: SourceConfig, Target: t, Key: t.ID}
}

// Shown is r as the target's tenant knows it: under the target's id, not
// its key.
func (ti TargetInfo) Shown(r prober.Result) prober.Result {
	r.TargetID = ti.Target.ID
	return r
}

// targetSecrets are the credentials of a target, sealed apart from its
// spec: the auth fields by name at the top level (password, token, key,
// client_secret, as rows written before headers and URLs were sealed have
// them), the secret headers' values and the URL holding credentials.
type targetSecrets struct {
	Auth    map[string]string `json:"-"`
	Headers map[string]string `json:"headers,omitempty"`
	URL     string            `json:"url,omitempty"`
	// PushToken is a push target's token.
	PushToken string `json:"push_token,omitempty"`
}

func (s targetSecrets) empty() bool {
	return len(s.Auth) == 0 && len(s.Headers) == 0 && s.URL == "" && s.PushToken == ""
}

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
	if s.PushToken != "" {
		m["push_token"] = s.PushToken
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
		case "push_token":
			err = json.Unmarshal(raw, &s.PushToken)
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
	if t.Push != nil {
		p := *t.Push
		sec.PushToken, p.Token = p.Token.Reveal(), secret.Secret{}
		t.Push = &p
	}
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

// RedactTarget is a copy of t fit to show: every credential as
// "<secret>" (the URL's as xxxxx). GET, lists and the YAML export all show
// targets through it.
func RedactTarget(t config.Target) config.Target {
	r, sec := splitSecrets(t)
	if r.Push != nil && sec.PushToken != "" {
		r.Push.Token = secret.New(secret.Redacted)
	}
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
func SealTarget(tenantID string, t config.Target, mk crypt.MasterKey) (registry.TargetRecord, error) {
	rec := registry.TargetRecord{TenantID: tenantID, ID: t.ID, Paused: t.Paused}
	t, sec := splitSecrets(t)
	doc, err := ToDocument(t)
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
// those in the spec and open as they are (Reseal rewrites them).
func OpenTarget(rec registry.TargetRecord, mk crypt.MasterKey) (TargetInfo, error) {
	ti := TargetInfo{TenantID: rec.TenantID, Source: SourceAPI, Key: rec.Key, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
	var doc map[string]any
	if err := json.Unmarshal(rec.Spec, &doc); err != nil {
		return ti, fmt.Errorf("target %s: stored spec: %w", rec.ID, err)
	}
	t, err := DecodeTarget(doc)
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
		if t.Push != nil {
			t.Push.Token = lit(sec.PushToken)
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

// KeepSecrets puts cur's values where t shows them redacted: "<secret>"
// in an auth field or a header, xxxxx in the URL (secret.UnredactURL). A
// redaction cur cannot fill stays, for validation to refuse.
func KeepSecrets(t *config.Target, cur config.Target) {
	if t.Push != nil && cur.Push != nil {
		// A push token is kept unless a new one is given (the API
		// refuses tokens it did not make).
		if v := t.Push.Token.Reveal(); v == "" || v == secret.Redacted {
			t.Push.Token = cur.Push.Token
		}
	}
	if t.HTTP == nil || cur.HTTP == nil {
		return
	}
	ch := cur.HTTP
	if a := t.HTTP.Auth; a != nil {
		var old []prober.SecretField
		if ch.Auth != nil {
			old = ch.Auth.SecretFields()
		}
		for i, f := range a.SecretFields() {
			if f.Value.Reveal() != secret.Redacted {
				continue
			}
			*f.Value = secret.Secret{}
			if old != nil {
				*f.Value = *old[i].Value
			}
		}
	}
	for name, v := range t.HTTP.Headers {
		if old, ok := ch.Headers[name]; ok && v == secret.Redacted {
			t.HTTP.Headers[name] = old
		}
	}
	t.HTTP.URL = secret.UnredactURL(t.HTTP.URL, ch.URL)
}

// Read-only fields of a target document, dropped from input so a document
// read with GET can be sent back with PUT.
var ReadOnlyFields = []string{"source", "created_at", "updated_at"}

// DecodeTarget decodes a target document as it is (a stored spec holds no
// references: the API refused them).
func DecodeTarget(doc map[string]any) (config.Target, error) {
	var t config.Target
	for _, f := range ReadOnlyFields {
		delete(doc, f)
	}
	err := FromDocument(doc, &t)
	return t, err
}
