package web

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"path"
	"strings"
	"time"
)

// pages are the parsed templates: each page file with layout.html.
type pages struct {
	byName map[string]*template.Template
}

var funcs = template.FuncMap{
	"iso":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"utc":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"pct":  formatPercent,
	"ms":   func(v float64) string { return fmt.Sprintf("%.0f ms", v) },
	"join": strings.Join,
	"ago": func(now, t time.Time) string {
		d := now.Sub(t).Round(time.Second)
		if d < 0 {
			d = 0
		}
		return humanDuration(d) + " ago"
	},
	"dur": humanDuration,
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
}

// formatPercent shows a share with as many decimals as it needs to not
// round a failure to 100%; nil is "no data".
func formatPercent(p *float64) string {
	if p == nil {
		return "no data"
	}
	v := *p
	switch {
	case v >= 100:
		return "100%"
	case v >= 99.9:
		return fmt.Sprintf("%.3f%%", math.Floor(v*1000)/1000)
	default:
		return fmt.Sprintf("%.2f%%", math.Floor(v*100)/100)
	}
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

func parsePages() (*pages, error) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, f := range files {
		name := strings.TrimSuffix(path.Base(f), ".html")
		if name == "layout" || name == "parts" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", f, err)
		}
		p.byName[name] = t
	}
	return p, nil
}

// view is what every page's template gets.
type view struct {
	Page    string
	Session *session
	Now     time.Time
	Data    any
}

// renderPage writes the page name inside the layout, gzipped when the
// client takes it (the dashboard of 1,000 targets compresses tenfold).
func (s *Server) renderPage(w http.ResponseWriter, r *http.Request, sess *session, status int, name string, data any) {
	s.render(w, r, status, name, "layout.html", view{Page: name, Session: sess, Now: s.o.Now(), Data: data})
}

// render executes template tmpl of page name.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name, tmpl string, v view) {
	t, ok := s.pages.byName[name]
	if !ok {
		s.log.Error("web: no such template", "name", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, v); err != nil {
		s.log.Error("web: rendering failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.Add("Vary", "Accept-Encoding")
	if buf.Len() > 1024 && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		w.WriteHeader(status)
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		_, _ = buf.WriteTo(zw)
		_ = zw.Close()
		return
	}
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}
