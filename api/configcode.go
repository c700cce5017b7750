package api

// Config as code: GET /api/v1/targets?format=yaml exports the caller
// tenant's API-managed targets as a config-file document (a top-level
// `targets:` list that config.Config parses as is), and PUT of such a
// document makes the tenant's API targets exactly what it says.
//
//   - Config-file targets are left out of the export (they are read-only
//     here; the export's header comment names them) and are never touched
//     by a PUT; a document naming one of their ids is a 409.
//   - Credentials are exported redacted as GET /targets/{id} shows them
//     (redactTarget); in a PUT, "<secret>" (xxxxx in a URL) keeps the
//     stored value of the target with that id. env: and file: references are refused (422):
//     they read the server's environment and files.
//   - The whole document is validated first, with the config's own rules
//     plus the API's (no server files, policies and dependencies within the
//     tenant), every error with its path (targets[3].interval); then it is
//     applied in one store transaction with its audit entries, all or
//     nothing. dry_run=true answers the diff and applies nothing.
//   - The tenant's quotas hold for the targets as the document leaves them
//     (422 quota problem, also for dry_run).
//   - A target without an id gets its name as id, as in the config file.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/tenancy"
)

// YAML media types accepted for a targets document; the export is the first.
var yamlTypes = []string{"application/yaml", "text/yaml", "application/x-yaml"}

// targetsDocument is the config file's shape, reduced to its targets.
type targetsDocument struct {
	Targets []config.Target `yaml:"targets"`
}

// yamlFormat reports whether the request asks for format=yaml; another
// format than json or yaml is a 400.
func yamlFormat(r *http.Request) (bool, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
		return false, nil
	case "yaml":
		return true, nil
	default:
		return false, Problem(http.StatusBadRequest, "Bad Request", fmt.Sprintf("format %q: want json or yaml", f))
	}
}

// exportTargets answers GET /targets?format=yaml.
func (s *Server) exportTargets(w http.ResponseWriter, r *http.Request, p Principal) error {
	q := r.URL.Query()
	if len(q["label"]) > 0 {
		return Problem(http.StatusBadRequest, "Bad Request", "format=yaml exports every API target: applied back, a filtered export would delete the others")
	}
	if src := q.Get("source"); src != "" && src != tenancy.SourceAPI {
		return Problem(http.StatusBadRequest, "Bad Request", "format=yaml exports the API's targets only (source=api); config-file targets are in the config file")
	}
	ts, err := s.targetsOf(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	doc := targetsDocument{Targets: []config.Target{}}
	var fromFile []string
	for _, ti := range ts {
		if ti.Source == tenancy.SourceConfig {
			fromFile = append(fromFile, ti.Target.ID)
			continue
		}
		doc.Targets = append(doc.Targets, tenancy.RedactTarget(ti.Target))
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# upwatch targets of tenant %q managed through the API.\n", p.TenantID)
	buf.WriteString("# Apply with PUT /api/v1/targets?format=yaml: targets left out are deleted;\n")
	buf.WriteString("# \"<secret>\" keeps the stored credential.\n")
	if len(fromFile) > 0 {
		buf.WriteString("# Not included, read-only (declared in the config file): " + strings.Join(fromFile, ", ") + "\n")
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	w.Header().Set("Content-Type", yamlTypes[0])
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
	return nil
}

// applyTargets answers PUT /targets?format=yaml.
func (s *Server) applyTargets(w http.ResponseWriter, r *http.Request, p Principal) error {
	ctx := r.Context()
	isYAML, err := yamlFormat(r)
	if err != nil {
		return err
	}
	if !isYAML {
		return Problem(http.StatusBadRequest, "Bad Request", "PUT /targets applies a YAML document of targets: add ?format=yaml")
	}
	dryRun := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		if dryRun, err = strconv.ParseBool(v); err != nil {
			return Problem(http.StatusBadRequest, "Bad Request", "dry_run must be true or false")
		}
	}
	items, err := readTargetsDocument(r)
	if err != nil {
		return err
	}
	defer s.writes.lock(p.TenantID)()
	plan, err := s.planTargets(ctx, p, items)
	if err != nil {
		return err
	}
	plan.Diff.DryRun = dryRun
	if dryRun || plan.Batch.Empty() {
		writeJSON(w, http.StatusOK, plan.Diff)
		return nil
	}
	if err := s.o.Batch.ApplyTargets(ctx, plan.Batch); err != nil {
		if errors.Is(err, registry.ErrConflict) || errors.Is(err, registry.ErrNotFound) {
			return Problem(http.StatusConflict, "Conflict", "the tenant's targets changed while the document was applied; nothing was applied, try again")
		}
		return err
	}
	s.o.OnChange(p.TenantID)
	writeJSON(w, http.StatusOK, plan.Diff)
	return nil
}

// readTargetsDocument reads the body (YAML media type or 415, at most
// MaxBodyBytes or 413, one YAML document or 400) and returns the items of
// its targets list as generic documents. Keys other than targets are a 422.
func readTargetsDocument(r *http.Request) ([]map[string]any, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || !slices.Contains(yamlTypes, mt) {
		return nil, Problem(http.StatusUnsupportedMediaType, "Unsupported Media Type", "the body must be application/yaml (or text/yaml)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, Problem(http.StatusRequestEntityTooLarge, "Content Too Large", fmt.Sprintf("the body is larger than %d bytes", MaxBodyBytes))
		}
		return nil, Problem(http.StatusBadRequest, "Bad Request", "the body could not be read")
	}
	dec := yaml.NewDecoder(bytes.NewReader(body))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, Problem(http.StatusBadRequest, "Bad Request", "the body is not valid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, Problem(http.StatusBadRequest, "Bad Request", "the body must hold one YAML document")
	}
	if !yamlDepthOK(&root, MaxDepth) {
		return nil, tooDeep()
	}
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		add("targets", "is required: the document is a mapping with a targets list (targets: [] deletes every API target)")
		return nil, ValidationProblem(errs)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		switch {
		case k.Value != "targets":
			add(k.Value, "only targets are applied here; change the rest in the config file")
		case list != nil:
			add("targets", "is given twice")
		default:
			list = v
		}
	}
	switch {
	case list == nil:
		add("targets", "is required (targets: [] deletes every API target)")
	case list.Kind == yaml.ScalarNode && list.Tag == "!!null":
		list = &yaml.Node{Kind: yaml.SequenceNode}
	case list.Kind != yaml.SequenceNode:
		add("targets", "must be a list of targets")
	}
	if len(errs) > 0 {
		return nil, ValidationProblem(errs)
	}
	items := make([]map[string]any, len(list.Content))
	for i, n := range list.Content {
		var m map[string]any
		if n.Kind != yaml.MappingNode {
			add(fmt.Sprintf("targets[%d]", i), "must be a mapping of target fields")
			continue
		}
		if err := n.Decode(&m); err != nil {
			add(fmt.Sprintf("targets[%d]", i), "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			continue
		}
		items[i], _ = tenancy.StringKeys(m).(map[string]any)
	}
	if len(errs) > 0 {
		return nil, ValidationProblem(errs)
	}
	return items, nil
}

// planTargets decodes every item (unknown fields are a 400, bad values a
// 422, each path under targets[i]) and plans the document against the
// tenant's targets (tenancy.Plan).
func (s *Server) planTargets(ctx context.Context, p Principal, docs []map[string]any) (tenancy.TargetsPlan, error) {
	current, err := s.targetsOf(ctx, p.TenantID)
	if err != nil {
		return tenancy.TargetsPlan{}, err
	}
	var unknown []FieldIssue
	var bad []invalid.Field
	items := make([]*config.Target, len(docs))
	for i, doc := range docs {
		prefix := fmt.Sprintf("targets[%d]", i)
		t, err := targetFromDocument(doc)
		if err != nil {
			var pe *ProblemError
			if !errors.As(err, &pe) {
				return tenancy.TargetsPlan{}, err
			}
			for _, fi := range pe.Errors {
				path := tenancy.JoinPath(prefix, fi.Path)
				if pe.Status == http.StatusBadRequest {
					unknown = append(unknown, FieldIssue{Path: path, Message: fi.Message})
				} else {
					bad = append(bad, invalid.Field{Path: path, Msg: fi.Message})
				}
			}
			if len(pe.Errors) == 0 {
				bad = append(bad, invalid.Field{Path: prefix, Msg: pe.Detail})
			}
			continue
		}
		t.Normalize()
		items[i] = &t
	}
	if len(unknown) > 0 {
		names := make([]string, len(unknown))
		for i, u := range unknown {
			names[i] = u.Path
		}
		pe := Problem(http.StatusBadRequest, "Bad Request", "unknown field(s): "+strings.Join(names, ", ")).(*ProblemError)
		pe.Errors = unknown
		return tenancy.TargetsPlan{}, pe
	}
	plan, err := tenancy.Plan(tenancy.PlanInput{
		TenantID: p.TenantID, KeyID: p.KeyID, Items: items, Undecodable: bad, Current: current, Config: s.o.Config(),
		Validate:  func(t *config.Target) []invalid.Field { return s.validateTarget(ctx, p.TenantID, t) },
		MasterKey: s.o.MasterKey, Now: s.o.Now(),
	})
	var invalid *tenancy.InvalidError
	var over *tenancy.QuotaError
	var fromFile *tenancy.FileTargetError
	switch {
	case errors.As(err, &invalid):
		return plan, ValidationProblem(invalid.Errors)
	case errors.As(err, &over):
		return plan, quotaProblem(over.Violations)
	case errors.As(err, &fromFile):
		return plan, Problem(http.StatusConflict, "Conflict", fromFile.Error())
	}
	return plan, err
}
