package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/sla/slainput"
	"github.com/upwatch/upwatch/tenancy"
)

// SLA figures are computed by package slainput (the stores' reads) and
// package sla (the arithmetic); this file turns a request into their query
// and their errors into problems.

// unavailable is the 503 for a store the server was built without.
func unavailable(what string) error {
	return Problem(http.StatusServiceUnavailable, "Service Unavailable", what+" is not configured on this server")
}

// slaTargets computes the SLA of each target over q, with the tenant's
// maintenance windows.
func (s *Server) slaTargets(ctx context.Context, tenantID string, targets []tenancy.TargetInfo, q slaQuery) ([]slainput.Result, error) {
	windows, err := s.maintenanceWindows(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if s.o.Incidents == nil && len(targets) > 0 {
		return nil, unavailable("the incident store")
	}
	in := slainput.Query{From: q.From, To: q.To, ExcludeMaintenance: q.ExcludeMaintenance, Accounting: q.Accounting, SLO: q.SLO, Windows: windows}
	out, err := s.sla.Targets(ctx, targets, in)
	var long *slainput.WindowTooLongError
	if errors.As(err, &long) {
		return nil, Problem(http.StatusUnprocessableEntity, "Window Too Long", long.Error())
	}
	return out, err
}

// maintenanceWindows returns the tenant's maintenance windows, validated:
// the config file's (tenant "default") and the API's.
func (s *Server) maintenanceWindows(ctx context.Context, tenantID string) ([]alerting.Window, error) {
	var out []alerting.Window
	if tenantID == registry.DefaultTenant {
		for _, w := range s.o.Config().Maintenance {
			if len(w.Validate("maintenance")) == 0 {
				out = append(out, w)
			}
		}
	}
	objs, err := s.o.Objects.Objects(ctx, registry.MaintenanceWindows, tenantID)
	if err != nil {
		return nil, fmt.Errorf("maintenance windows: %w", err)
	}
	for _, o := range objs {
		var doc map[string]any
		if err := json.Unmarshal(o.Spec, &doc); err != nil {
			return nil, fmt.Errorf("maintenance window %s: stored spec: %w", o.ID, err)
		}
		delete(doc, "id")
		for _, f := range tenancy.ReadOnlyFields {
			delete(doc, f)
		}
		var w alerting.Window
		if err := fromDocument(doc, &w); err != nil {
			return nil, fmt.Errorf("maintenance window %s: stored spec does not decode: %w", o.ID, err)
		}
		if errs := w.Validate("maintenance"); len(errs) > 0 {
			return nil, fmt.Errorf("maintenance window %s: stored spec is invalid: %w", o.ID, errors.Join(errs...))
		}
		out = append(out, w)
	}
	return out, nil
}
