package tenancy

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/crypt"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/quota"
	"github.com/upwatch/upwatch/registry"
)

// Config as code: a document of targets makes a tenant's API targets
// exactly what it says. Plan validates it whole (every error with its
// path, targets[3].interval), holds the tenant's quotas over the targets as
// the document leaves them, refuses the config file's ids, and returns the
// diff and the one batch (targets and audit entries) that applies it.

// TargetsDiff is what a document changes.
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

// TargetsPlan is what a document changes, and the batch that does it.
type TargetsPlan struct {
	Diff  TargetsDiff
	Batch registry.TargetBatch
}

// PlanInput is a decoded document of targets and what it is planned
// against.
type PlanInput struct {
	TenantID, KeyID string // the tenant and the API key (for the audit)
	// Items are the document's targets, normalized; nil where an item did
	// not decode, so paths keep their index. Undecodable lists those
	// items' errors (paths under targets[i]); they come first in the
	// InvalidError.
	Items       []*config.Target
	Undecodable []invalid.Field
	// Current is every target of the tenant, the config file's included.
	Current []TargetInfo
	Config  *config.Config
	// Validate checks one target by the API's rules, dependencies apart
	// (Plan checks those against the document).
	Validate  func(t *config.Target) []invalid.Field
	MasterKey crypt.MasterKey
	Now       time.Time
}

// InvalidError lists every field of a document that does not validate.
type InvalidError struct{ Errors []invalid.Field }

func (e *InvalidError) Error() string { return fmt.Sprintf("%d invalid field(s)", len(e.Errors)) }

// QuotaError: the document would break the tenant's quotas.
type QuotaError struct{ Violations []quota.Violation }

func (e *QuotaError) Error() string { return "quota exceeded: " + e.Violations[0].Msg }

// FileTargetError: the document names a target of the config file.
type FileTargetError struct{ ID string }

func (e *FileTargetError) Error() string {
	return fmt.Sprintf("target %q is declared in the config file; leave it out of the document and change it there", e.ID)
}

// Plan plans a document of targets; its errors are *InvalidError,
// *QuotaError and *FileTargetError, in that order of precedence, or a
// failure to seal.
func Plan(in PlanInput) (TargetsPlan, error) {
	plan := TargetsPlan{
		Diff:  TargetsDiff{Create: []string{}, Update: []TargetChange{}, Delete: []string{}},
		Batch: registry.TargetBatch{TenantID: in.TenantID},
	}
	mine := map[string]TargetInfo{}
	for _, ti := range in.Current {
		if ti.Source == SourceAPI {
			mine[ti.Target.ID] = ti
		}
	}
	fromFile := map[string]bool{}
	for _, t := range in.Config.Targets {
		fromFile[t.ID] = true
	}
	ts := make([]config.Target, len(in.Items))
	for i, t := range in.Items {
		if t == nil {
			continue
		}
		ts[i] = *t
		if cur, ok := mine[t.ID]; ok {
			KeepSecrets(&ts[i], cur.Target)
		}
	}
	will := in.validate(ts, fromFile)
	if errs := append(in.Undecodable, will.errs...); len(errs) > 0 {
		return plan, &InvalidError{Errors: errs}
	}

	// Quotas: over the tenant's API targets as the document leaves them.
	lim := in.Config.Quotas.For(in.TenantID)
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
		return plan, &QuotaError{Violations: vs}
	}

	// Conflicts: the config file's ids (tenant default's). Other tenants'
	// ids are theirs: nothing here may tell they exist.
	for _, t := range ts {
		if fromFile[t.ID] {
			return plan, &FileTargetError{ID: t.ID}
		}
	}

	// Diff and batch.
	audit := func(action, id string) {
		plan.Batch.Audit = append(plan.Batch.Audit, registry.AuditEntry{
			TenantID: in.TenantID, KeyID: in.KeyID, Action: action, ObjectType: "target", ObjectID: id, At: in.Now,
		})
	}
	for _, t := range ts {
		cur, exists := mine[t.ID]
		if exists {
			fields, err := ChangedFields(cur.Target, t)
			if err != nil {
				return plan, err
			}
			if len(fields) == 0 {
				plan.Diff.Unchanged++
				continue
			}
			plan.Diff.Update = append(plan.Diff.Update, TargetChange{ID: t.ID, Fields: fields})
		} else {
			plan.Diff.Create = append(plan.Diff.Create, t.ID)
		}
		rec, err := SealTarget(in.TenantID, t, in.MasterKey)
		if err != nil {
			return plan, err
		}
		rec.CreatedAt, rec.UpdatedAt = in.Now, in.Now
		if exists {
			rec.CreatedAt = cur.CreatedAt
			plan.Batch.Update = append(plan.Batch.Update, rec)
			audit("update", t.ID)
		} else {
			plan.Batch.Create = append(plan.Batch.Create, rec)
			audit("create", t.ID)
		}
	}
	for id := range mine {
		if !will.ids[id] {
			plan.Diff.Delete = append(plan.Diff.Delete, id)
		}
	}
	sort.Strings(plan.Diff.Delete)
	for _, id := range plan.Diff.Delete {
		plan.Batch.Delete = append(plan.Batch.Delete, id)
		audit("delete", id)
	}
	return plan, nil
}

// validated is the ids the tenant will have and the document's errors.
type validated struct {
	ids  map[string]bool
	errs []invalid.Field
}

// validate checks the decoded items: the API's rules for each target
// (dependencies apart), ids unique in the document, dependencies within
// what the tenant will have (the document's targets and, for tenant
// default, the config file's), no cycles.
func (in PlanInput) validate(ts []config.Target, fromFile map[string]bool) validated {
	v := validated{ids: map[string]bool{}}
	graph := map[string][]string{}
	if in.TenantID == registry.DefaultTenant {
		for id := range fromFile {
			v.ids[id] = true
		}
		for _, t := range in.Config.Targets {
			graph[t.ID] = t.DependsOn
		}
	}
	for i, t := range ts {
		if in.Items[i] != nil {
			v.ids[t.ID] = true
			graph[t.ID] = t.DependsOn
		}
	}
	seen := map[string]int{}
	for i := range ts {
		if in.Items[i] == nil {
			continue
		}
		prefix := fmt.Sprintf("targets[%d]", i)
		t := ts[i]
		deps := t.DependsOn
		t.DependsOn = nil
		for _, e := range in.Validate(&t) {
			v.errs = append(v.errs, invalid.Field{Path: JoinPath(prefix, e.Path), Msg: e.Msg})
		}
		if j, dup := seen[t.ID]; dup {
			v.errs = append(v.errs, invalid.Field{Path: prefix + ".id", Msg: fmt.Sprintf("%q is already used by targets[%d] (give one of them a distinct id or name)", t.ID, j)})
		} else {
			seen[t.ID] = i
		}
		for j, d := range deps {
			path := fmt.Sprintf("%s.depends_on[%d]", prefix, j)
			switch {
			case d == t.ID:
				v.errs = append(v.errs, invalid.Field{Path: path, Msg: "a target cannot depend on itself"})
			case !v.ids[d]:
				v.errs = append(v.errs, invalid.Field{Path: path, Msg: fmt.Sprintf("unknown target id %q (not in the document nor the config file)", d)})
			}
		}
		if cyc := config.DependencyCycle(t.ID, func(id string) []string { return graph[id] }); cyc != nil {
			v.errs = append(v.errs, invalid.Field{Path: prefix + ".depends_on", Msg: "cycle " + strings.Join(cyc, " → ")})
		}
	}
	return v
}

// JoinPath puts a target-relative path under prefix.
func JoinPath(prefix, path string) string {
	if path == "" {
		return prefix
	}
	return prefix + "." + path
}

// ChangedFields lists the paths (dotted, "http.url", "labels.env") where b
// differs from a, credentials compared by value but never shown.
func ChangedFields(a, b config.Target) ([]string, error) {
	da, err := ToDocument(a)
	if err != nil {
		return nil, err
	}
	db, err := ToDocument(b)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	diffDocs("", da, db, set)
	_, sa := splitSecrets(a)
	_, sb := splitSecrets(b)
	for _, f := range (&prober.Auth{}).SecretFields() {
		if sa.Auth[f.Name] != sb.Auth[f.Name] {
			set["http.auth."+f.Name] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out, nil
}

// diffDocs adds to set the path of every value that differs between a and
// b, descending into maps (lists are compared whole).
func diffDocs(prefix string, a, b map[string]any, set map[string]bool) {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		ma, aMap := a[k].(map[string]any)
		mb, bMap := b[k].(map[string]any)
		switch {
		case aMap && bMap:
			diffDocs(path, ma, mb, set)
		case !reflect.DeepEqual(a[k], b[k]):
			set[path] = true
		}
	}
}
