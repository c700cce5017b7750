package browser

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// TestPublicStatusPage reads a public status page as a visitor would,
// with JavaScript off (status pages must work without it): the page's
// title, its components in their state, an incident update and scheduled
// maintenance, all made through the API; then the Atom feed it links to.
func TestPublicStatusPage(t *testing.T) {
	tb := newTab(t)
	_, shopSrv := target(t)
	s := startService(t, `
allow_private_targets: true
targets:
  - name: shop
    kind: http
    interval: 1s
    timeout: 500ms
    http: {url: "`+shopSrv.URL+`/"}
  - name: api
    kind: http
    interval: 1s
    timeout: 500ms
    http: {url: "`+shopSrv.URL+`/api"}
`, "shop", "api")
	// Status pages come with package statuspage; a build without it has
	// no API for them. (Not GET /status/: with them, that is a 404 too.)
	code, page := apiPost(t, s, "/api/v1/status-pages", map[string]any{
		"slug": "example", "title": "Example Shop",
		"components": []any{
			map[string]any{"name": "Storefront", "description": "The shop's pages and checkout", "targets": []any{"shop"}},
			map[string]any{"name": "Public API", "targets": []any{"api"}},
		},
	})
	if code == http.StatusNotFound {
		t.Skip("status pages are not in this build (POST /api/v1/status-pages is 404): this test runs once package statuspage is merged")
	}
	require.Equal(t, http.StatusCreated, code, page)
	id, _ := page["id"].(string)
	require.NotEmpty(t, id, page)
	code, doc := apiPost(t, s, "/api/v1/status-pages/"+id+"/incidents", map[string]any{
		"title": "Slow checkout", "status": "monitoring", "body": "A fix is out; we are watching the checkout times.",
	})
	require.Equal(t, http.StatusCreated, code, doc)
	start := s.now().Add(48 * time.Hour).UTC().Truncate(time.Hour)
	code, doc = apiPost(t, s, "/api/v1/maintenance-windows", map[string]any{
		"name": "database upgrade", "targets": []any{"shop"},
		"start": start.Format(time.RFC3339), "end": start.Add(2 * time.Hour).Format(time.RFC3339),
	})
	require.Equal(t, http.StatusCreated, code, doc)

	// Pages are cached for a while: ask once the checks have the targets up.
	require.Eventually(t, func() bool {
		code, body := apiGet(t, s, "/api/v1/status")
		var st struct {
			Items []struct {
				State string `json:"state"`
			} `json:"items"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || len(st.Items) != 2 {
			return false
		}
		return st.Items[0].State == "up" && st.Items[1].State == "up"
	}, wait, 100*time.Millisecond, "the targets never came up")

	_, err := run(tb, cdpCall(emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}))
	require.NoError(t, err)
	tb.run(
		chromedp.Navigate(s.url+"/status/example"),
		chromedp.WaitVisible(chromedp.CSS(`section[aria-labelledby="components"]`)),
	)
	require.Equal(t, "Example Shop", value(tb, chromedp.Text(chromedp.CSS(`header h1`))))
	components := value(tb, chromedp.Text(chromedp.CSS(`section[aria-labelledby="components"]`)))
	require.Contains(t, components, "Storefront")
	require.Contains(t, components, "Public API")
	require.Contains(t, components, "Operational")
	require.Contains(t, value(tb, chromedp.Text(chromedp.CSS(`section[aria-labelledby="active"]`))), "Slow checkout")
	require.Contains(t, value(tb, chromedp.Text(chromedp.CSS(`section[aria-labelledby="maint"]`))), "Storefront")
	require.NotContains(t, value(tb, chromedp.OuterHTML(chromedp.CSS("html"))), shopSrv.URL, "the targets' URLs are not on the page")
	tb.docsShot("status-page")

	// The feed the page links to is Atom with the incident.
	href := value(tb, chromedp.AttributeValue(chromedp.CSS(`link[rel="alternate"][type="application/atom+xml"]`), "href"))
	require.True(t, href.Exists, "the page links its feed")
	resp, err := http.Get(resolve(s.url+"/status/example", href.Value))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var feed struct {
		XMLName xml.Name
		Title   string `xml:"title"`
		Entries []struct {
			Title string `xml:"title"`
		} `xml:"entry"`
	}
	require.NoError(t, xml.NewDecoder(resp.Body).Decode(&feed))
	require.Equal(t, "http://www.w3.org/2005/Atom feed", feed.XMLName.Space+" "+feed.XMLName.Local)
	require.NotEmpty(t, feed.Entries)
	require.Contains(t, fmt.Sprint(feed.Entries), "Slow checkout")
}

// apiPost writes to the API with the service's admin key and decodes the
// JSON answer.
func apiPost(t *testing.T, s *service, path string, body any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	if doc == nil {
		doc = map[string]any{"body": string(raw)}
	}
	return resp.StatusCode, doc
}
