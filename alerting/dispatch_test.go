package alerting_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/webhook"
	"github.com/upwatch/upwatch/internal/logbuf"
	"github.com/upwatch/upwatch/secret"
)

// A failing webhook is logged by its host and a hash, never by its secret
// path or token, whether the receiver answers an error or cannot be
// reached. The outbox key (which holds the URL) used to be logged as is.
func TestDispatcherNeverLogsWebhookSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // connection refused

	answering := srv.URL + "/services/T000/SECRETPATH1?token=SECRETTOKEN1"
	unreachable := gone.URL + "/hooks/SECRETPATH2?token=SECRETTOKEN2"
	r := route("web")
	r.Channels = []string{alerting.ChannelWebhook}
	r.Recipients = []notify.Recipient{{Name: "a", WebhookURL: answering}, {Name: "b", WebhookURL: unreachable}}
	s := openStore(t, "")
	e := newEngine(t, s, map[string]alerting.Route{"web": r})
	feed(t, e, "web", t0, "xxx")
	require.Len(t, queued(t, s), 2)

	logs := &logbuf.Buffer{}
	now := t0.Add(time.Hour)
	d := alerting.NewDispatcher(alerting.DispatcherOptions{
		Outbox:    s,
		Notifiers: map[string]notify.Notifier{alerting.ChannelWebhook: webhook.New(webhook.Config{Secret: secret.New("signing")}, nil)},
		Now:       func() time.Time { return now }, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	require.Eventually(t, func() bool {
		return strings.Count(logs.String(), "notification failed") == 2
	}, 30*time.Second, 10*time.Millisecond, "logs: %s", logs)
	cancel()
	<-done

	out := logs.String()
	for _, leak := range []string{"SECRETPATH", "SECRETTOKEN", "T000", "token="} {
		require.NotContains(t, out, leak)
	}
	require.Contains(t, out, srv.URL+"/…#"+secret.URLHash(answering))
	require.Contains(t, out, gone.URL+"/…#"+secret.URLHash(unreachable))
	for _, n := range queued(t, s) {
		require.NotContains(t, n.LastError, "SECRET")
	}
}
