// Package statuspage serves what the public sees without signing in: each
// tenant's status pages (/status/{slug}, its Atom feed, and the same on a
// custom domain) and the targets' opt-in SVG badges (/badge/{token}/...).
// Pages are server-rendered html/template from embed.FS and work without
// JavaScript. A page shows only what its editors put on it: the names of
// its components, their state and uptime, its incidents and the
// maintenance of its targets; never a target's id, URL or error. Figures
// come from package slainput (the same SLA code as the API); tenants'
// targets and maintenance windows come through functions app wires from
// the API server, so there is one copy of each rule.
package statuspage

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/sla/slainput"
	"github.com/upwatch/upwatch/tenancy"
)

// Store is what the public pages read of the registry.
type Store interface {
	// StatusPageBySlug finds a page by slug, or by domain when slug is "";
	// registry.ErrNotFound when there is none.
	StatusPageBySlug(ctx context.Context, slug, domain string) (registry.StatusPage, error)
	StatusIncidents(ctx context.Context, tenantID, pageID string, since time.Time) ([]registry.StatusIncident, error)
	BadgeByToken(ctx context.Context, token string) (registry.Badge, error)
}

// Options configure a Handler. Store, Targets, Windows, Samples and
// Incidents are required.
type Options struct {
	Store Store
	// Targets lists a tenant's targets (api.Server.TargetsOf).
	Targets func(ctx context.Context, tenantID string) ([]tenancy.TargetInfo, error)
	// Windows lists a tenant's valid maintenance windows
	// (api.Server.MaintenanceWindows).
	Windows func(ctx context.Context, tenantID string) ([]alerting.Window, error)
	// Samples and Incidents are what the SLA figures are computed from
	// (package slainput, as the API's).
	Samples   slainput.Samples
	Incidents slainput.Incidents
	// States gives a target's alert state by its key (alerting.Engine.State).
	States func(key string) (alerting.State, bool)
	Now    func() time.Time
	Logger *slog.Logger
	// MaxAge is how long a rendered page or badge is reused and what
	// Cache-Control allows clients to keep it; zero means DefaultMaxAge.
	MaxAge time.Duration
}

// DefaultMaxAge is the default cache lifetime of pages and badges.
const DefaultMaxAge = 30 * time.Second

// Days is how many days of uptime bars a page shows.
const Days = 90

// maxCached bounds the rendered-response cache; when full it starts over.
const maxCached = 1024

// Handler serves the public routes. Build it with New.
type Handler struct {
	o      Options
	log    *slog.Logger
	mux    *http.ServeMux
	uptime *slainput.Reader

	renders singleflight.Group
	mu      sync.Mutex
	cache   map[string]cached // "page\x00<id>\x00<kind>\x00<base>" or "badge\x00<token>\x00<kind>"
}

type cached struct {
	body, gz    []byte // gz: body gzipped
	contentType string
	etag        string
	expires     time.Time
}

// New builds the handler.
func New(o Options) (*Handler, error) {
	if o.Store == nil || o.Targets == nil || o.Windows == nil || o.Samples == nil || o.Incidents == nil {
		return nil, errors.New("statuspage: Store, Targets, Windows, Samples and Incidents are required")
	}
	if o.States == nil {
		o.States = func(string) (alerting.State, bool) { return alerting.State{}, false }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	h := &Handler{o: o, log: o.Logger, mux: http.NewServeMux(), cache: map[string]cached{},
		uptime: slainput.New(newSettledTotals(o.Samples, o.Now), o.Incidents, o.Now)}
	h.mux.HandleFunc("GET /status/{slug}", func(w http.ResponseWriter, r *http.Request) {
		h.page(w, r, r.PathValue("slug"), kindHTML)
	})
	h.mux.HandleFunc("GET /status/{slug}/feed.atom", func(w http.ResponseWriter, r *http.Request) {
		h.page(w, r, r.PathValue("slug"), kindAtom)
	})
	h.mux.HandleFunc("GET /badge/{token}/{file}", h.badge)
	return h, nil
}

// Warm computes page p as its first render would, so the sums of its
// settled days are kept before its first visitor comes (the server warms
// every page in the background after a start). Nothing is cached of the
// page itself: its state may change before anyone asks.
func (h *Handler) Warm(ctx context.Context, p registry.StatusPage) error {
	_, err := h.build(ctx, p, "")
	return err
}

// ServeHTTP serves /status/ and /badge/.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Domains serves a page on its custom domain: GET / and /feed.atom on a
// host that a page names; everything else goes to next.
func (h *Handler) Domains(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			kind := ""
			switch r.URL.Path {
			case "/":
				kind = kindHTML
			case "/feed.atom":
				kind = kindAtom
			}
			if kind != "" {
				// A failed lookup leaves the host to next, as an unknown one.
				if p, err := h.lookup(r.Context(), "", hostOf(r)); err == nil {
					h.serve(w, r, p, kind, true)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

const (
	kindHTML = "html"
	kindAtom = "atom"
)

func hostOf(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// lookup finds a page by slug or domain (registry.ErrNotFound when there
// is none); a store failure is logged.
func (h *Handler) lookup(ctx context.Context, slug, domain string) (registry.StatusPage, error) {
	p, err := h.o.Store.StatusPageBySlug(ctx, slug, domain)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		h.log.Error("status page lookup failed", "err", err)
	}
	return p, err
}

// unavailable answers 503 for a store that failed: the page may exist.
func unavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "5")
	http.Error(w, "the status page is unavailable; try again shortly", http.StatusServiceUnavailable)
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request, slug, kind string) {
	p, err := h.lookup(r.Context(), slug, "")
	switch {
	case errors.Is(err, registry.ErrNotFound):
		http.Error(w, "no such status page", http.StatusNotFound)
	case err != nil:
		unavailable(w)
	default:
		h.serve(w, r, p, kind, false)
	}
}

// serve answers a page (or its feed) from the cache, rendering it when the
// cached copy is missing or stale; onDomain says the page was asked for
// on its custom domain, which its links then use.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, p registry.StatusPage, kind string, onDomain bool) {
	base := baseURL(r, p, onDomain)
	key := "page\x00" + p.TenantID + "\x00" + p.ID + "\x00" + kind + "\x00" + base
	h.respond(w, r, key, func(ctx context.Context) ([]byte, string, error) {
		v, err := h.build(ctx, p, base)
		if err != nil {
			return nil, "", err
		}
		if kind == kindAtom {
			b, err := renderFeed(v)
			return b, "application/atom+xml; charset=utf-8", err
		}
		var buf bytes.Buffer
		err = pageTemplate.Execute(&buf, v)
		return buf.Bytes(), "text/html; charset=utf-8", err
	})
}

// respond writes a cached or freshly rendered body with its ETag and
// Cache-Control, or 304 when the client has it.
func (h *Handler) respond(w http.ResponseWriter, r *http.Request, key string, render func(context.Context) ([]byte, string, error)) {
	now := h.o.Now()
	h.mu.Lock()
	c, ok := h.cache[key]
	h.mu.Unlock()
	if !ok || !now.Before(c.expires) {
		// One render per key at a time: the visitors who arrive while it
		// runs share its result.
		v, err, _ := h.renders.Do(key, func() (any, error) {
			body, ct, err := render(context.WithoutCancel(r.Context()))
			if err != nil {
				return cached{}, err
			}
			sum := sha256.Sum256(body)
			c := cached{body: body, gz: gzipped(body), contentType: ct, etag: hex.EncodeToString(sum[:12]), expires: now.Add(h.o.MaxAge)}
			h.mu.Lock()
			if len(h.cache) >= maxCached {
				clear(h.cache)
			}
			h.cache[key] = c
			h.mu.Unlock()
			return c, nil
		})
		if err != nil {
			h.log.Error("status page render failed", "err", err)
			unavailable(w)
			return
		}
		c = v.(cached)
	}
	hd := w.Header()
	body, etag := c.body, `"`+c.etag+`"`
	if acceptsGzip(r) {
		// Each encoding is its own representation, with its own ETag.
		body, etag = c.gz, `"`+c.etag+`-gz"`
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("Vary", "Accept-Encoding")
	hd.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(h.o.MaxAge/time.Second)))
	hd.Set("ETag", etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Content-Security-Policy", "default-src 'none'; img-src http: https:; style-src 'unsafe-inline'; frame-ancestors *")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, etag) {
		hd.Del("Content-Encoding")
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", c.contentType)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the level is valid
	_, _ = zw.Write(b)                                 // writes to memory do not fail
	_ = zw.Close()
	return buf.Bytes()
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

// baseURL is where the page lives as the visitor reached it: its custom
// domain's root, or /status/{slug} on the host asked for.
func baseURL(r *http.Request, p registry.StatusPage, onDomain bool) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	if onDomain {
		return scheme + "://" + p.Domain
	}
	return scheme + "://" + r.Host + "/status/" + p.Slug
}
