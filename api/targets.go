package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/secret"
	"github.com/upwatch/upwatch/tenancy"
)

// targetView is a target as the API shows it: the config file's shape,
// credentials redacted (redactTarget), plus source, paused and times.
func targetView(ti tenancy.TargetInfo) (map[string]any, error) {
	doc, err := targetDocument(tenancy.RedactTarget(ti.Target))
	if err != nil {
		return nil, err
	}
	doc["source"] = ti.Source
	doc["paused"] = ti.Target.Paused
	if ti.Source == tenancy.SourceAPI {
		doc["created_at"] = ti.CreatedAt.UTC().Format(time.RFC3339Nano)
		doc["updated_at"] = ti.UpdatedAt.UTC().Format(time.RFC3339Nano)
	}
	return doc, nil
}

// labelFilter parses ?label=k=v (repeatable; all must match).
func labelFilter(r *http.Request) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range r.URL.Query()["label"] {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, Problem(http.StatusBadRequest, "Bad Request", fmt.Sprintf("label filter %q must be name=value", l))
		}
		out[k] = v
	}
	return out, nil
}

func matches(labels, want map[string]string) bool {
	for k, v := range want {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (s *Server) listTargets(w http.ResponseWriter, r *http.Request, p Principal) error {
	if isYAML, err := yamlFormat(r); err != nil {
		return err
	} else if isYAML {
		return s.exportTargets(w, r, p) // config as code (configcode.go)
	}
	want, err := labelFilter(r)
	if err != nil {
		return err
	}
	source := r.URL.Query().Get("source")
	if source != "" && source != tenancy.SourceAPI && source != tenancy.SourceConfig {
		return Problem(http.StatusBadRequest, "Bad Request", "source must be api or config")
	}
	ts, err := s.targetsOf(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, ti := range ts {
		if !matches(ti.Target.Labels, want) || (source != "" && ti.Source != source) {
			continue
		}
		v, err := targetView(ti)
		if err != nil {
			return err
		}
		out = append(out, v)
	}
	return writePage(w, r, out, viewID)
}

func (s *Server) getTarget(w http.ResponseWriter, r *http.Request, p Principal) error {
	ti, err := s.targetOf(r.Context(), p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	return writeView(w, http.StatusOK, ti, targetView)
}

// inConfig reports whether the config file declares a target id of the
// tenant: ids are per tenant, and the file's targets are tenant default's.
func (s *Server) inConfig(tenantID, id string) bool {
	if tenantID != registry.DefaultTenant {
		return false
	}
	return slices.ContainsFunc(s.o.Config().Targets, func(t config.Target) bool { return t.ID == id })
}

func (s *Server) createTarget(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	doc, err := readObject(r)
	if err != nil {
		return err
	}
	t, err := targetFromDocument(doc)
	if err != nil {
		return err
	}
	if t.ID == "" {
		if t.ID, err = randomID("tgt_"); err != nil {
			return err
		}
	}
	if t.Push != nil {
		tok, err := prober.NewPushToken()
		if err != nil {
			return err
		}
		t.Push.Token = secret.New(tok)
	}
	t.Normalize()
	if errs := s.validateTarget(ctx, p.TenantID, &t); len(errs) > 0 {
		return ValidationProblem(errs)
	}
	defer s.writes.lock(p.TenantID)()
	if err := s.withinQuota(ctx, p.TenantID, t.Target); err != nil {
		return err
	}
	if s.inConfig(p.TenantID, t.ID) {
		return Problem(http.StatusConflict, "Conflict", fmt.Sprintf("target id %q is declared in the config file; choose another or leave id out", t.ID))
	}
	now := s.o.Now()
	rec, err := tenancy.SealTarget(p.TenantID, t, s.o.MasterKey)
	if err != nil {
		return err
	}
	rec.CreatedAt, rec.UpdatedAt = now, now
	key, err := s.o.Targets.CreateTarget(ctx, rec)
	if err != nil {
		return storeErr(err, "target", t.ID) // a conflict is one of the tenant's own ids
	}
	if err := s.changed(ctx, p, "create", "target", t.ID); err != nil {
		return err
	}
	return s.writeTarget(w, http.StatusCreated, tenancy.TargetInfo{TenantID: p.TenantID, Source: tenancy.SourceAPI, Target: t, Key: key, CreatedAt: now, UpdatedAt: now})
}

func (s *Server) writeTarget(w http.ResponseWriter, status int, ti tenancy.TargetInfo) error {
	v, err := targetView(ti)
	if err != nil {
		return err
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", Prefix+"/targets/"+ti.Target.ID)
		// A push target's token is shown this once, to the one who made it.
		if pv, ok := v["push"].(map[string]any); ok && ti.Target.Push != nil {
			pv["token"] = ti.Target.Push.Token.Reveal()
		}
	}
	writeJSON(w, status, v)
	return nil
}

// writable returns the caller's API target id; config targets are 409.
func (s *Server) writable(ctx context.Context, p Principal, id string) (tenancy.TargetInfo, error) {
	ti, err := s.targetOf(ctx, p.TenantID, id)
	if err != nil {
		return ti, err
	}
	if ti.Source == tenancy.SourceConfig {
		return ti, Problem(http.StatusConflict, "Conflict", fmt.Sprintf("target %q is declared in the config file; change it there", id))
	}
	return ti, nil
}

func (s *Server) putTarget(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	cur, err := s.writable(ctx, p, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	doc, err := readObject(r)
	if err != nil {
		return err
	}
	return s.replaceTarget(w, r, p, cur, doc)
}

func (s *Server) patchTarget(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	cur, err := s.writable(ctx, p, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	patch, err := readObject(r)
	if err != nil {
		return err
	}
	doc, err := targetView(cur)
	if err != nil {
		return err
	}
	return s.replaceTarget(w, r, p, cur, mergePatch(doc, patch))
}

// replaceTarget stores doc as the new version of cur. "<secret>" in a
// credential (or a redacted header or URL) keeps the current value.
func (s *Server) replaceTarget(w http.ResponseWriter, r *http.Request, p Principal, cur tenancy.TargetInfo, doc map[string]any) error {
	ctx := r.Context()
	id := cur.Target.ID
	if v, ok := doc["id"]; ok && v != id {
		return ValidationProblem([]invalid.Field{{Path: "id", Msg: fmt.Sprintf("cannot change (the target is %q)", id)}})
	}
	t, err := targetFromDocument(doc)
	if err != nil {
		return err
	}
	t.ID = id
	tenancy.KeepSecrets(&t, cur.Target)
	t.Normalize()
	if errs := s.validateTarget(ctx, p.TenantID, &t); len(errs) > 0 {
		return ValidationProblem(errs)
	}
	defer s.writes.lock(p.TenantID)()
	if err := s.withinQuota(ctx, p.TenantID, t.Target); err != nil {
		return err
	}
	rec, err := tenancy.SealTarget(p.TenantID, t, s.o.MasterKey)
	if err != nil {
		return err
	}
	rec.CreatedAt, rec.UpdatedAt = cur.CreatedAt, s.o.Now()
	if err := s.o.Targets.UpdateTarget(ctx, rec); err != nil {
		return storeErr(err, "target", id)
	}
	if err := s.changed(ctx, p, "update", "target", id); err != nil {
		return err
	}
	return s.writeTarget(w, http.StatusOK, tenancy.TargetInfo{TenantID: p.TenantID, Source: tenancy.SourceAPI, Target: t, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt})
}

// validateTarget checks an API target: the config's rules, plus what only
// the config file may do (read server files, env: and file: credentials),
// its policy and dependencies within the tenant.
func (s *Server) validateTarget(ctx context.Context, tenant string, t *config.Target) []invalid.Field {
	var errs []invalid.Field
	for _, e := range t.Validate("target") {
		e.Path = strings.TrimPrefix(e.Path, "target.")
		errs = append(errs, e)
	}
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	const noFiles = "server files are only for targets in the config file"
	fileFields := func(path string, tc prober.TLSClient) {
		if tc.CAFile != "" {
			add(path+".ca_file", noFiles)
		}
		if tc.CertFile != "" {
			add(path+".cert_file", noFiles)
		}
		if tc.KeyFile != "" {
			add(path+".key_file", noFiles)
		}
	}
	if t.HTTP != nil {
		fileFields("http.tls_config", t.HTTP.TLS)
		if a := t.HTTP.Auth; a != nil {
			for _, f := range a.SecretFields() {
				if f.Value.Reveal() == secret.Redacted {
					add("http.auth."+f.Name, "send the credential itself (%q only keeps the stored one on update)", secret.Redacted)
				}
			}
		}
		for _, name := range slices.Sorted(maps.Keys(t.HTTP.Headers)) {
			if t.HTTP.Headers[name] == secret.Redacted {
				add("http.headers."+name, "send the value itself (%q only keeps the stored one on update)", secret.Redacted)
			}
		}
		if secret.HasMask(t.HTTP.URL) {
			add("http.url", "send the credentials in it (%s only keeps the stored ones on update)", secret.URLMask)
		}
	}
	if t.TCP != nil {
		fileFields("tcp.tls_config", t.TCP.TLSConfig)
	}
	if t.GRPC != nil {
		fileFields("grpc.tls_config", t.GRPC.TLSConfig)
	}
	if t.TLS != nil && t.TLS.CAFile != "" {
		add("tls.ca_file", noFiles)
	}
	if t.AlertPolicy != "" {
		ok, err := s.policyExists(ctx, tenant, t.AlertPolicy)
		if err != nil {
			add("alert_policy", "could not be checked")
		} else if !ok {
			add("alert_policy", "unknown alert policy %q", t.AlertPolicy)
		}
	}
	if len(t.DependsOn) > 0 {
		ts, err := s.targetsOf(ctx, tenant)
		if err != nil {
			add("depends_on", "could not be checked")
			return errs
		}
		ids := map[string]bool{}
		deps := map[string][]string{}
		for _, x := range ts {
			ids[x.Target.ID] = true
			deps[x.Target.ID] = x.Target.DependsOn
		}
		deps[t.ID] = t.DependsOn
		for j, d := range t.DependsOn {
			switch {
			case d == t.ID:
				add(fmt.Sprintf("depends_on[%d]", j), "a target cannot depend on itself")
			case !ids[d]:
				add(fmt.Sprintf("depends_on[%d]", j), "unknown target id %q", d)
			}
		}
		if cyc := config.DependencyCycle(t.ID, func(id string) []string { return deps[id] }); cyc != nil {
			add("depends_on", "cycle %s", strings.Join(cyc, " → "))
		}
	}
	return errs
}

func (s *Server) deleteTarget(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	if _, err := s.writable(ctx, p, id); err != nil {
		return err
	}
	ts, err := s.targetsOf(ctx, p.TenantID)
	if err != nil {
		return err
	}
	for _, x := range ts {
		if slices.Contains(x.Target.DependsOn, id) {
			return Problem(http.StatusConflict, "Conflict", fmt.Sprintf("target %q depends on it; change that first", x.Target.ID))
		}
	}
	if err := s.o.Targets.DeleteTarget(ctx, p.TenantID, id); err != nil {
		return storeErr(err, "target", id)
	}
	if err := s.changed(ctx, p, "delete", "target", id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pauseTarget(pause bool) handlerFunc {
	action := map[bool]string{true: "pause", false: "resume"}[pause]
	return func(w http.ResponseWriter, r *http.Request, p Principal) error {
		ctx := r.Context()
		cur, err := s.writable(ctx, p, mux.Vars(r)["id"])
		if err != nil {
			return err
		}
		t := cur.Target
		t.Paused = pause
		defer s.writes.lock(p.TenantID)()
		if !pause {
			if err := s.withinQuota(ctx, p.TenantID, t.Target); err != nil {
				return err
			}
		}
		rec, err := tenancy.SealTarget(p.TenantID, t, s.o.MasterKey)
		if err != nil {
			return err
		}
		rec.CreatedAt, rec.UpdatedAt = cur.CreatedAt, s.o.Now()
		if err := s.o.Targets.UpdateTarget(ctx, rec); err != nil {
			return storeErr(err, "target", t.ID)
		}
		if err := s.changed(ctx, p, action, "target", t.ID); err != nil {
			return err
		}
		cur.Target, cur.UpdatedAt = t, rec.UpdatedAt
		return s.writeTarget(w, http.StatusOK, cur)
	}
}

type lastCheck struct {
	At         time.Time `json:"at"`
	Location   string    `json:"location,omitempty"`
	Success    bool      `json:"success"`
	DurationMS float64   `json:"duration_ms"`
	ErrorClass string    `json:"error_class,omitempty"`
	Error      string    `json:"error,omitempty"`
	StatusCode int       `json:"status_code,omitempty"`
}

type statusEntry struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Kind      string            `json:"kind"`
	Source    string            `json:"source"`
	Paused    bool              `json:"paused"`
	Labels    map[string]string `json:"labels,omitempty"`
	State     string            `json:"state"`
	Since     *time.Time        `json:"since,omitempty"`
	LastCheck *lastCheck        `json:"last_check,omitempty"`
}

// getStatus is the status board: every target of the tenant with its
// state, since when, and its last check.
func (s *Server) getStatus(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	want, err := labelFilter(r)
	if err != nil {
		return err
	}
	ts, err := s.targetsOf(ctx, p.TenantID)
	if err != nil {
		return err
	}
	var latest map[string]prober.Result
	if s.o.Samples != nil {
		if latest, err = s.o.Samples.Latest(ctx); err != nil {
			return err
		}
	}
	out := []statusEntry{}
	for _, ti := range ts {
		t := ti.Target
		if !matches(t.Labels, want) {
			continue
		}
		e := statusEntry{ID: t.ID, Name: t.Name, Kind: t.Kind, Source: ti.Source, Paused: t.Paused, Labels: t.Labels, State: "unknown"}
		if st, ok := s.o.States(ti.Key); ok && st.Status != "" {
			e.State, e.Since = string(st.Status), timePtr(st.Since)
		}
		if t.Paused {
			e.State = "paused"
		}
		if res, ok := latest[ti.Key]; ok {
			e.LastCheck = &lastCheck{At: res.Start.UTC(), Location: res.Location, Success: res.Success,
				DurationMS: float64(res.Duration) / float64(time.Millisecond), ErrorClass: string(res.ErrorClass),
				Error: res.Error, StatusCode: res.StatusCode}
		}
		out = append(out, e)
	}
	return writePage(w, r, out, func(e statusEntry) string { return e.ID })
}
