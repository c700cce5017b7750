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
	"github.com/upwatch/upwatch/alerting/notify/alertmanager"
	"github.com/upwatch/upwatch/alerting/notify/discord"
	"github.com/upwatch/upwatch/alerting/notify/ntfy"
	"github.com/upwatch/upwatch/alerting/notify/slack"
	"github.com/upwatch/upwatch/alerting/notify/teams"
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

// Every channel a contact group's destinations name has a notifier, and
// the ones that dial a URL the user gave (Slack and Teams and Discord
// webhooks, Alertmanager receivers, ntfy servers) go through the SSRF
// guard as webhooks do: refused for good, nothing sent; delivered once
// private targets are allowed.
func TestDestinationSSRFGuard(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	cfg := &config.Config{}
	guarded := buildNotifiers(cfg, prober.New(prober.Options{}))
	open := buildNotifiers(cfg, prober.New(prober.Options{AllowPrivate: true}))
	for _, ch := range config.DestinationChannels() {
		require.Contains(t, guarded, ch, "channel %s has no notifier", ch)
	}
	g := config.ContactGroup{Name: "ops", Destinations: config.Destinations{
		Slack:        []slack.Destination{{WebhookURL: srv.URL + "/slack"}},
		Teams:        []teams.Destination{{WebhookURL: srv.URL + "/teams"}},
		Discord:      []discord.Destination{{WebhookURL: srv.URL + "/discord"}},
		Ntfy:         []ntfy.Destination{{Server: srv.URL, Topic: "t"}},
		Alertmanager: []alertmanager.Destination{{URL: srv.URL + "/am"}},
	}}
	for _, r := range g.Destinations.Recipients(g.Name) {
		msg := notify.Message{Key: "k", Kind: notify.KindDown, Subject: "s", To: r}
		before := hits.Load()
		retry, err := guarded[r.Channel].Notify(context.Background(), msg)
		require.ErrorIs(t, err, prober.ErrBlocked, r.Channel)
		require.False(t, retry, "%s: a refused address is a permanent failure", r.Channel)
		require.Equal(t, before, hits.Load(), r.Channel)

		_, err = open[r.Channel].Notify(context.Background(), msg)
		require.NoError(t, err, r.Channel)
		require.Equal(t, before+1, hits.Load(), r.Channel)
	}
}
