package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	e2eSendGridKey = "SG.e2e-test-key"
	e2eTwilioSID   = "AC0123456789abcdef0123456789abcdef"
	e2eTwilioToken = "twilio-e2e-token"
)

// delivery is one message a provider stand-in accepted.
type delivery struct {
	channel, to, kind, key, body string
	at                           time.Time
}

// providers stands in for SendGrid and Twilio, checking each request as
// their APIs document it, and counts what they accept.
type providers struct {
	t        *testing.T
	mu       sync.Mutex
	accepted []delivery
	attempts atomic.Int32 // email requests
	smsTries atomic.Int32 // SMS requests
	failing  atomic.Bool  // answer 500 to every email and SMS
}

func (p *providers) sendgrid(w http.ResponseWriter, r *http.Request) {
	p.attempts.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/v3/mail/send" ||
		r.Header.Get("Authorization") != "Bearer "+e2eSendGridKey || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		p.t.Errorf("sendgrid stand-in: unexpected %s %s auth=%q ct=%q", r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
		http.Error(w, `{"errors":[{"message":"bad request"}]}`, http.StatusBadRequest)
		return
	}
	var body struct {
		Personalizations []struct {
			To []struct{ Email string } `json:"to"`
		} `json:"personalizations"`
		From       struct{ Email string } `json:"from"`
		Subject    string                 `json:"subject"`
		Content    []struct{ Type, Value string }
		CustomArgs map[string]string `json:"custom_args"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Personalizations) != 1 ||
		len(body.Personalizations[0].To) != 1 || body.From.Email != "alerts@example.com" || body.Subject == "" ||
		len(body.Content) == 0 || body.Content[0].Type != "text/plain" || body.CustomArgs["notification_key"] == "" {
		p.t.Errorf("sendgrid stand-in: malformed body (%v): %+v", err, body)
		http.Error(w, `{"errors":[{"message":"bad body"}]}`, http.StatusBadRequest)
		return
	}
	if p.failing.Load() {
		http.Error(w, `{"errors":[{"message":"internal"}]}`, http.StatusInternalServerError)
		return
	}
	kind := strings.Split(body.CustomArgs["notification_key"], "|")[1] // incident|kind|slot|channel|address
	p.record(delivery{channel: "email", to: body.Personalizations[0].To[0].Email, kind: kind,
		key: body.CustomArgs["notification_key"], body: body.Content[0].Value, at: time.Now()})
	w.WriteHeader(http.StatusAccepted)
}

func (p *providers) twilio(w http.ResponseWriter, r *http.Request) {
	p.smsTries.Add(1)
	user, pass, ok := r.BasicAuth()
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+e2eTwilioSID+"/Messages.json" ||
		!ok || user != e2eTwilioSID || pass != e2eTwilioToken {
		p.t.Errorf("twilio stand-in: unexpected %s %s", r.Method, r.URL.Path)
		http.Error(w, `{"code":20003,"message":"Authenticate"}`, http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("To") == "" || r.PostForm.Get("From") != "+15005550006" || r.PostForm.Get("Body") == "" {
		p.t.Errorf("twilio stand-in: malformed form %v", r.PostForm)
		http.Error(w, `{"code":21604,"message":"bad"}`, http.StatusBadRequest)
		return
	}
	if p.failing.Load() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"code":20500,"message":"Internal Server Error"}`)
		return
	}
	body := r.PostForm.Get("Body")
	kind := "down"
	if strings.HasPrefix(body, "UP") || strings.Contains(body, "back up") {
		kind = "up"
	}
	n := p.record(delivery{channel: "sms", to: r.PostForm.Get("To"), kind: kind, body: body, at: time.Now()})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, `{"sid":"SM%032d","status":"queued"}`, n)
}

// record keeps d and returns how many deliveries there are now.
func (p *providers) record(d delivery) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accepted = append(p.accepted, d)
	return len(p.accepted)
}

func (p *providers) count(channel, kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, d := range p.accepted {
		if d.channel == channel && d.kind == kind {
			n++
		}
	}
	return n
}

func (p *providers) all() []delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]delivery(nil), p.accepted...)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// flakyTarget is a target the test takes down (503) and up at will.
func flakyTarget(t *testing.T) (*httptest.Server, *atomic.Bool) {
	t.Helper()
	down := &atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			http.Error(w, "out of order", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "fine")
	}))
	t.Cleanup(srv.Close)
	return srv, down
}

// buildBinary builds upwatch into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "upwatch")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

type binary struct {
	path, config string
	env          []string // added to the test's environment
	cmd          *exec.Cmd
	log          *os.File
}

func (b *binary) start(t *testing.T, listen string) {
	t.Helper()
	b.cmd = exec.Command(b.path, "serve", "-config", b.config)
	b.cmd.Env = append(os.Environ(), b.env...)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	require.NoError(t, b.cmd.Start())
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "upwatch never became ready")
}

func (b *binary) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGKILL))
	_ = b.cmd.Wait()
}

func (b *binary) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, b.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, b.cmd.Wait(), "a clean shutdown exits 0")
}

// TestAlertingEndToEnd runs the built binary against a flaky target with
// local SendGrid and Twilio stand-ins: one DOWN email and SMS per
// recipient, one UP with the outage's length; then kill -9 between
// detection and sending, restart, and each message still goes out once.
func TestAlertingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)

	target, down := flakyTarget(t)
	p := &providers{t: t}
	sg := httptest.NewServer(http.HandlerFunc(p.sendgrid))
	defer sg.Close()
	tw := httptest.NewServer(http.HandlerFunc(p.twilio))
	defer tw.Close()

	listen := freePort(t)
	cfg := filepath.Join(dir, "upwatch.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
listen: `+listen+`
data_dir: `+filepath.Join(dir, "data")+`
allow_private_targets: true
alerting:
  sendgrid: {api_key: "env:UPWATCH_SENDGRID_KEY", from: alerts@example.com, base_url: "`+sg.URL+`"}
  twilio: {account_sid: `+e2eTwilioSID+`, auth_token: `+e2eTwilioToken+`, from: "+15005550006", base_url: "`+tw.URL+`"}
contact_groups:
  - name: oncall
    members:
      - {name: Alice, email: alice@example.com, phone: "+4915112345678"}
      - {name: Bob, email: bob@example.com}
alert_policies:
  - {name: default, failure_threshold: 2, success_threshold: 2, channels: [email, sms], contact_groups: [oncall]}
targets:
  - name: shop
    kind: http
    interval: 1s
    timeout: 500ms
    alert_policy: default
    http: {url: "`+target.URL+`/"}
`), 0o600))
	logf, err := os.Create(filepath.Join(dir, "upwatch.log"))
	require.NoError(t, err)
	defer logf.Close()
	b := &binary{path: bin, config: cfg, log: logf, env: []string{"UPWATCH_SENDGRID_KEY=" + e2eSendGridKey}}
	defer func() {
		if t.Failed() {
			logs, _ := os.ReadFile(logf.Name())
			t.Logf("upwatch log:\n%s", logs)
		}
	}()

	b.start(t, listen)
	time.Sleep(2500 * time.Millisecond) // UP is established; UNKNOWN→UP tells nobody
	require.Empty(t, p.all())

	down.Store(true)
	wentDown := time.Now()
	require.Eventually(t, func() bool { return p.count("email", "down") == 2 && p.count("sms", "down") == 1 },
		20*time.Second, 50*time.Millisecond)
	t.Logf("DOWN reached the providers %s after the target failed", time.Since(wentDown).Round(time.Millisecond))
	down.Store(false)
	require.Eventually(t, func() bool { return p.count("email", "up") == 2 && p.count("sms", "up") == 1 },
		20*time.Second, 50*time.Millisecond)
	for _, d := range p.all() {
		if d.kind == "up" {
			require.Contains(t, d.body, "back up after", "%s to %s", d.channel, d.to)
		}
	}
	time.Sleep(1500 * time.Millisecond)
	require.Len(t, p.all(), 6, "exactly one DOWN and one UP per recipient and channel")

	// kill -9 between detection and sending: the providers fail, so the
	// DOWN messages wait in the outbox when the process dies. (A kill after a
	// provider accepted a message but before the outbox recorded it would
	// send that one again: no provider here offers idempotent sends.)
	p.failing.Store(true)
	emailsBefore, smsBefore := p.attempts.Load(), p.smsTries.Load()
	down.Store(true)
	require.Eventually(t, func() bool { return p.attempts.Load() >= emailsBefore+2 && p.smsTries.Load() > smsBefore },
		20*time.Second, 20*time.Millisecond, "the second DOWN was detected and tried")
	b.kill9(t)
	p.failing.Store(false)
	b.start(t, listen)
	require.Eventually(t, func() bool { return p.count("email", "down") == 4 && p.count("sms", "down") == 2 },
		30*time.Second, 50*time.Millisecond, "the queued DOWN messages go out after the restart")
	down.Store(false)
	require.Eventually(t, func() bool { return p.count("email", "up") == 4 && p.count("sms", "up") == 2 },
		30*time.Second, 50*time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	b.stop(t)

	// Never twice: every email key was accepted exactly once, and the SMS
	// count per kind and number matches the incidents.
	keys := map[string]int{}
	sms := map[string]int{}
	for _, d := range p.all() {
		if d.channel == "email" {
			keys[d.key]++
		} else {
			sms[d.kind+" "+d.to]++
		}
	}
	require.Len(t, keys, 8)
	for k, n := range keys {
		require.Equal(t, 1, n, "email %s accepted %d times", k, n)
	}
	require.Equal(t, map[string]int{"down +4915112345678": 2, "up +4915112345678": 2}, sms)

	logs, err := os.ReadFile(logf.Name())
	require.NoError(t, err)
	for _, secret := range []string{e2eSendGridKey, e2eTwilioToken, base64.StdEncoding.EncodeToString([]byte(e2eTwilioSID + ":" + e2eTwilioToken))} {
		require.NotContains(t, string(logs), secret, "a secret reached the log")
	}
}
