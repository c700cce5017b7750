package prober

import "context"

// PLACEHOLDER: replaced by the real dns check.
func probeDNS(ctx context.Context, p *Prober, t *Target) Result {
	return Result{}.Fail(ClassInternal, "dns checks not implemented yet")
}
