package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/registry"
)

// IncidentAcker records acknowledgements of open incidents
// (registry.Registry does). Without one POST /incidents/{id}/ack answers
// 503.
type IncidentAcker interface {
	// Incident returns one incident; registry.ErrNotFound if none.
	Incident(ctx context.Context, id string) (alerting.Incident, error)
	// AckIncident records the acknowledgement (the first one stands) and
	// returns the incident; registry.ErrIncidentEnded once it is over.
	AckIncident(ctx context.Context, id, by string, at time.Time) (alerting.Incident, error)
}

// ackIncident acknowledges one of the tenant's open incidents: no more
// reminders or escalations, the UP message still goes out. The caller's
// key (a web user's "user:<name>") is recorded as who; acknowledging again
// returns the first acknowledgement unchanged.
func (s *Server) ackIncident(w http.ResponseWriter, r *http.Request, p Principal) error {
	if s.o.Acks == nil {
		return unavailable("the incident store")
	}
	ctx := r.Context()
	id := mux.Vars(r)["id"]
	inc, err := s.o.Acks.Incident(ctx, id)
	if errors.Is(err, registry.ErrNotFound) {
		return notFound("incident", id)
	}
	if err != nil {
		return fmt.Errorf("incident: %w", err)
	}
	targets, err := s.targetsOf(ctx, p.TenantID)
	if err != nil {
		return err
	}
	targetID := ""
	for _, t := range targets {
		if t.Key == inc.TargetID {
			targetID = t.Target.ID
		}
	}
	if targetID == "" { // another tenant's: as if it did not exist
		return notFound("incident", id)
	}
	inc, err = s.o.Acks.AckIncident(ctx, id, p.KeyID, s.o.Now())
	switch {
	case errors.Is(err, registry.ErrIncidentEnded):
		return Problem(http.StatusConflict, "Conflict", fmt.Sprintf("incident %q has ended: there is nothing to acknowledge", id))
	case err != nil:
		return fmt.Errorf("acknowledging the incident: %w", err)
	}
	inc.TargetID = targetID
	writeJSON(w, http.StatusOK, newIncidentDoc(inc, s.o.Now()))
	return nil
}
