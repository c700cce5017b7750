package api

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"sync"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/quota"
	"github.com/upwatch/upwatch/tenancy"
)

// Quota problems are 422s, like other requests that cannot be applied as
// they are, not 429s: waiting does not help (only deleting, pausing or
// slowing targets does), and clients retry 429s on their own.

// quotaProblem is the 422 for quota violations: the first one in the limit
// members (min_interval ones come first), each min_interval one in errors
// with its path, every broken limit in the detail.
func quotaProblem(vs []quota.Violation) error {
	first := vs[0]
	var msgs []string
	var issues []FieldIssue
	for _, v := range vs {
		if v.Path != "" {
			issues = append(issues, FieldIssue{Path: v.Path, Message: v.Msg})
		} else {
			msgs = append(msgs, v.Msg)
		}
	}
	if len(issues) > 0 {
		msgs = append([]string{fmt.Sprintf("%d interval(s) under the tenant's min_interval of %s", len(issues), first.Value)}, msgs...)
	}
	p := Problem(http.StatusUnprocessableEntity, "Quota Exceeded", strings.Join(msgs, "; ")).(*ProblemError)
	p.Type = ProblemType + "quota"
	p.Errors = issues
	p.Limit, p.LimitValue, p.Usage, p.Requested = first.Limit, first.Value, first.Usage, first.Requested
	return p
}

// apiTargetsOf is the tenant's API targets, which quotas count.
func (s *Server) apiTargetsOf(ctx context.Context, tenant string) ([]prober.Target, error) {
	ts, err := s.targetsOf(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var out []prober.Target
	for _, ti := range ts {
		if ti.Source == tenancy.SourceAPI {
			out = append(out, ti.Target.Target)
		}
	}
	return out, nil
}

// tenantWrites serialises, within this server, the writes of one tenant's
// targets from the quota check to the store's write: concurrent creates
// could otherwise each pass the check and together overshoot the limit by
// as many as were sent at once. Tenants hash onto a fixed set of locks,
// so the set never grows. Servers sharing a registry (replicated) may
// still overshoot by one write per server.
type tenantWrites [64]sync.Mutex

// lock takes tenant's lock and returns its unlock.
func (w *tenantWrites) lock(tenant string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	m := &w[h.Sum32()%uint32(len(w))]
	m.Lock()
	return m.Unlock
}

// withinQuota checks writing t through the API (replacing the tenant's
// target with its id, if there is one) against the tenant's quotas. The
// caller holds s.writes' lock of tenant until the write is stored.
func (s *Server) withinQuota(ctx context.Context, tenant string, t prober.Target) error {
	lim := s.o.Config().Quotas.For(tenant)
	before, err := s.apiTargetsOf(ctx, tenant)
	if err != nil {
		return err
	}
	after := []prober.Target{t}
	var cur *prober.Target
	for i, x := range before {
		if x.ID == t.ID {
			cur = &before[i]
		} else {
			after = append(after, x)
		}
	}
	var vs []quota.Violation
	if v := lim.Interval("interval", cur, t); v != nil {
		vs = append(vs, *v)
	}
	vs = append(vs, lim.Usage(quota.UsageOf(before), quota.UsageOf(after))...)
	if len(vs) > 0 {
		return quotaProblem(vs)
	}
	return nil
}
