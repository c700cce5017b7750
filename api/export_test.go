package api

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/prober"
)

func TestExport(t *testing.T) {
	h := newHarness(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	h.setClock(t0.Add(24 * time.Hour))
	h.configTarget("web", nil)
	// 12 000 checks (more than two store pages), every 5 s; the first
	// minute fails.
	n := h.checks("web", t0, t0.Add(1000*time.Minute), 5*time.Second, nil, [2]time.Time{t0, t0.Add(time.Minute)})
	require.Equal(t, 12000, n)
	key := h.key(tenantA, ScopeRead)
	q := "from=" + url.QueryEscape(t0.Format(time.RFC3339))

	r := h.do(http.MethodGet, Prefix+"/targets/web/export?format=csv&"+q, key, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, mediaCSV, r.Header.Get("Content-Type"))
	require.Contains(t, r.Header.Get("Content-Disposition"), `filename="web_20260301T000000Z_20260302T000000Z.csv"`)
	rows, err := csv.NewReader(bytes.NewReader(r.Body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+12000)
	require.Equal(t, csvColumns, rows[0])
	require.Equal(t, []string{"2026-03-01T00:00:00Z", "web", "local", "false", "0.04", "0.001", "0.005", "0", "0.03", "0",
		"503", "status", "status 503", "", "", ""}, rows[1])
	require.Equal(t, "true", rows[13][3])
	require.Equal(t, t0.Add(1000*time.Minute-5*time.Second).Format(time.RFC3339Nano), rows[12000][0])

	r = h.do(http.MethodGet, Prefix+"/targets/web/export?format=ndjson&"+q, key, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, mediaNDJSON, r.Header.Get("Content-Type"))
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	lines := 0
	var last sampleDoc
	for sc.Scan() {
		require.NoError(t, json.Unmarshal(sc.Bytes(), &last))
		if lines == 0 {
			require.False(t, last.Success)
			require.Equal(t, "status 503", last.Error)
		}
		lines++
	}
	require.Equal(t, 12000, lines)
	require.Equal(t, 0.04, last.DurationSeconds)

	// Nothing in range: a CSV with only its header; an empty NDJSON body.
	empty := "from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z"
	r = h.do(http.MethodGet, Prefix+"/targets/web/export?"+empty, key, nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, strings.Join(csvColumns, ",")+"\n", string(r.Body))
	r = h.do(http.MethodGet, Prefix+"/targets/web/export?format=ndjson&"+empty, key, nil)
	require.Empty(t, r.Body)

	r = h.do(http.MethodGet, Prefix+"/targets/web/export?format=xml", key, nil)
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Equal(t, "query.format", r.problem(t).Errors[0].Path)
	r = h.do(http.MethodGet, Prefix+"/targets/web/export", "", nil)
	require.Equal(t, http.StatusUnauthorized, r.Status)
}

func TestCSVSafe(t *testing.T) {
	var b bytes.Buffer
	w := newCSVSampleWriter(&b)
	require.NoError(t, w.Write(prober.Result{TargetID: "x", Start: time.Unix(0, 0), Error: `=HYPERLINK("http://evil")`, ErrorClass: prober.ClassHTTP}))
	require.NoError(t, w.Write(prober.Result{TargetID: "x", Start: time.Unix(0, 0), Error: "line one\nline, \"two\""}))
	require.NoError(t, w.Flush())
	rows, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Equal(t, `'=HYPERLINK("http://evil")`, rows[1][12])
	require.Equal(t, "line one\nline, \"two\"", rows[2][12])
}
