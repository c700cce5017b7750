package browser

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestSignedInWebInterface walks the signed-in web interface as a person
// would, in one browser tab: sign in through the form as a user made by
// `upwatch user add`'s code, see the targets, watch one turn DOWN without
// a page reload, acknowledge its incident, create a maintenance window in
// settings, sign out, and find the old session cookie refused.
func TestSignedInWebInterface(t *testing.T) {
	tb := newTab(t) // first: skips without a browser before starting anything
	shop, shopSrv := target(t)
	_, apiSrv := target(t)
	s := startService(t, `
allow_private_targets: true
targets:
  - name: shop
    kind: http
    interval: 1s
    timeout: 500ms
    labels: {team: web}
    http: {url: "`+shopSrv.URL+`/", expect_status: ["200"], body_contains: ["fine"]}
  - name: api
    kind: http
    interval: 1s
    timeout: 500ms
    labels: {team: backend}
    http: {url: "`+apiSrv.URL+`/health"}
  - name: database
    kind: tcp
    interval: 1s
    timeout: 500ms
    labels: {team: backend}
    tcp: {address: "`+apiSrv.Listener.Addr().String()+`"}
`, "shop", "api")

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"sign in through the form", func(t *testing.T) {
			tb.t = t
			tb.run(
				chromedp.Navigate(s.url+"/"),
				chromedp.WaitVisible(chromedp.CSS(`body[data-page="signin"] form#signin`)),
				chromedp.Clear(chromedp.ID("tenant")), // the form suggests one
				chromedp.SendKeys(chromedp.ID("tenant"), "default"),
				chromedp.SendKeys(chromedp.ID("name"), s.user),
				chromedp.SendKeys(chromedp.ID("password"), s.password),
			)
			tb.shot("signin")
			tb.run(
				chromedp.Click(chromedp.CSS(`form#signin button[type="submit"]`)),
				// The dashboard, or the form again with an error: fail
				// fast on the error.
				chromedp.WaitVisible(chromedp.CSS(`body[data-page="dashboard"] table#targets, #signin-error`)),
			)
			require.Equal(t, "dashboard", value(tb, chromedp.Evaluate[string](`document.body.dataset.page`)),
				"signed in (else: %s)", value(tb, chromedp.Evaluate[string](`String(document.getElementById("signin-error")?.textContent)`)))
			require.Equal(t, "admin · default · admin", value(tb, chromedp.Text(chromedp.ID("who"))))
		}},
		{"the dashboard shows every target up", func(t *testing.T) {
			tb.t = t
			// The first rows may still be unknown; htmx refreshes them.
			for _, id := range []string{"shop", "api", "database"} {
				tb.run(chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-target=%q][data-status="up"]`, id))))
			}
			// A page load would lose this; an htmx swap keeps it.
			require.Equal(t, "kept", value(tb, chromedp.Evaluate[string](`window.upwatchMarker = "kept"`)))
			tb.shot("dashboard-up")
		}},
		{"a failing target turns down without a reload", func(t *testing.T) {
			tb.t = t
			shop.down.Store(true)
			tb.run(chromedp.WaitVisible(chromedp.CSS(`tr[data-target="shop"][data-status="down"]`)))
			require.Equal(t, "kept", value(tb, chromedp.Evaluate[string](`String(window.upwatchMarker)`)),
				"the row changed by a swap, not a page load")
			require.Equal(t, "up", value(tb, chromedp.AttributeValue(chromedp.CSS(`tr[data-target="api"]`), "data-status")).Value)
			// The counts line above the rows is refreshed with them.
			require.Contains(t, value(tb, chromedp.Text(chromedp.ID("counts"))), "2 up, 1 down")
			tb.shot("dashboard-down")
			// The README's picture, from a fresh load.
			tb.run(
				chromedp.Navigate(s.url+"/ui/"),
				chromedp.WaitVisible(chromedp.CSS(`tr[data-target="shop"][data-status="down"]`)),
			)
			require.Contains(t, value(tb, chromedp.Text(chromedp.ID("counts"))), "2 up, 1 down")
			tb.docsShot("dashboard")
		}},
		{"open the incident and acknowledge it", func(t *testing.T) {
			tb.t = t
			// The incidents page does not refresh itself: go there once the
			// incident is stored (the row's state and the incident are
			// separate reads).
			require.Eventually(t, func() bool {
				code, body := apiGet(t, s, "/api/v1/incidents")
				return code == http.StatusOK && strings.Contains(body, `"open":true`)
			}, wait, 50*time.Millisecond, "no open incident")
			tb.run(
				chromedp.Click(chromedp.CSS(`nav a[href="/ui/incidents"]`)),
				chromedp.WaitVisible(chromedp.CSS(`body[data-page="incidents"] article[data-incident][data-open="true"]`)),
			)
			id := value(tb, chromedp.AttributeValue(chromedp.CSS(`article[data-incident][data-open="true"]`), "data-incident")).Value
			require.NotEmpty(t, id)
			require.Contains(t, value(tb, chromedp.Text(chromedp.CSS(fmt.Sprintf(`article[data-incident=%q] h3`, id)))), "shop")
			inc := fmt.Sprintf(`body[data-page="incidents"] article[data-incident=%q]`, id)
			tb.run(
				chromedp.Click(chromedp.CSS(inc+` form.ack-form button`)),
				chromedp.WaitVisible(chromedp.CSS(inc+` p.ack[data-acked="true"]`)),
				chromedp.WaitNotPresent(chromedp.CSS(inc+` form.ack-form`)),
			)
			require.Contains(t, value(tb, chromedp.Text(chromedp.CSS(inc+` p.ack`))), "Acknowledged by admin")
			tb.shot("incident-acknowledged")

			// The incident's target page: status, chart and the incident.
			tb.run(
				chromedp.Click(chromedp.CSS(inc+` h3 a[href="/ui/targets/shop"]`)),
				chromedp.WaitVisible(chromedp.CSS(`body[data-page="target"] h1[data-target="shop"] [data-status="down"]`)),
				chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`article[data-incident=%q] p.ack`, id))),
			)
			tb.docsShot("target")
		}},
		{"create a maintenance window in settings", func(t *testing.T) {
			tb.t = t
			start := s.now().Add(24 * time.Hour).UTC().Truncate(time.Hour)
			doc := fmt.Sprintf(`{"name": "browser-upgrade", "targets": ["shop"], "start": %q, "end": %q}`,
				start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339))
			tb.run(
				chromedp.Click(chromedp.CSS(`nav a[href="/ui/settings"]`)),
				chromedp.WaitVisible(chromedp.CSS(`body[data-page="settings"] form#create-maintenance-windows`)),
				chromedp.SetValue(chromedp.ID("doc-maintenance-windows"), doc),
				chromedp.Click(chromedp.CSS(`form#create-maintenance-windows button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`body[data-page="settings"] section#maintenance-windows li[data-object]`)),
			)
			require.Contains(t, value(tb, chromedp.Text(chromedp.CSS(`section#maintenance-windows li[data-object]`))), "browser-upgrade")
			tb.shot("maintenance-window")
			// It went through the API: the API lists it.
			code, body := apiGet(t, s, "/api/v1/maintenance-windows")
			require.Equal(t, http.StatusOK, code, body)
			require.Contains(t, body, `"browser-upgrade"`)
		}},
		{"sign out and the session cookie no longer works", func(t *testing.T) {
			tb.t = t
			cookies, err := run(tb, cookiesOf(s.url+"/ui/"))
			require.NoError(t, err)
			session := cookieNamed(cookies, "upwatch_session")
			require.NotNil(t, session, "signed in, the browser holds the session cookie")
			require.True(t, session.HTTPOnly)
			require.Equal(t, http.StatusOK, getWithSession(t, s.url+"/ui/", session.Value), "the cookie works before signing out")

			tb.run(
				chromedp.Click(chromedp.CSS(`form#signout button[type="submit"]`)),
				chromedp.WaitVisible(chromedp.CSS(`body[data-page="signin"] form#signin`)),
			)
			cookies, err = run(tb, cookiesOf(s.url+"/ui/"))
			require.NoError(t, err)
			require.Nil(t, cookieNamed(cookies, "upwatch_session"), "the browser dropped the cookie")
			// A copy of the old cookie is refused: the session is gone on
			// the server, not only in the browser.
			require.Equal(t, http.StatusSeeOther, getWithSession(t, s.url+"/ui/", session.Value))
			require.Equal(t, http.StatusSeeOther, getWithSession(t, s.url+"/ui/fragments/targets", session.Value))
			tb.run(
				chromedp.Navigate(s.url+"/ui/incidents"),
				chromedp.WaitVisible(chromedp.CSS(`body[data-page="signin"] form#signin`)),
			)
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.f) {
			tb.t = t
			return // each step builds on the one before
		}
	}
	tb.t = t
}

func cookiesOf(url string) chromedp.Action[[]*network.Cookie] {
	get := cdpCall(network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	return func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := get(ctx, t)
		return res.Cookies, err
	}
}

func cookieNamed(cs []*network.Cookie, name string) *network.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// getWithSession asks for a page with the session cookie, without
// following redirects, and returns the status.
func getWithSession(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: "upwatch_session", Value: token})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/ui/signin"), resp.Header.Get("Location"))
	}
	return resp.StatusCode
}

// apiGet reads the API with the service's admin key.
func apiGet(t *testing.T, s *service, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}
