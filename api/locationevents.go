package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/upwatch/upwatch/registry"
)

// locationEventDoc is one event about a probe location.
type locationEventDoc struct {
	Kind     string    `json:"kind"`
	Location string    `json:"location"`
	At       time.Time `json:"at"`
	Detail   string    `json:"detail"`
}

// getLocationEvents lists the alert engine's events about probe locations
// (unavailable, available, suspect, trusted), newest first. Locations are
// the server's, not a tenant's: only the operator's admin keys see them.
func (s *Server) getLocationEvents(w http.ResponseWriter, r *http.Request, p Principal) error {
	if p.TenantID != registry.DefaultTenant {
		return Problem(http.StatusForbidden, "Forbidden", "only admin keys of tenant \"default\" see the probe locations' events")
	}
	if s.o.LocationEvents == nil {
		return unavailable("the location event log")
	}
	evs, err := s.o.LocationEvents.LocationEvents(r.Context(), registry.MaxLimit)
	if err != nil {
		return err
	}
	out := make([]locationEventDoc, len(evs))
	for i, ev := range evs {
		out[i] = locationEventDoc{Kind: ev.Kind, Location: ev.Location, At: ev.At.UTC(), Detail: ev.Detail}
	}
	// The newest MaxLimit events, paged in that order; the list envelope
	// like every other list.
	page, err := pageInOrder(r, out, func(e locationEventDoc) string {
		return strconv.FormatInt(e.At.UnixNano(), 10) + "/" + e.Kind + "/" + e.Location
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}
