package smtp

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/upwatch/upwatch/alerting/notify"
)

// MessageID returns the Message-ID for an idempotency key: the same key
// always gives the same ID, so a retry the server already accepted can be
// recognised downstream. domain is the sender's domain.
func MessageID(key, domain string) string {
	if key == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		return "<" + hex.EncodeToString(b) + "@" + domain + ">"
	}
	sum := sha256.Sum256([]byte(key))
	return "<" + hex.EncodeToString(sum[:16]) + ".upwatch@" + domain + ">"
}

// build renders m as an RFC 5322 message: From, To, Subject, Date,
// Message-ID, X-Upwatch-Key, and a multipart/alternative body (text, then
// HTML) in quoted-printable, or text alone when there is no HTML.
func (n *Notifier) build(m notify.Message) ([]byte, error) {
	from := (&mail.Address{Name: n.cfg.FromName, Address: n.cfg.From}).String()
	to := (&mail.Address{Name: oneLine(m.To.Name), Address: m.To.Email}).String()
	domain := n.cfg.From[strings.LastIndexByte(n.cfg.From, '@')+1:]

	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from)
	h("To", to)
	h("Subject", mime.QEncoding.Encode("utf-8", oneLine(m.Subject)))
	h("Date", n.now().Format(time.RFC1123Z))
	h("Message-ID", MessageID(m.Key, domain))
	if k := headerValue(m.Key); k != "" {
		h("X-Upwatch-Key", k)
	}
	if id := headerValue(m.IncidentID); id != "" {
		h("X-Upwatch-Incident", id)
	}
	h("Auto-Submitted", "auto-generated")
	h("MIME-Version", "1.0")

	if m.HTML == "" {
		h("Content-Type", `text/plain; charset="utf-8"`)
		h("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Text); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	h("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	for _, p := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		if p.body == "" {
			continue
		}
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ + `; charset="utf-8"`},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		if err := writeQP(pw, p.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeQP(w io.Writer, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(strings.ToValidUTF8(s, "\uFFFD"))); err != nil {
		return err
	}
	return qp.Close()
}

// oneLine folds s onto one line, so no value can add a header.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// headerValue keeps the printable ASCII of s.
func headerValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r > '~' {
			return -1
		}
		return r
	}, s)
}
