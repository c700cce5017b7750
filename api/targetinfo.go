package api

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
)

// targetOf returns the caller's target id, or a 404 problem (also when the
// target belongs to another tenant).
func (s *Server) targetOf(ctx context.Context, tenantID, id string) (tenancy.TargetInfo, error) {
	rec, err := s.o.Targets.Target(ctx, tenantID, id)
	switch {
	case err == nil:
		return tenancy.OpenTarget(rec, s.o.MasterKey)
	case !errors.Is(err, registry.ErrNotFound):
		return tenancy.TargetInfo{}, err
	}
	if tenantID == registry.DefaultTenant {
		for _, t := range s.o.Config().Targets {
			if t.ID == id {
				return tenancy.ConfigTarget(t), nil
			}
		}
	}
	return tenancy.TargetInfo{}, notFound("target", id)
}

// targetsOf lists every target of a tenant: the config file's first (tenant
// "default" only), then the API's, each by id.
func (s *Server) targetsOf(ctx context.Context, tenantID string) ([]tenancy.TargetInfo, error) {
	var out []tenancy.TargetInfo
	if tenantID == registry.DefaultTenant {
		for _, t := range s.o.Config().Targets {
			out = append(out, tenancy.ConfigTarget(t))
		}
	}
	recs, err := s.o.Targets.Targets(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		ti, err := tenancy.OpenTarget(rec, s.o.MasterKey)
		if err != nil {
			return nil, err
		}
		out = append(out, ti)
	}
	return out, nil
}

// targetDocument is t in the API's (and config file's) shape; auth
// secrets show as "<secret>", headers and the URL as they are (show a
// target through tenancy.RedactTarget).
func targetDocument(t config.Target) (map[string]any, error) { return toDocument(t) }

// targetFromDocument decodes an API target document (not yet normalized or
// validated). Credentials given as env: or file: references are refused:
// those read the server's environment and files.
func targetFromDocument(doc map[string]any) (config.Target, error) {
	if h, ok := doc["http"].(map[string]any); ok {
		const onlyConfig = "env: and file: references are only for the config file; send the credential itself"
		var errs []invalid.Field
		if a, ok := h["auth"].(map[string]any); ok {
			for _, f := range (&prober.Auth{}).SecretFields() {
				if v, ok := a[f.Name].(string); ok && prober.IsSecretRef(v) {
					errs = append(errs, invalid.Field{Path: "http.auth." + f.Name, Msg: onlyConfig})
				}
			}
		}
		if hs, ok := h["headers"].(map[string]any); ok {
			for _, name := range slices.Sorted(maps.Keys(hs)) {
				if v, ok := hs[name].(string); ok && prober.IsSecretRef(v) {
					errs = append(errs, invalid.Field{Path: "http.headers." + name, Msg: onlyConfig})
				}
			}
		}
		if len(errs) > 0 {
			return config.Target{}, ValidationProblem(errs)
		}
	}
	t, err := tenancy.DecodeTarget(doc)
	return t, documentProblem(err)
}
