package prober

import "context"

// PLACEHOLDER: replaced by the real tcp check.
func probeTCP(ctx context.Context, p *Prober, t *Target) Result {
	return Result{}.Fail(ClassInternal, "tcp checks not implemented yet")
}
