package app

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/upwatch/upwatch/api"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/lease"
)

// holderReader tells who holds a lease now (the registry does).
type holderReader interface {
	LeaseHolder(ctx context.Context, name string) (lease.Holder, bool, error)
}

// holderCacheFor is how long a follower keeps the answer to "who leads?"
// before asking the registry again: a push per agent per second must not
// cost a query each. A hand-over is noticed within it (a push forwarded
// to the old holder meanwhile is refused there and retried).
const holderCacheFor = time.Second

// resultsRoute says where agent results go (api.Options.ResultsRoute): on
// a shared registry the alerting lease holder alone evaluates alerts, so
// a server that does not lead hands pushes to the holder's advertised
// URL. Results are claimed (deduplicated) where they are evaluated.
type resultsRoute struct {
	holders holderReader
	self    string      // this server's lease holder id
	leading func() bool // this server evaluates alerts now

	mu    sync.Mutex
	to    *url.URL
	err   error
	asked time.Time // monotonic
}

// route returns nil while this server leads, else the holder's URL, or
// api.ErrNoResultsServer while nobody holds the lease, this server is
// taking it over, or the holder advertises no URL.
func (r *resultsRoute) route(ctx context.Context) (*url.URL, error) {
	if r.leading() {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.asked.IsZero() && time.Since(r.asked) < holderCacheFor {
		return r.to, r.err
	}
	h, ok, err := r.holders.LeaseHolder(ctx, alertingLease)
	switch {
	case err != nil:
		return nil, err // not cached: the next push asks again
	case !ok || h.ID == r.self || h.URL == "":
		r.to, r.err = nil, api.ErrNoResultsServer
	default:
		r.to, r.err = url.Parse(h.URL)
	}
	r.asked = time.Now()
	return r.to, r.err
}

// advertiseURL is where the other servers reach this one: server.advertise_url,
// else http:// and the address listened on, with the host's name for an
// unspecified address.
func advertiseURL(cfg *config.Config, addr net.Addr) string {
	if cfg.Server.AdvertiseURL != "" {
		return strings.TrimSuffix(cfg.Server.AdvertiseURL, "/")
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if name, err := os.Hostname(); err == nil && name != "" {
			host = name
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}
