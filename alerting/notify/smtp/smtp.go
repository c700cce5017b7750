// Package smtp sends notifications as email through an SMTP server, for
// self-hosters. Every attempt dials with a context and a deadline; TLS is
// required by default (STARTTLS, or implicit TLS on port 465) and
// credentials are never sent over plaintext unless explicitly allowed.
//
// The SMTP conversation and AUTH PLAIN/LOGIN are go-mail's smtp package
// (github.com/wneessen/go-mail/smtp), a maintained successor of the frozen
// net/smtp; the dial, deadlines, TLS policy and error classes are ours.
package smtp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/secret"
)

// STARTTLS modes.
const (
	StartTLSAlways        = "always"        // require it; fail if the server does not offer it (default)
	StartTLSOpportunistic = "opportunistic" // use it when offered
	StartTLSNever         = "never"         // never upgrade (local relays)
)

// Defaults.
const (
	DefaultPort    = 587
	ImplicitPort   = 465
	DefaultTimeout = 30 * time.Second
	DefaultHello   = "localhost"
)

// Config is an SMTP channel.
type Config struct {
	Host string `yaml:"host" json:"host"`
	Port int    `yaml:"port" json:"port"` // default 587; 465 means implicit TLS
	// Username and Password turn on AUTH (PLAIN, else LOGIN, as the server
	// offers).
	Username string        `yaml:"username" json:"username"`
	Password secret.Secret `yaml:"password" json:"password"`
	From     string        `yaml:"from" json:"from"`           // envelope and header sender
	FromName string        `yaml:"from_name" json:"from_name"` // optional display name
	// StartTLS is always (default), opportunistic or never.
	StartTLS string `yaml:"starttls" json:"starttls"`
	// ImplicitTLS speaks TLS from the first byte (SMTPS); on by default on
	// port 465.
	ImplicitTLS bool `yaml:"implicit_tls" json:"implicit_tls"`
	// AllowInsecureAuth permits AUTH over a connection without TLS.
	AllowInsecureAuth bool `yaml:"allow_insecure_auth" json:"allow_insecure_auth"`
	// Hello is the name sent with EHLO; default "localhost".
	Hello string `yaml:"hello" json:"hello"`
	// Timeout bounds one attempt when the context allows longer; default 30s.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

func (c Config) withDefaults() Config {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Port == ImplicitPort {
		c.ImplicitTLS = true
	}
	if c.StartTLS == "" {
		c.StartTLS = StartTLSAlways
	}
	if c.Hello == "" {
		c.Hello = DefaultHello
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate reports every problem, each naming its field.
func (c Config) Validate() error {
	var errs []error
	d := c.withDefaults()
	if c.Host == "" {
		errs = append(errs, errors.New("host: required"))
	} else if strings.ContainsAny(c.Host, " /:\r\n") && net.ParseIP(c.Host) == nil {
		errs = append(errs, fmt.Errorf("host: %q is not a host name or IP address (put the port in port)", c.Host))
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: %d is out of range", c.Port))
	}
	if c.From == "" {
		errs = append(errs, errors.New("from: required"))
	} else if err := validEmail(c.From); err != nil {
		errs = append(errs, fmt.Errorf("from: %w", err))
	}
	if strings.ContainsAny(c.FromName, "\r\n") {
		errs = append(errs, errors.New("from_name: must be one line"))
	}
	switch c.StartTLS {
	case "", StartTLSAlways, StartTLSOpportunistic, StartTLSNever:
	default:
		errs = append(errs, fmt.Errorf("starttls: %q is not one of always, opportunistic, never", c.StartTLS))
	}
	if c.Username == "" && !c.Password.IsZero() {
		errs = append(errs, errors.New("username: required when password is set"))
	}
	if c.Username != "" && !d.ImplicitTLS && d.StartTLS != StartTLSAlways && !c.AllowInsecureAuth {
		errs = append(errs, fmt.Errorf("allow_insecure_auth: with starttls %s the password could be sent in plaintext; use starttls always or implicit_tls, or set allow_insecure_auth", d.StartTLS))
	}
	if strings.ContainsAny(c.Hello, " \r\n") {
		errs = append(errs, fmt.Errorf("hello: %q is not a host name", c.Hello))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("timeout: must not be negative"))
	}
	return errors.Join(errs...)
}

func validEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return fmt.Errorf("%q is not a plain email address", s)
	}
	return nil
}

// Notifier sends one email per message, one connection per message.
type Notifier struct {
	cfg  Config
	tls  *tls.Config
	now  func() time.Time
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

var _ notify.Notifier = (*Notifier)(nil)

// New returns a notifier for cfg (which should have passed Validate).
// tlsConfig may be nil for the system roots; its ServerName defaults to
// cfg.Host.
func New(cfg Config, tlsConfig *tls.Config) *Notifier {
	cfg = cfg.withDefaults()
	if tlsConfig == nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tlsConfig = tlsConfig.Clone()
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = cfg.Host
	}
	return &Notifier{cfg: cfg, tls: tlsConfig, now: time.Now, dial: (&net.Dialer{}).DialContext}
}

// Error is an SMTP server reply that ended an attempt. Codes 5xx are
// permanent; others (4xx) are worth retrying.
type Error struct {
	Stage string // greeting, ehlo, starttls, auth, mail, rcpt, data
	Code  int
	Msg   string // the server's text, shortened, credentials removed
}

func (e *Error) Error() string { return fmt.Sprintf("smtp %s: %d %s", e.Stage, e.Code, e.Msg) }

// Temporary reports whether the server may accept later.
func (e *Error) Temporary() bool { return e.Code < 500 || e.Code > 599 }

// policyError marks refusals of our own (no TLS, no auth mechanism): not
// worth retrying until the configuration or server changes.
type policyError struct{ msg string }

func (e *policyError) Error() string { return "smtp: " + e.msg }

// Notify sends m to m.To.Email. 5xx replies and policy refusals are
// permanent; 4xx replies, network errors and timeouts are retryable.
func (n *Notifier) Notify(ctx context.Context, m notify.Message) (bool, error) {
	if err := validEmail(m.To.Email); err != nil {
		return false, fmt.Errorf("smtp: recipient: %w", err)
	}
	if m.Text == "" && m.HTML == "" {
		return false, errors.New("smtp: message has no content (not rendered?)")
	}
	msg, err := n.build(m)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	err = n.send(ctx, m.To.Email, msg)
	if err == nil {
		return false, nil
	}
	var se *Error
	var pe *policyError
	switch {
	case errors.As(err, &se):
		return se.Temporary(), err
	case errors.As(err, &pe):
		return false, err
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
	}
	return true, err
}

func (n *Notifier) send(ctx context.Context, to string, msg []byte) error {
	addr := net.JoinHostPort(n.cfg.Host, strconv.Itoa(n.cfg.Port))
	conn, err := n.dial(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp dial: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Cancellation interrupts any blocked read or write.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	secure := false
	if n.cfg.ImplicitTLS {
		tc := tls.Client(conn, n.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("smtp tls: %w", err)
		}
		conn, secure = tc, true
	}
	c, err := smtp.NewClient(conn, n.cfg.Host)
	if err != nil {
		return n.wrap("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(n.cfg.Hello); err != nil {
		return n.wrap("ehlo", err)
	}
	if !secure && n.cfg.StartTLS != StartTLSNever {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(n.tls); err != nil {
				return n.wrap("starttls", err)
			}
			secure = true
		} else if n.cfg.StartTLS == StartTLSAlways {
			return &policyError{"server does not offer STARTTLS and starttls is always"}
		}
	}
	if n.cfg.Username != "" {
		if !secure && !n.cfg.AllowInsecureAuth {
			return &policyError{"refusing to authenticate over a connection without TLS (allow_insecure_auth is off)"}
		}
		a, err := n.auth(c)
		if err != nil {
			return err
		}
		if err := c.Auth(a); err != nil {
			return n.wrap("auth", err)
		}
	}
	// go-mail's client sends the path as given: the brackets are ours.
	if err := c.Mail("<" + n.cfg.From + ">"); err != nil {
		return n.wrap("mail", err)
	}
	if err := c.Rcpt("<" + to + ">"); err != nil {
		return n.wrap("rcpt", err)
	}
	w, err := c.Data()
	if err != nil {
		return n.wrap("data", err)
	}
	if _, err := w.Write(msg); err != nil {
		return n.wrap("data", err)
	}
	if err := w.Close(); err != nil {
		return n.wrap("data", err)
	}
	// The message is accepted; a failing QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func (n *Notifier) auth(c *smtp.Client) (smtp.Auth, error) {
	ok, mechs := c.Extension("AUTH")
	if !ok {
		return nil, &policyError{"username is set but the server offers no AUTH"}
	}
	offered := strings.Fields(strings.ToUpper(mechs))
	user, pass := n.cfg.Username, n.cfg.Password.Reveal()
	// send has already refused plaintext unless allow_insecure_auth; the
	// mechanisms check it again.
	switch {
	case slices.Contains(offered, "PLAIN"):
		return smtp.PlainAuth("", user, pass, n.cfg.Host, n.cfg.AllowInsecureAuth), nil
	case slices.Contains(offered, "LOGIN"):
		return smtp.LoginAuth(user, pass, n.cfg.Host, n.cfg.AllowInsecureAuth), nil
	}
	return nil, &policyError{fmt.Sprintf("server offers AUTH %s; supported are PLAIN and LOGIN", notify.Snippet([]byte(mechs)))}
}

// wrap turns a server reply into an *Error with the credentials scrubbed
// from its text; other errors (network, protocol) are wrapped as they are.
func (n *Notifier) wrap(stage string, err error) error {
	var tp *textproto.Error
	if !errors.As(err, &tp) {
		return fmt.Errorf("smtp %s: %w", stage, err)
	}
	msg := tp.Msg
	if p := n.cfg.Password.Reveal(); p != "" {
		for _, s := range credentialForms(n.cfg.Username, p) {
			msg = strings.ReplaceAll(msg, s, secret.Redacted)
		}
	}
	return &Error{Stage: stage, Code: tp.Code, Msg: notify.Snippet([]byte(msg))}
}
