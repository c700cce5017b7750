package smtp_test

import (
	"context"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify/smtp"
)

const python = "/usr/bin/python3"

// TestAgainstAiosmtpd sends through a real SMTP server: Debian's aiosmtpd,
// started on 127.0.0.1 with a free port, writing to a Maildir in
// t.TempDir(). Skipped when aiosmtpd is missing, unless
// UPWATCH_REQUIRE_SMTP_SINK is set (CI), which makes it fail instead.
// Install: apt-get install -y python3-aiosmtpd.
func TestAgainstAiosmtpd(t *testing.T) {
	if err := exec.Command(python, "-c", "import aiosmtpd").Run(); err != nil {
		msg := "aiosmtpd unavailable (" + python + " -c 'import aiosmtpd': " + err.Error() + "); install python3-aiosmtpd"
		if os.Getenv("UPWATCH_REQUIRE_SMTP_SINK") != "" {
			t.Fatal(msg + " (UPWATCH_REQUIRE_SMTP_SINK is set)")
		}
		t.Skip(msg)
	}
	port := freePort(t)
	maildir := filepath.Join(t.TempDir(), "maildir") // aiosmtpd creates it with new/cur/tmp
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, python, "-m", "aiosmtpd", "-n",
		"-l", "127.0.0.1:"+strconv.Itoa(port), "-c", "aiosmtpd.handlers.Mailbox", maildir)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting aiosmtpd: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("aiosmtpd output:\n%s", logs.String())
		}
	})
	waitListening(t, port)

	c := smtp.Config{Host: "127.0.0.1", Port: port, From: "alerts@upwatch.test", FromName: "upwatch",
		StartTLS: smtp.StartTLSOpportunistic} // aiosmtpd without a certificate offers no STARTTLS
	sendCtx, sendCancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer sendCancel()
	if retry, err := smtp.New(c, nil).Notify(sendCtx, message()); err != nil {
		t.Fatalf("Notify: %v (retry %v)", err, retry)
	}

	files, err := filepath.Glob(filepath.Join(maildir, "new", "*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("maildir/new holds %v (%v), want one message", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("stored message does not parse: %v\n%s", err, data)
	}
	// aiosmtpd's Mailbox records the envelope in X-MailFrom and X-RcptTo.
	checkMessage(t, received{From: msg.Header.Get("X-MailFrom"), To: msg.Header.Get("X-RcptTo"), Data: string(data)})
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts on port (a readiness check,
// not a timing assertion: the bound only keeps a broken start from hanging).
func waitListening(t *testing.T, port int) {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return
		}
	}
	t.Fatalf("aiosmtpd did not start listening on %s", addr)
}
