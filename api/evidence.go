package api

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/tsdb"
)

// evidenceDoc answers GET /targets/{id}/samples/{time}/evidence: what the
// target said in the checks that started at that time (one per location
// that kept some).
type evidenceDoc struct {
	TargetID string         `json:"target_id"`
	Time     time.Time      `json:"time"`
	Evidence []evidenceItem `json:"evidence"`
}

type evidenceItem struct {
	Location string `json:"location"`
	prober.Evidence
}

func (s *Server) getEvidence(w http.ResponseWriter, r *http.Request, p Principal) error {
	vars := mux.Vars(r)
	ti, err := s.targetOf(r.Context(), p.TenantID, vars["id"])
	if err != nil {
		return err
	}
	var iss queryIssues
	at, _ := iss.time(url.Values{"time": {vars["time"]}}, "time")
	v := r.URL.Query()
	location := v.Get("location")
	if err := iss.problem(); err != nil {
		return err
	}
	er, ok := s.o.Samples.(tsdb.EvidenceReader)
	if s.o.Samples == nil || !ok {
		return unavailable("a sample store keeping evidence")
	}
	recs, err := er.Evidence(r.Context(), ti.Key, at, at.Add(time.Nanosecond), 0)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	doc := evidenceDoc{TargetID: ti.Target.ID, Time: at.UTC(), Evidence: []evidenceItem{}}
	for _, rec := range recs {
		if location == "" || rec.Location == location {
			doc.Evidence = append(doc.Evidence, evidenceItem{Location: rec.Location, Evidence: rec.Evidence})
		}
	}
	if len(doc.Evidence) == 0 {
		return Problem(http.StatusNotFound, "Not Found",
			fmt.Sprintf("target %q kept no evidence of a check at %s (its capture mode decides which checks keep it)", ti.Target.ID, at.UTC().Format(time.RFC3339Nano)))
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

// evidenceLink is where the evidence of the target's check at start is
// read, when the sample store keeps evidence; "" otherwise.
func (s *Server) evidenceLink(targetID string, start time.Time) string {
	if _, ok := s.o.Samples.(tsdb.EvidenceReader); !ok {
		return ""
	}
	return Prefix + "/targets/" + url.PathEscape(targetID) + "/samples/" + start.UTC().Format(time.RFC3339Nano) + "/evidence"
}
