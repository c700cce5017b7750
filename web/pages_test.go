package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/smtp"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/registry"
)

// checks writes n checks of key, every 10 minutes up to the clock, the
// failing ones as fail says.
func (h *harness) checks(key string, n int, fail func(i int) bool) {
	h.t.Helper()
	var rs []prober.Result
	now := h.clock.Now()
	for i := range n {
		r := prober.Result{TargetID: key, Kind: "http", Location: "local", Start: now.Add(-time.Duration(n-i) * 10 * time.Minute),
			Duration: 120 * time.Millisecond, Success: true, StatusCode: 200,
			Phases: prober.Phases{DNS: 10 * time.Millisecond, Connect: 20 * time.Millisecond, TLS: 30 * time.Millisecond, TTFB: 50 * time.Millisecond, Transfer: 10 * time.Millisecond}}
		if fail != nil && fail(i) {
			r = r.Fail(prober.ErrorClass("http_status"), "status 503")
		}
		rs = append(rs, r)
	}
	require.NoError(h.t, h.samples.WriteSamples(h.t.Context(), rs))
}

// incident stores an incident of key (open unless end is set) and the
// notifications it sent.
func (h *harness) incident(key, id string, start, end time.Time, to ...notify.Recipient) {
	h.t.Helper()
	inc := alerting.Incident{ID: id, TargetID: key, Start: start, End: end, Cause: "http_status: status 503"}
	var queue []alerting.Notification
	for _, r := range to {
		queue = append(queue, alerting.Notification{Key: id + "/down/" + r.Email, Channel: alerting.ChannelEmail, Status: alerting.NotificationPending,
			NextAttempt: start, CreatedAt: start,
			Message: notify.Message{Key: id + "/down/" + r.Email, Kind: "down", IncidentID: id, TargetID: key, Cause: inc.Cause, StartedAt: start, To: r}})
	}
	st := alerting.State{TargetID: key, Status: alerting.StatusDown, Since: start, LastCheck: start}
	if !end.IsZero() {
		st.Status, st.Since = alerting.StatusUp, end
	} else {
		st.Incident = &inc
	}
	require.NoError(h.t, h.reg.Commit(h.t.Context(), st, []alerting.Incident{inc}, queue))
}

func rowStatus(body, id string) string {
	m := regexp.MustCompile(`data-target="` + regexp.QuoteMeta(id) + `" data-status="([a-z]+)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestDashboardShowsEveryStatusAndFilters(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	keys := map[string]string{}
	for _, id := range []string{"up1", "down1", "slow1", "paused1", "new1"} {
		team := "web"
		if id == "down1" {
			team = "db"
		}
		keys[id] = h.createTarget(tenantA, id, map[string]string{"team": team})
	}
	h.setState(keys["up1"], alerting.State{Status: alerting.StatusUp, Since: t0.Add(-time.Hour)})
	h.setState(keys["down1"], alerting.State{Status: alerting.StatusDown, Since: t0.Add(-time.Minute)})
	h.setState(keys["slow1"], alerting.State{Status: alerting.StatusUp, Degraded: true})
	h.setState(keys["paused1"], alerting.State{Status: alerting.StatusUp})
	h.checks(keys["up1"], 144, func(i int) bool { return i == 140 })
	ed := h.as(tenantA, "ed")
	require.Equal(t, http.StatusSeeOther, ed.post("/ui/targets/paused1/pause", nil).status)

	body := h.as(tenantA, "vera").get("/ui/").body
	for id, want := range map[string]string{"up1": "up", "down1": "down", "slow1": "degraded", "paused1": "paused", "new1": "unknown"} {
		require.Equal(t, want, rowStatus(body, id), id)
	}
	has(t, body, "5 targets:")
	// Uptime: one of 144 checks failed in 24 h (99.305...%, never rounded up).
	has(t, body, "99.30%")
	has(t, body, `class="spark"`)
	has(t, body, "1 hours with failures")
	has(t, body, `hx-get="/ui/fragments/targets?"`)

	vera := h.as(tenantA, "vera")
	f := vera.get("/ui/fragments/targets?status=down").body
	require.NotContains(t, f, "<html", "a fragment, not a page")
	require.Equal(t, "down", rowStatus(f, "down1"))
	require.Empty(t, rowStatus(f, "up1"))
	f = vera.get("/ui/?label=team%3Dweb").body
	require.Empty(t, rowStatus(f, "down1"))
	require.Equal(t, "up", rowStatus(f, "up1"))
	require.Contains(t, f, `hx-get="/ui/fragments/targets?label=team%3Dweb"`, "the poll keeps the filter")
	bad := vera.get("/ui/?label=nonsense&status=sideways").body
	require.Contains(t, bad, `label filter &#34;nonsense&#34; must be name=value`)
	require.Contains(t, bad, `status &#34;sideways&#34; is not one of`)

	// Live: a target that goes down shows down at the next poll, and the
	// counts above the rows follow (they are polled with them).
	before := vera.get("/ui/fragments/targets").body
	h.setState(keys["up1"], alerting.State{Status: alerting.StatusDown, Since: t0})
	after := vera.get("/ui/fragments/targets").body
	require.Equal(t, "down", rowStatus(after, "up1"))
	require.Contains(t, after, `id="counts"`)
	require.NotEqual(t, countsOf(before), countsOf(after), "the counts line is refreshed with the rows")
}

func TestTargetPage(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := h.createTarget(tenantA, "shop", map[string]string{"team": "web"})
	h.clock.Set(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	h.checks(key, 144, func(i int) bool { return i >= 100 && i < 103 })
	h.incident(key, "inc-old", t0.Add(-5*time.Hour), t0.Add(-4*time.Hour), notify.Recipient{Name: "Ops", Email: "ops@example.com"})
	h.setState(key, alerting.State{Status: alerting.StatusUp, Since: t0.Add(-4 * time.Hour)})

	body := h.as(tenantA, "vera").get("/ui/targets/shop").body
	has(t, body, `id="response-chart"`)
	for _, ph := range phaseNames {
		has(t, body, `class="ph-`+ph+`"`)
	}
	has(t, body, "dns 10 ms, connect 20 ms, tls 30 ms, ttfb 50 ms, transfer 10 ms")
	require.Regexp(t, `1 of [12] checks failed`, body)
	has(t, body, `id="uptime-bar"`)
	require.Equal(t, 88, strings.Count(body, `<rect class="nodata"`), "88 days without data")
	require.Equal(t, 2, countDays(body), "yesterday and today have data")
	has(t, body, `data-incident="inc-old"`)
	has(t, body, "Ops &lt;ops@example.com&gt; by email (down, pending)")
	has(t, body, "2026-03 (so far)")
	has(t, body, "2026-02")
	require.NotContains(t, body, `id="pause"`, "no actions for viewers")
	require.Contains(t, h.as(tenantA, "ed").get("/ui/targets/shop").body, `id="pause"`)
}

// countDays counts the days of the 90-day bar that have data.
func countDays(body string) int {
	return len(regexp.MustCompile(`<rect class="(up|degraded|down)" x=`).FindAllString(body, -1))
}

func TestEditTargetUsesTheAPIsValidation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.createTarget(tenantA, "shop", nil)
	ed := h.as(tenantA, "ed")
	form := ed.get("/ui/targets/shop/edit").body
	require.Contains(t, form, `&#34;url&#34;: &#34;https://shop.example.com/&#34;`)

	a := ed.post("/ui/targets/shop/edit", url.Values{"doc": {`{"id":"shop","name":"Shop","kind":"http","interval":"500ms","http":{"url":"ftp://x"}}`}})
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.body)
	has(t, a.body, `id="problem"`)
	has(t, a.body, "<code>interval</code>")
	has(t, a.body, "ftp://x", "the submitted text comes back")

	a = ed.post("/ui/targets/shop/edit", url.Values{"doc": {`{"id":"shop","name":"Shop renamed","kind":"http","interval":"1m","http":{"url":"https://shop.example.com/"}}`}})
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Contains(t, ed.get("/ui/targets/shop").body, "Shop renamed")

	a = ed.post("/ui/targets/new", url.Values{"doc": {exampleTarget}})
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Equal(t, "/ui/targets/example", a.header.Get("Location"))

	a = ed.post("/ui/targets/example/delete", nil)
	require.Equal(t, http.StatusSeeOther, a.status)
	require.Equal(t, http.StatusNotFound, ed.get("/ui/targets/example").status)
}

func TestIncidentsAcknowledgeAndNotes(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := h.createTarget(tenantA, "shop", nil)
	h.incident(key, "inc-open", t0.Add(-10*time.Minute), time.Time{})
	otherKey := h.createTarget(tenantB, "theirs", nil)
	h.incident(otherKey, "inc-theirs", t0.Add(-time.Hour), time.Time{})

	ed := h.as(tenantA, "ed")
	page := ed.get("/ui/incidents").body
	require.Contains(t, page, `data-incident="inc-open" data-open="true"`)
	require.NotContains(t, page, "inc-theirs")
	require.Contains(t, page, `action="/ui/incidents/inc-open/ack"`)

	require.Equal(t, http.StatusSeeOther, ed.post("/ui/incidents/inc-open/ack", url.Values{"back": {"/ui/incidents"}}).status)
	h.clock.Advance(time.Minute)
	require.Equal(t, http.StatusSeeOther, h.as(tenantA, "ada").post("/ui/incidents/inc-open/ack", nil).status, "a second ack is harmless")
	// The acknowledgement is the incident's, where the alert engine reads
	// it (and stops the reminders), recorded with the user and the time.
	by, at, err := h.reg.IncidentAck(t.Context(), "inc-open")
	require.NoError(t, err)
	require.Equal(t, "user:ed", by)
	require.True(t, at.Equal(t0), "the first acknowledgement stands")
	// An incident that has ended has nothing to acknowledge.
	h.incident(key, "inc-past", t0.Add(-3*time.Hour), t0.Add(-2*time.Hour))
	require.Equal(t, http.StatusConflict, ed.post("/ui/incidents/inc-past/ack", nil).status)

	a := ed.post("/ui/incidents/inc-open/notes", url.Values{"text": {"restarting the <db>"}})
	require.Equal(t, http.StatusSeeOther, a.status)
	require.Equal(t, "/ui/incidents", a.header.Get("Location"))
	page = ed.get("/ui/incidents").body
	require.Contains(t, page, "Acknowledged by <strong>ed</strong>")
	require.NotContains(t, page, "Acknowledged by <strong>ada</strong>")
	require.NotContains(t, page, `action="/ui/incidents/inc-open/ack"`)
	require.Contains(t, page, "restarting the &lt;db&gt;")

	require.Equal(t, http.StatusUnprocessableEntity, ed.post("/ui/incidents/inc-open/notes", url.Values{"text": {"  "}}).status)
	// Another tenant's incident, by URL: not found, nothing recorded.
	require.Equal(t, http.StatusNotFound, ed.post("/ui/incidents/inc-theirs/ack", nil).status)
	_, at, err = h.reg.IncidentAck(t.Context(), "inc-theirs")
	require.NoError(t, err)
	require.True(t, at.IsZero(), "another tenant's incident stays unacknowledged")
	require.Equal(t, http.StatusNotFound, ed.post("/ui/incidents/inc-theirs/notes", url.Values{"text": {"x"}}).status)
	notes, err := h.reg.IncidentNotes(t.Context(), tenantB, []string{"inc-theirs"})
	require.NoError(t, err)
	require.Empty(t, notes)
	notes, err = h.reg.IncidentNotes(t.Context(), tenantA, []string{"inc-theirs"})
	require.NoError(t, err)
	require.Empty(t, notes)
}

func TestSettingsCallTheAPI(t *testing.T) {
	// Email policies need a mail provider in the config (the API's rule).
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.Alerting.SMTP = &smtp.Config{Host: "127.0.0.1", From: "upwatch@example.com"} }})
	ada := h.as(tenantA, "ada")
	require.Contains(t, ada.get("/ui/settings").body, `id="create-contact-groups"`)

	// The API's validation answers for the form.
	a := ada.post("/ui/settings/contact-groups", url.Values{"doc": {`{"name":"ops","members":[{"name":"Ops","email":"not-an-address"}]}`}})
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.body)
	has(t, a.body, `id="problem"`)
	has(t, a.body, "<code>members[0].email</code>")

	for _, k := range objectKinds {
		a := ada.post("/ui/settings/"+k.Path, url.Values{"doc": {k.Example}})
		require.Equal(t, http.StatusSeeOther, a.status, "%s: %s", k.Path, short(a.body))
	}
	page := ada.get("/ui/settings").body
	for _, id := range []string{"ops", "default"} {
		has(t, page, `data-object="`+id+`"`)
	}
	mw := regexp.MustCompile(`data-object="(mw_[a-z0-9]+)"`).FindStringSubmatch(page)
	require.NotNil(t, mw, "the window has a server-chosen id")
	require.Equal(t, http.StatusSeeOther, ada.post("/ui/settings/maintenance-windows/"+mw[1]+"/delete", nil).status)
	require.NotContains(t, ada.get("/ui/settings").body, mw[1])
	// A group in use by a policy is refused by the API, and the page says so.
	a = ada.post("/ui/settings/contact-groups/ops/delete", nil)
	require.Equal(t, http.StatusConflict, a.status)
	has(t, a.body, `id="problem"`)
	require.Equal(t, http.StatusNotFound, ada.post("/ui/settings/nonsense", url.Values{"doc": {"{}"}}).status)

	// API keys: shown once, then revocable.
	a = ada.post("/ui/settings/keys", url.Values{"name": {"ci"}, "scopes": {"read"}})
	require.Equal(t, http.StatusCreated, a.status, a.body)
	key := regexp.MustCompile(`<code>(uw_[0-9A-Za-z]+)</code>`).FindStringSubmatch(a.body)
	require.NotNil(t, key, a.body)
	page = ada.get("/ui/settings").body
	require.NotContains(t, page, key[1])
	id := regexp.MustCompile(`data-key="([^"]+)"`).FindStringSubmatch(page)
	require.NotNil(t, id)
	require.Equal(t, http.StatusSeeOther, ada.post("/ui/settings/keys/"+id[1]+"/revoke", nil).status)
	require.Contains(t, ada.get("/ui/settings").body, "<strong>revoked</strong>")
	require.Equal(t, http.StatusUnprocessableEntity, ada.post("/ui/settings/keys", url.Values{"name": {"x"}, "scopes": {"everything"}}).status)

	// Users: NewUser's rules, fields named.
	a = ada.post("/ui/settings/users", url.Values{"name": {"newbie"}, "role": {"editor"}, "password": {"short"}})
	require.Equal(t, http.StatusUnprocessableEntity, a.status)
	has(t, a.body, "<code>password</code>")
	a = ada.post("/ui/settings/users", url.Values{"name": {"newbie"}, "role": {"editor"}, "password": {password}})
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Equal(t, http.StatusConflict, ada.post("/ui/settings/users", url.Values{"name": {"newbie"}, "role": {"editor"}, "password": {password}}).status)
	h.as(tenantA, "newbie")
	require.Equal(t, http.StatusConflict, ada.post("/ui/settings/users/ada/delete", nil).status, "not yourself")
	// Another tenant's admin sees none of it.
	require.NotContains(t, h.as(tenantB, "oscar").get("/ui/settings").body, `data-object="ops"`)
	require.Equal(t, http.StatusNotFound, h.as(tenantB, "oscar").post("/ui/settings/users/vera/delete", nil).status)
}

func TestSettingsReportKeys(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ada := h.as(tenantA, "ada")
	page := ada.get("/ui/settings").body
	require.Contains(t, page, `id="create-report-key"`)
	require.NotContains(t, page, `id="rotate-report-key"`)

	// Created through the API: the JWK is shown once, in a page no cache keeps.
	a := ada.post("/ui/settings/report-keys", nil)
	require.Equal(t, http.StatusCreated, a.status, a.body)
	require.Equal(t, "no-store", a.header.Get("Cache-Control"))
	jwk := regexp.MustCompile(`<code id="new-report-jwk">([^<]+)</code>`).FindStringSubmatch(a.body)
	require.NotNil(t, jwk, a.body)
	require.Contains(t, jwk[1], "&#34;kty&#34;:&#34;oct&#34;")
	kid := regexp.MustCompile(`data-report-key="([^"]+)"`).FindStringSubmatch(a.body)[1]
	require.Contains(t, jwk[1], kid)
	page = ada.get("/ui/settings").body
	require.NotContains(t, page, "new-report-jwk", "shown only once")
	require.Contains(t, page, `id="rotate-report-key"`)

	// A second create is the API's 409; rotate makes a new current key.
	require.Equal(t, http.StatusConflict, ada.post("/ui/settings/report-keys", nil).status)
	a = ada.post("/ui/settings/report-keys/rotate", nil)
	require.Equal(t, http.StatusCreated, a.status, a.body)
	require.Contains(t, a.body, "now retired: "+kid)
	require.Equal(t, 2, strings.Count(a.body, "data-report-key="))
	require.Equal(t, 1, strings.Count(a.body, "<strong>current</strong>"))
	// Another tenant's admin sees none of them.
	require.NotContains(t, h.as(tenantB, "oscar").get("/ui/settings").body, kid)
}

func TestTargetPageResponseTimesPerLocation(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	key := h.createTarget(tenantA, "shop", nil)
	h.checks(key, 10, nil) // local: 120 ms each
	vera := h.as(tenantA, "vera")
	require.NotContains(t, vera.get("/ui/targets/shop").body, `id="by-location"`, "one location: the chart says it all")

	// An agent in fra: 300 ms, then one slow failed check of 900 ms.
	var rs []prober.Result
	now := h.clock.Now()
	for i := range 20 {
		r := prober.Result{TargetID: key, Kind: "http", Location: "fra", Start: now.Add(-time.Duration(i+1) * 5 * time.Minute),
			Duration: 300 * time.Millisecond, Success: true, StatusCode: 200}
		if i == 0 {
			r.Duration = 900 * time.Millisecond
			r = r.Fail(prober.ErrorClass("http_status"), "status 503")
		}
		rs = append(rs, r)
	}
	require.NoError(t, h.samples.WriteSamples(t.Context(), rs))
	body := vera.get("/ui/targets/shop").body
	require.Contains(t, body, `id="by-location"`)
	row := func(loc string) string {
		m := regexp.MustCompile(`(?s)<tr data-location="` + loc + `">(.*?)</tr>`).FindStringSubmatch(body)
		require.NotNil(t, m, loc)
		return m[1]
	}
	// fra: 20 checks, 1 failed, mean (19×300 + 900)/20 = 330 ms, p95 (the
	// 19th of 20) 300 ms.
	require.Regexp(t, `<td>20</td><td>1</td><td>330 ms</td><td>300 ms</td><td><svg class="spark"`, row("fra"))
	require.Regexp(t, `<td>10</td><td>0</td><td>120 ms</td><td>120 ms</td>`, row("local"))
	require.Less(t, strings.Index(body, `data-location="fra"`), strings.Index(body, `data-location="local"`), "by name")
}

// Acknowledged in the web interface, an incident gets no more reminders
// from the alert engine, while another one does.
func TestAcknowledgeInTheWebStopsReminders(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	keys := []string{h.createTarget(tenantA, "shop", nil), h.createTarget(tenantA, "blog", nil)}
	e, err := alerting.NewEngine(t.Context(), alerting.EngineOptions{Store: h.reg, Acks: h.reg, Now: h.clock.Now, Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	routes := map[string]alerting.Route{}
	for _, k := range keys {
		routes[k] = alerting.Route{Name: k, Policy: alerting.Policy{FailureThreshold: 1, RepeatInterval: 10 * time.Minute},
			Channels: []string{alerting.ChannelEmail}, Recipients: []notify.Recipient{{Name: "Ops", Email: "ops@example.com"}}}
	}
	e.Update(routes, nil)
	for _, k := range keys {
		require.NoError(t, e.Observe(t.Context(), prober.Result{TargetID: k, Kind: "http", Start: t0, Duration: time.Second}.Fail(prober.ErrorClass("http_status"), "status 503")))
	}
	st, ok := e.State(keys[0])
	require.True(t, ok)
	require.NotNil(t, st.Incident)

	ed := h.as(tenantA, "ed")
	require.Equal(t, http.StatusSeeOther, ed.post("/ui/incidents/"+st.Incident.ID+"/ack", nil).status)
	for m := 11; m <= 31; m += 10 {
		e.Tick(t.Context(), t0.Add(time.Duration(m)*time.Minute))
	}
	reminders := map[string]int{}
	ns, err := h.reg.Notifications(t.Context(), registry.NotificationQuery{Limit: 100})
	require.NoError(t, err)
	for _, n := range ns {
		if n.Message.Kind == notify.KindReminder {
			reminders[n.Message.TargetID]++
		}
	}
	require.Zero(t, reminders[keys[0]], "acknowledged")
	require.Equal(t, 3, reminders[keys[1]], "not acknowledged: one every 10 minutes")
	require.Contains(t, ed.get("/ui/incidents").body, "Acknowledged by <strong>ed</strong>")
}

// countsOf is the dashboard's counts line in a page or fragment.
func countsOf(body string) string {
	_, rest, _ := strings.Cut(body, `id="counts"`)
	line, _, _ := strings.Cut(rest, "</p>")
	return line
}
