package prober

import "context"

// PLACEHOLDER: replaced by the real tls check.
func probeTLS(ctx context.Context, p *Prober, t *Target) Result {
	return Result{}.Fail(ClassInternal, "tls checks not implemented yet")
}
