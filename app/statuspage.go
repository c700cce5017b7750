package app

import (
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
