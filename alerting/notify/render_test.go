package notify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
)

func sample(kind string) notify.Message {
	return notify.Message{
		Kind: kind, IncidentID: "inc-9", TargetName: "Shop <main>", TargetURL: "https://shop.example/",
		Cause:     "dial tcp 10.0.0.1:443: connect: connection refused",
		StartedAt: time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC),
		Duration:  12*time.Minute + 30*time.Second,
		Link:      "https://upwatch.example/incidents/inc-9",
	}
}

func TestDefaultsRenderEveryKind(t *testing.T) {
	r, err := notify.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	wantSubject := map[string]string{
		notify.KindDown:       "[upwatch] DOWN: Shop <main>",
		notify.KindUp:         "[upwatch] UP: Shop <main> is back up after 12m 30s",
		notify.KindReminder:   "[upwatch] Still DOWN: Shop <main> for 12m 30s",
		notify.KindDegraded:   "[upwatch] DEGRADED: Shop <main> is slow",
		notify.KindTLSExpiry:  "[upwatch] TLS certificate expiring: Shop <main>",
		notify.KindEscalation: "[upwatch] ESCALATION: Shop <main> down for 12m 30s",
	}
	for _, k := range notify.Kinds {
		t.Run(k, func(t *testing.T) {
			m := sample(k)
			if err := r.Render(&m); err != nil {
				t.Fatal(err)
			}
			if m.Subject != wantSubject[k] {
				t.Errorf("Subject = %q, want %q", m.Subject, wantSubject[k])
			}
			for _, want := range []string{"Shop <main>", "https://shop.example/", m.Link} {
				if !strings.Contains(m.Text, want) {
					t.Errorf("Text lacks %q:\n%s", want, m.Text)
				}
			}
			if strings.Contains(m.HTML, "Shop <main>") || !strings.Contains(m.HTML, "Shop &lt;main&gt;") {
				t.Errorf("HTML does not escape the target name:\n%s", m.HTML)
			}
			if !strings.Contains(m.HTML, `href="https://upwatch.example/incidents/inc-9"`) {
				t.Errorf("HTML lacks the link:\n%s", m.HTML)
			}
			if k == notify.KindDown || k == notify.KindUp {
				if !strings.Contains(m.Text, m.Cause) || !strings.Contains(m.Text, "2024-03-04 05:06:07 UTC") {
					t.Errorf("Text lacks cause or start:\n%s", m.Text)
				}
			}
			if k == notify.KindUp && !strings.Contains(m.Text, "back up after 12m 30s") {
				t.Errorf("UP text lacks the duration:\n%s", m.Text)
			}
		})
	}
}

func TestRenderUnknownKind(t *testing.T) {
	r, err := notify.NewRenderer("")
	if err != nil {
		t.Fatal(err)
	}
	m := sample("sideways")
	if err := r.Render(&m); err == nil || !strings.Contains(err.Error(), "sideways") {
		t.Errorf("Render = %v, want an error naming the kind", err)
	}
}

func TestSubjectIsOneLine(t *testing.T) {
	r, _ := notify.NewRenderer("")
	m := sample(notify.KindDown)
	m.TargetName = "evil\r\nBcc: x@y.z"
	if err := r.Render(&m); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("Subject spans lines: %q", m.Subject)
	}
}

func TestOverrideFileIsUsed(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "down.subject.tmpl", "ALERT {{.TargetName}} {{duration .Duration}}")
	write(t, dir, "up.html.tmpl", "<b>{{.TargetName}}</b>")
	write(t, dir, "README.md", "not a template, ignored")
	r, err := notify.NewRenderer(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := sample(notify.KindDown)
	if err := r.Render(&m); err != nil {
		t.Fatal(err)
	}
	if m.Subject != "ALERT Shop <main> 12m 30s" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if !strings.Contains(m.Text, "DOWN: Shop <main>") {
		t.Errorf("parts without an override keep the default; Text = %q", m.Text)
	}
	u := sample(notify.KindUp)
	if err := r.Render(&u); err != nil {
		t.Fatal(err)
	}
	if u.HTML != "<b>Shop &lt;main&gt;</b>" {
		t.Errorf("HTML = %q", u.HTML)
	}
}

func TestBrokenOverrideNamesFile(t *testing.T) {
	for _, tc := range []struct{ name, file, src string }{
		{"parse error", "down.txt.tmpl", "{{.TargetName"},
		{"html parse error", "up.html.tmpl", "{{if .Link}}<a>"},
		{"unknown field", "reminder.subject.tmpl", "{{.NoSuchField}}"},
		{"unknown function", "degraded.txt.tmpl", "{{nope .Cause}}"},
		{"unknown kind", "sideways.txt.tmpl", "x"},
		{"unknown part", "down.body.tmpl", "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.file, tc.src)
			_, err := notify.NewRenderer(dir)
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, tc.file)) {
				t.Errorf("error %q does not name %s", err, tc.file)
			}
		})
	}
	if _, err := notify.NewRenderer(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing template dir must be an error")
	}
}

func write(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{time.Second, "1s"},
		{45 * time.Second, "45s"},
		{45*time.Second + 900*time.Millisecond, "45s"},
		{time.Minute, "1m"},
		{12*time.Minute + 30*time.Second, "12m 30s"},
		{time.Hour, "1h"},
		{time.Hour + 2*time.Minute + 59*time.Second, "1h 2m"},
		{time.Hour + 59*time.Second, "1h"},
		{24 * time.Hour, "1d"},
		{2*24*time.Hour + 3*time.Hour + 4*time.Minute, "2d 3h"},
		{400 * 24 * time.Hour, "400d"},
	} {
		if got := notify.HumanDuration(tc.d); got != tc.want {
			t.Errorf("HumanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
