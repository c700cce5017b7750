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
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/quota"
	"github.com/upwatch/upwatch/store"
	"github.com/upwatch/upwatch/tenancy"
)

// YAML media types accepted for a targets document; the export is the first.
var yamlTypes = []string{"application/yaml", "text/yaml", "application/x-yaml"}

// targetsDocument is the config file's shape, reduced to its targets.
type targetsDocument struct {
	Targets []config.Target `yaml:"targets"`
}

// TargetsDiff is the answer of PUT /targets?format=yaml.
type TargetsDiff struct {
	DryRun    bool           `json:"dry_run"`
	Create    []string       `json:"create"`
	Update    []TargetChange `json:"update"`
	Delete    []string       `json:"delete"`
	Unchanged int            `json:"unchanged"`
}

// TargetChange names the fields of a target that a document changes (never
// their values).
type TargetChange struct {
	ID     string   `json:"id"`
	Fields []string `json:"fields"`
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
	plan, err := s.planTargets(ctx, p, items)
	if err != nil {
		return err
	}
	plan.diff.DryRun = dryRun
	if dryRun || plan.batch.Empty() {
		writeJSON(w, http.StatusOK, plan.diff)
		return nil
	}
	if err := s.o.Batch.ApplyTargets(ctx, plan.batch); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			return Problem(http.StatusConflict, "Conflict", "the tenant's targets changed while the document was applied; nothing was applied, try again")
		}
		return err
	}
	s.o.OnChange(p.TenantID)
	writeJSON(w, http.StatusOK, plan.diff)
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
	var errs []prober.FieldError
	add := func(path, format string, args ...any) {
		errs = append(errs, prober.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
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

// targetsPlan is what a document changes, and the batch that does it.
type targetsPlan struct {
	diff  TargetsDiff
	batch store.TargetBatch
}

// planTargets decodes and validates every item, then compares the result
// with the tenant's API targets.
func (s *Server) planTargets(ctx context.Context, p Principal, items []map[string]any) (targetsPlan, error) {
	plan := targetsPlan{
		diff:  TargetsDiff{Create: []string{}, Update: []TargetChange{}, Delete: []string{}},
		batch: store.TargetBatch{TenantID: p.TenantID},
	}
	current, err := s.targetsOf(ctx, p.TenantID)
	if err != nil {
		return plan, err
	}
	mine := map[string]tenancy.TargetInfo{}
	for _, ti := range current {
		if ti.Source == tenancy.SourceAPI {
			mine[ti.Target.ID] = ti
		}
	}
	fromFile := map[string]bool{}
	for _, t := range s.o.Config().Targets {
		fromFile[t.ID] = true
	}

	// Decode: unknown fields are a 400, bad values a 422, each path under
	// targets[i].
	var unknown []FieldIssue
	var errs []prober.FieldError
	ts := make([]config.Target, len(items))
	decoded := make([]bool, len(items))
	for i, doc := range items {
		prefix := fmt.Sprintf("targets[%d]", i)
		t, err := targetFromDocument(doc)
		if err != nil {
			var pe *ProblemError
			if !errors.As(err, &pe) {
				return plan, err
			}
			for _, fi := range pe.Errors {
				path := joinPath(prefix, fi.Path)
				if pe.Status == http.StatusBadRequest {
					unknown = append(unknown, FieldIssue{Path: path, Message: fi.Message})
				} else {
					errs = append(errs, prober.FieldError{Path: path, Msg: fi.Message})
				}
			}
			if len(pe.Errors) == 0 {
				errs = append(errs, prober.FieldError{Path: prefix, Msg: pe.Detail})
			}
			continue
		}
		t.Normalize()
		if cur, ok := mine[t.ID]; ok {
			tenancy.KeepSecrets(&t, cur.Target)
		}
		ts[i], decoded[i] = t, true
	}
	if len(unknown) > 0 {
		names := make([]string, len(unknown))
		for i, u := range unknown {
			names[i] = u.Path
		}
		pe := Problem(http.StatusBadRequest, "Bad Request", "unknown field(s): "+strings.Join(names, ", ")).(*ProblemError)
		pe.Errors = unknown
		return plan, pe
	}

	// Validate: the API's rules for each target (dependencies apart), ids
	// unique in the document, dependencies within what the tenant will have;
	// items that did not decode are left out (their errors are in errs).
	will := map[string]bool{}
	for i, t := range ts {
		if decoded[i] {
			will[t.ID] = true
		}
	}
	if p.TenantID == store.DefaultTenant {
		for id := range fromFile {
			will[id] = true
		}
	}
	// The dependency graph the tenant will have: the document's targets and
	// (for the default tenant) the config file's.
	graph := map[string][]string{}
	if p.TenantID == store.DefaultTenant {
		for _, t := range s.o.Config().Targets {
			graph[t.ID] = t.DependsOn
		}
	}
	for i, t := range ts {
		if decoded[i] {
			graph[t.ID] = t.DependsOn
		}
	}
	seen := map[string]int{}
	for i := range ts {
		if !decoded[i] {
			continue
		}
		prefix := fmt.Sprintf("targets[%d]", i)
		t := ts[i]
		deps := t.DependsOn
		t.DependsOn = nil
		for _, e := range s.validateTarget(ctx, p.TenantID, &t) {
			errs = append(errs, prober.FieldError{Path: joinPath(prefix, e.Path), Msg: e.Msg})
		}
		if j, dup := seen[t.ID]; dup {
			errs = append(errs, prober.FieldError{Path: prefix + ".id", Msg: fmt.Sprintf("%q is already used by targets[%d] (give one of them a distinct id or name)", t.ID, j)})
		} else {
			seen[t.ID] = i
		}
		for j, d := range deps {
			path := fmt.Sprintf("%s.depends_on[%d]", prefix, j)
			switch {
			case d == t.ID:
				errs = append(errs, prober.FieldError{Path: path, Msg: "a target cannot depend on itself"})
			case !will[d]:
				errs = append(errs, prober.FieldError{Path: path, Msg: fmt.Sprintf("unknown target id %q (not in the document nor the config file)", d)})
			}
		}
		if cyc := config.DependencyCycle(t.ID, func(id string) []string { return graph[id] }); cyc != nil {
			errs = append(errs, prober.FieldError{Path: prefix + ".depends_on", Msg: "cycle " + strings.Join(cyc, " → ")})
		}
	}
	if len(errs) > 0 {
		return plan, ValidationProblem(errs)
	}

	// Quotas: over the tenant's API targets as the document leaves them.
	lim := s.o.Config().Quotas.For(p.TenantID)
	var before, after []prober.Target
	for _, ti := range mine {
		before = append(before, ti.Target.Target)
	}
	var vs []quota.Violation
	for i, t := range ts {
		var cur *prober.Target
		if c, ok := mine[t.ID]; ok {
			cur = &c.Target.Target
		}
		if v := lim.Interval(fmt.Sprintf("targets[%d].interval", i), cur, t.Target); v != nil {
			vs = append(vs, *v)
		}
		after = append(after, t.Target)
	}
	if vs = append(vs, lim.Usage(quota.UsageOf(before), quota.UsageOf(after))...); len(vs) > 0 {
		return plan, quotaProblem(vs)
	}

	// Conflicts: the config file's ids (tenant default's). Other tenants'
	// ids are theirs: nothing here may tell they exist.
	for _, t := range ts {
		if fromFile[t.ID] {
			return plan, Problem(http.StatusConflict, "Conflict", fmt.Sprintf("target %q is declared in the config file; leave it out of the document and change it there", t.ID))
		}
	}

	// Diff and batch.
	now := s.o.Now()
	audit := func(action, id string) {
		plan.batch.Audit = append(plan.batch.Audit, store.AuditEntry{
			TenantID: p.TenantID, KeyID: p.KeyID, Action: action, ObjectType: "target", ObjectID: id, At: now,
		})
	}
	for _, t := range ts {
		cur, exists := mine[t.ID]
		if exists {
			fields, err := tenancy.ChangedFields(cur.Target, t)
			if err != nil {
				return plan, err
			}
			if len(fields) == 0 {
				plan.diff.Unchanged++
				continue
			}
			plan.diff.Update = append(plan.diff.Update, TargetChange{ID: t.ID, Fields: fields})
		} else {
			plan.diff.Create = append(plan.diff.Create, t.ID)
		}
		rec, err := tenancy.SealTarget(p.TenantID, t, s.o.MasterKey)
		if err != nil {
			return plan, err
		}
		rec.CreatedAt, rec.UpdatedAt = now, now
		if exists {
			rec.CreatedAt = cur.CreatedAt
			plan.batch.Update = append(plan.batch.Update, rec)
			audit("update", t.ID)
		} else {
			plan.batch.Create = append(plan.batch.Create, rec)
			audit("create", t.ID)
		}
	}
	for id := range mine {
		if !will[id] {
			plan.diff.Delete = append(plan.diff.Delete, id)
		}
	}
	sort.Strings(plan.diff.Delete)
	for _, id := range plan.diff.Delete {
		plan.batch.Delete = append(plan.batch.Delete, id)
		audit("delete", id)
	}
	return plan, nil
}

// joinPath puts a target-relative path under prefix.
func joinPath(prefix, path string) string {
	if path == "" {
		return prefix
	}
	return prefix + "." + path
}
