package api

import (
	"net/http"

	"github.com/gorilla/mux"
)

// registerDataRoutes adds history, SLA, export, report-key and report
// routes (api/openapi/data.yaml describes them).
func (s *Server) registerDataRoutes(r *mux.Router) {
	// History.
	s.route(r, http.MethodGet, "/targets/{id}/samples", ScopeRead, s.getSamples)
	s.route(r, http.MethodGet, "/targets/{id}/samples/{time}/evidence", ScopeRead, s.getEvidence)
	s.route(r, http.MethodGet, "/targets/{id}/latest", ScopeRead, s.getLatest)
	s.route(r, http.MethodGet, "/targets/{id}/incidents", ScopeRead, s.getTargetIncidents)
	s.route(r, http.MethodGet, "/incidents", ScopeRead, s.getIncidents)
	s.route(r, http.MethodPost, "/incidents/{id}/ack", ScopeWrite, s.ackIncident)
	s.route(r, http.MethodGet, "/location-events", ScopeAdmin, s.getLocationEvents)
	// SLA.
	s.route(r, http.MethodGet, "/targets/{id}/sla", ScopeRead, s.getTargetSLA)
	s.route(r, http.MethodGet, "/sla", ScopeRead, s.getSelectorSLA)
	// Raw export.
	s.route(r, http.MethodGet, "/targets/{id}/export", ScopeRead, s.getExport)
	// Report keys and encrypted reports.
	s.route(r, http.MethodPost, "/report-keys", ScopeAdmin, s.createReportKey)
	s.route(r, http.MethodGet, "/report-keys", ScopeAdmin, s.listReportKeys)
	s.route(r, http.MethodPost, "/report-keys/rotate", ScopeAdmin, s.rotateReportKey)
	s.route(r, http.MethodGet, "/reports/sla", ScopeReports, s.getSLAReport)
}
