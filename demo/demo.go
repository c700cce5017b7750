// Package demo serves endpoints for a new user to watch without internet
// access: one always up, one that fails now and then, one that is sometimes
// slow. The sample config points its targets here.
package demo

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// Handler serves /demo/ok, /demo/flaky and /demo/slow. now is the clock
// (time.Now in production) so tests can pin the outage windows.
func Handler(now func() time.Time) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/ok", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	// flaky is down for the first 20 s of every minute and fails one
	// request in ten the rest of the time, so within a minute a user sees a
	// run of failures long enough to count as an outage, and stray ones.
	mux.HandleFunc("GET /demo/flaky", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if Down(now()) || rand.IntN(10) == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, `{"status":"unavailable"}`)
			return
		}
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	// slow answers after up to 1.5 s, so a max_latency of 1 s fails at times.
	mux.HandleFunc("GET /demo/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Duration(rand.IntN(1500)) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintln(w, "slow but fine")
	})
	return mux
}

// Down reports whether /demo/flaky is in its outage window at t.
func Down(t time.Time) bool { return t.Second() < 20 }
