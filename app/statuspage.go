package app

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/statuspage"
	"github.com/upwatch/upwatch/tsdb"
)

// newStatusPages builds the public status pages and badges over the same
// stores and rules as the API: its targets, maintenance windows and SLA
// code.
func newStatusPages(srv *api.Server, reg registryStore, samples tsdb.Reader, engine *alerting.Engine,
	now func() time.Time, log *slog.Logger) (*statuspage.Handler, error) {
	return statuspage.New(statuspage.Options{
		Store: reg, Targets: srv.TargetsOf, Windows: srv.MaintenanceWindows,
		Samples: samples, Incidents: reg, States: engine.State,
		Now: now, Logger: log.With("component", "statuspage"),
	})
}

// warmStatusPages computes every tenant's status pages once, in the
// background after a start, so the 90 days of sums a page reads (the
// costly part of its first render) are kept before its first visitor
// comes. Failures are only logged: the visitor's render reads them.
func warmStatusPages(ctx context.Context, pages *statuspage.Handler, reg registryStore, log *slog.Logger) {
	if pages == nil {
		return
	}
	tenants, err := reg.Tenants(ctx)
	if err != nil {
		log.Warn("warming status pages: listing tenants", "err", err)
		return
	}
	for _, t := range tenants {
		ps, err := reg.StatusPages(ctx, t.ID)
		if err != nil {
			log.Warn("warming status pages", "tenant", t.ID, "err", err)
			continue
		}
		for _, p := range ps {
			if ctx.Err() != nil {
				return
			}
			if err := pages.Warm(ctx, p); err != nil {
				log.Warn("warming a status page", "tenant", t.ID, "page", p.ID, "err", err)
			}
		}
	}
}

// mountPublic serves /status/ and /badge/ with pages, a page's custom
// domain (GET / and /feed.atom on its host) when the operator allows them,
// and everything else with rest.
func mountPublic(rest http.Handler, pages *statuspage.Handler, customDomains bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/status/", pages)
	mux.Handle("/badge/", pages)
	mux.Handle("/", rest)
	if !customDomains {
		return mux
	}
	return pages.Domains(mux)
}
