package prober

import "context"

// PLACEHOLDER: replaced by the real http check.
func probeHTTP(ctx context.Context, p *Prober, t *Target) Result {
	return Result{}.Fail(ClassInternal, "http checks not implemented yet")
}
