package api

import (
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLoadTargetReads is the API half of the load harness (`make load`):
// GET /targets/{id} at 500 requests/s on loopback for 10 s from 32
// clients, each request authenticated with a real key; it reports latency
// quantiles. Skipped unless UPWATCH_LOAD is set; nothing about timing is
// asserted.
func TestLoadTargetReads(t *testing.T) {
	if os.Getenv("UPWATCH_LOAD") == "" {
		t.Skip("load harness: run with `make load` (UPWATCH_LOAD=1)")
	}
	h := newHarness(t, func(o *Options) { o.RateLimit = RateLimit{RPS: 10000, Burst: 10000} })
	w := h.key(tenantA, ScopeWrite)
	for _, id := range []string{"a", "b", "c", "d"} {
		r := h.do(http.MethodPost, Prefix+"/targets", w, httpTarget(id))
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	}
	key := h.key(tenantA, ScopeRead)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	const rate, seconds, clients = 500, 10, 32
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	jobs := make(chan string)
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for id := range jobs {
				req, _ := http.NewRequest(http.MethodGet, h.ts.URL+Prefix+"/targets/"+id, nil)
				req.Header.Set("Authorization", "Bearer "+key)
				start := time.Now()
				resp, err := client.Do(req)
				d := time.Since(start)
				mu.Lock()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
				if err == nil {
					_ = resp.Body.Close()
				}
			}
		})
	}
	ids := []string{"a", "b", "c", "d"}
	for i := range rate * seconds {
		<-tick.C
		jobs <- ids[i%len(ids)]
	}
	close(jobs)
	wg.Wait()
	require.Zero(t, errs)
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	t.Logf("GET /targets/{id} at %d req/s for %d s: %d requests, p50 %s, p95 %s, p99 %s, max %s",
		rate, seconds, len(lat), q(0.50), q(0.95), q(0.99), lat[len(lat)-1])
}
