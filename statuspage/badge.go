package statuspage

import (
	"bytes"
	"context"
	"errors"
	"html/template"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/registry"
	"github.com/upwatch/upwatch/sla"
	"github.com/upwatch/upwatch/sla/slainput"
	"github.com/upwatch/upwatch/tenancy"
)

// BadgeFiles are the badge images a token serves, with the uptime
// window of each uptime badge.
var BadgeFiles = map[string]time.Duration{
	"status.svg":     0,
	"uptime-24h.svg": 24 * time.Hour,
	"uptime-7d.svg":  7 * 24 * time.Hour,
	"uptime-30d.svg": 30 * 24 * time.Hour,
}

// maxBadgeLabel bounds the target name on a badge, in characters.
const maxBadgeLabel = 40

func (h *Handler) badge(w http.ResponseWriter, r *http.Request) {
	token, file := r.PathValue("token"), r.PathValue("file")
	window, ok := BadgeFiles[file]
	if !ok || len(token) > 64 {
		http.Error(w, "no such badge", http.StatusNotFound)
		return
	}
	b, err := h.o.Store.BadgeByToken(r.Context(), token)
	if errors.Is(err, registry.ErrNotFound) {
		http.Error(w, "no such badge", http.StatusNotFound)
		return
	}
	if err != nil {
		h.log.Error("badge lookup failed", "err", err)
		unavailable(w)
		return
	}
	ti, ok, err := h.badgeTarget(r.Context(), b)
	if err != nil {
		h.log.Error("badge target lookup failed", "err", err)
		unavailable(w)
		return
	}
	if !ok {
		http.Error(w, "no such badge", http.StatusNotFound)
		return
	}
	h.respond(w, r, "badge\x00"+token+"\x00"+file, func(ctx context.Context) ([]byte, string, error) {
		value, colour, err := h.badgeValue(ctx, ti, window)
		if err != nil {
			return nil, "", err
		}
		body, err := drawBadge(ti.Target.Name, value, colour)
		return body, "image/svg+xml; charset=utf-8", err
	})
}

// badgeTarget finds a badge's target; not found when the target is gone or
// its id now belongs to another target (another key).
func (h *Handler) badgeTarget(ctx context.Context, b registry.Badge) (tenancy.TargetInfo, bool, error) {
	ts, err := h.o.Targets(ctx, b.TenantID)
	if err != nil {
		return tenancy.TargetInfo{}, false, err
	}
	for _, t := range ts {
		if t.Target.ID == b.TargetID && t.Key == b.TargetKey {
			if t.Target.Name == "" {
				t.Target.Name = t.Target.ID
			}
			return t, true, nil
		}
	}
	return tenancy.TargetInfo{}, false, nil
}

// badgeValue is the badge's right-hand text and colour: the target's state,
// or its uptime over window (time-based, as the SLA API computes it).
func (h *Handler) badgeValue(ctx context.Context, ti tenancy.TargetInfo, window time.Duration) (string, string, error) {
	if window == 0 {
		st, ok := h.o.States(ti.Key)
		switch {
		case ti.Target.Paused:
			return "paused", "#6e7781", nil
		case !ok || st.Status == "" || st.Status == alerting.StatusUnknown:
			return "unknown", "#6e7781", nil
		case st.Status == alerting.StatusDown:
			return "down", "#cf222e", nil
		}
		return "up", "#1a7f37", nil
	}
	now := h.o.Now()
	windows, err := h.o.Windows(ctx, ti.TenantID)
	if err != nil {
		return "", "", err
	}
	res, err := h.uptime.Target(ctx, ti, slainput.Query{From: now.Add(-window), To: now, Accounting: sla.AccountingTime, Windows: windows})
	if err != nil {
		return "", "", err
	}
	label := map[time.Duration]string{24 * time.Hour: "24h", 7 * 24 * time.Hour: "7d", 30 * 24 * time.Hour: "30d"}[window]
	if !res.Report.HasData() {
		return "no data (" + label + ")", "#6e7781", nil
	}
	up := *res.Report.Uptime
	colour := "#1a7f37"
	switch {
	case up < 99:
		colour = "#cf222e"
	case up < 99.9:
		colour = "#9a6700"
	}
	return percent(up) + " (" + label + ")", colour, nil
}

var badgeTemplate = template.Must(template.New("badge").Parse(
	`<svg xmlns="http://www.w3.org/2000/svg" width="{{.W}}" height="20" role="img" aria-label="{{.Label}}: {{.Value}}">` +
		`<title>{{.Label}}: {{.Value}}</title>` +
		`<rect width="{{.LW}}" height="20" fill="#555"/><rect x="{{.LW}}" width="{{.VW}}" height="20" fill="{{.Colour}}"/>` +
		`<g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">` +
		`<text x="{{.LX}}" y="14">{{.Label}}</text><text x="{{.VX}}" y="14">{{.Value}}</text></g></svg>`))

// drawBadge draws a two-part badge; every text is escaped by the template.
func drawBadge(label, value, colour string) ([]byte, error) {
	if utf8.RuneCountInString(label) > maxBadgeLabel {
		label = string([]rune(label)[:maxBadgeLabel-1]) + "…"
	}
	width := func(s string) int { return 7*utf8.RuneCountInString(s) + 12 }
	lw, vw := width(label), width(value)
	var buf bytes.Buffer
	err := badgeTemplate.Execute(&buf, map[string]any{
		"W": lw + vw, "LW": lw, "VW": vw, "LX": lw / 2, "VX": lw + vw/2,
		"Label": label, "Value": value, "Colour": colour,
	})
	return buf.Bytes(), err
}
