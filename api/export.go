package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/upwatch/upwatch/tsdb"
)

// exportPageSize is how many samples the export reads from the store at a
// time; each page is flushed to the client before the next is read.
const exportPageSize = 5000

// getExport streams a target's raw samples in [from, to) as CSV or
// NDJSON. Errors before the first byte are problems; a store error
// midway aborts the response, so the client sees a truncated transfer
// rather than a body that looks complete.
func (s *Server) getExport(w http.ResponseWriter, r *http.Request, p Principal) error {
	ti, err := s.targetOf(r.Context(), p.TenantID, mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	v := r.URL.Query()
	var iss queryIssues
	format := iss.oneOf(v, "format", "csv", "csv", "ndjson")
	from, to := historyRange(&iss, v, s.o.Now())
	if err := iss.problem(); err != nil {
		return err
	}
	if s.o.Samples == nil {
		return unavailable("the sample store")
	}
	q := tsdb.SampleQuery{TargetID: ti.Key, From: from, To: to, Limit: exportPageSize}
	// Read the first page before answering, so a store error is still a
	// proper problem.
	page, err := s.o.Samples.Samples(r.Context(), q)
	if err != nil {
		return sampleError(err)
	}

	var sw sampleWriter
	ext := format
	if format == "csv" {
		w.Header().Set("Content-Type", mediaCSV)
		sw = newCSVSampleWriter(w)
	} else {
		w.Header().Set("Content-Type", mediaNDJSON)
		sw = newNDJSONSampleWriter(w)
	}
	name := fmt.Sprintf("%s_%s_%s.%s", safeFileName(ti.Target.ID),
		from.UTC().Format("20060102T150405Z"), to.UTC().Format("20060102T150405Z"), ext)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)

	for {
		for _, res := range page.Samples {
			if err := sw.Write(ti.Shown(res)); err != nil {
				s.abortStream(r, err)
			}
		}
		if err := sw.Flush(); err != nil {
			s.abortStream(r, err)
		}
		if flusher != nil {
			flusher.Flush()
		}
		if page.NextCursor == "" || len(page.Samples) == 0 {
			return nil
		}
		q.Cursor = page.NextCursor
		if page, err = s.o.Samples.Samples(r.Context(), q); err != nil {
			s.abortStream(r, err)
		}
	}
}

// abortStream ends a response whose status is already sent: the error is
// logged (unless the client went away) and the connection cut, so the
// transfer is visibly incomplete.
func (s *Server) abortStream(r *http.Request, err error) {
	if r.Context().Err() == nil {
		s.log.Error("export aborted", "path", r.URL.Path, "err", err)
	}
	panic(http.ErrAbortHandler)
}

// safeFileName keeps the characters of a target id that are safe in a
// Content-Disposition file name.
func safeFileName(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, id)
}
