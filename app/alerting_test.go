package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/upwatch/upwatch/alerting"
	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/webhook"
	"github.com/upwatch/upwatch/config"
	"github.com/upwatch/upwatch/prober"
	"github.com/upwatch/upwatch/secret"
)

// Webhooks dial through the checks' SSRF guard: with private targets not
// allowed, a webhook at a refused address fails for good (retry false, so
// the dispatcher settles it as failed) and sends nothing; allowed, it is
// delivered.
func TestWebhookSSRFGuard(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	cfg := &config.Config{Alerting: config.Alerting{Webhook: &webhook.Config{URL: srv.URL + "/hook", Secret: secret.New("whsec")}}}
	msg := notify.Message{Key: "k", Kind: notify.KindDown, To: notify.Recipient{Name: "ops"}}

	n := buildNotifiers(cfg, prober.New(prober.Options{}))[alerting.ChannelWebhook]
	retry, err := n.Notify(context.Background(), msg)
	require.ErrorIs(t, err, prober.ErrBlocked)
	require.False(t, retry, "a refused address is a permanent failure")
	require.Zero(t, hits.Load())

	n = buildNotifiers(cfg, prober.New(prober.Options{AllowPrivate: true}))[alerting.ChannelWebhook]
	_, err = n.Notify(context.Background(), msg)
	require.NoError(t, err)
	require.EqualValues(t, 1, hits.Load())
}
