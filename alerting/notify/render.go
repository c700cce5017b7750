package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed templates/*.tmpl
var defaultTemplates embed.FS

// Template parts, as they appear in file names: <kind>.<part>.tmpl.
const (
	partSubject = "subject"
	partText    = "txt"
	partHTML    = "html"
)

// Renderer fills a Message's Subject, Text and HTML from its other fields.
// Templates see the *Message as dot and two functions:
//
//	duration  a time.Duration as HumanDuration writes it ("12m 30s")
//	datetime  a time.Time in UTC as "2006-01-02 15:04:05 UTC"
type Renderer struct {
	kinds map[string]*kindTemplates
}

type kindTemplates struct {
	subject, text *texttemplate.Template
	html          *htmltemplate.Template
}

var funcs = map[string]any{
	"duration": HumanDuration,
	"datetime": func(t time.Time) string {
		if t.IsZero() {
			return "unknown"
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
}

// NewRenderer loads the built-in templates, then the overrides found in dir
// (none if dir is ""): files named <kind>.subject.tmpl, <kind>.txt.tmpl
// and <kind>.html.tmpl, the last parsed with html/template. Any other
// *.tmpl file in dir is an error, so a misspelt name is not silently
// ignored. Every template is executed once against a sample message, so a
// template that names a missing field fails here, not when a target goes
// down. Errors name the file.
func NewRenderer(dir string) (*Renderer, error) {
	r := &Renderer{kinds: map[string]*kindTemplates{}}
	for _, k := range Kinds {
		r.kinds[k] = &kindTemplates{}
		for _, p := range []string{partSubject, partText, partHTML} {
			name := k + "." + p + ".tmpl"
			src, err := fs.ReadFile(defaultTemplates, "templates/"+name)
			if err != nil {
				return nil, fmt.Errorf("built-in template %s: %w", name, err)
			}
			if err := r.set(k, p, "built-in "+name, string(src)); err != nil {
				return nil, err
			}
		}
	}
	if dir == "" {
		return r, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".tmpl") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		kind, part, ok := splitName(e.Name())
		if !ok {
			return nil, fmt.Errorf("%s: not a template name upwatch knows: want <kind>.<subject|txt|html>.tmpl with kind one of %s",
				path, strings.Join(Kinds, ", "))
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := r.set(kind, part, path, string(src)); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func splitName(name string) (kind, part string, ok bool) {
	base := strings.TrimSuffix(name, ".tmpl")
	i := strings.LastIndexByte(base, '.')
	if i < 0 {
		return "", "", false
	}
	kind, part = base[:i], base[i+1:]
	if _, known := knownKinds[kind]; !known {
		return "", "", false
	}
	switch part {
	case partSubject, partText, partHTML:
		return kind, part, true
	}
	return "", "", false
}

var knownKinds = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range Kinds {
		m[k] = true
	}
	return m
}()

// set parses src as part of kind, names errors after file, and tries it on
// a sample message.
func (r *Renderer) set(kind, part, file, src string) error {
	kt := r.kinds[kind]
	sample := sampleMessage(kind)
	var err error
	switch part {
	case partHTML:
		var t *htmltemplate.Template
		if t, err = htmltemplate.New(file).Funcs(funcs).Option("missingkey=error").Parse(src); err == nil {
			err = t.Execute(&bytes.Buffer{}, sample)
			kt.html = t
		}
	default:
		var t *texttemplate.Template
		if t, err = texttemplate.New(file).Funcs(funcs).Option("missingkey=error").Parse(src); err == nil {
			err = t.Execute(&bytes.Buffer{}, sample)
			if part == partSubject {
				kt.subject = t
			} else {
				kt.text = t
			}
		}
	}
	if err != nil {
		// Template errors start with "template: <name>:" already.
		if !strings.Contains(err.Error(), file) {
			return fmt.Errorf("%s: %w", file, err)
		}
		return err
	}
	return nil
}

func sampleMessage(kind string) *Message {
	return &Message{
		Key: "sample", Kind: kind, IncidentID: "inc-1",
		TargetID: "t-1", TargetName: "Example", TargetURL: "https://example.com/health",
		Cause:     "connect: connection refused",
		StartedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		Duration:  12*time.Minute + 30*time.Second,
		Link:      "https://upwatch.example/incidents/inc-1",
		Locations: []string{"eu-west", "us-east"},
		To:        Recipient{Name: "Ada", Email: "ada@example.com", Phone: "+15550100"},
	}
}

// Render fills m.Subject, m.Text and m.HTML from m's other fields and the
// templates for m.Kind. The subject is folded onto one line.
func (r *Renderer) Render(m *Message) error {
	kt, ok := r.kinds[m.Kind]
	if !ok {
		return fmt.Errorf("render: unknown message kind %q", m.Kind)
	}
	var subj, text, html bytes.Buffer
	if err := kt.subject.Execute(&subj, m); err != nil {
		return fmt.Errorf("render %s subject: %w", m.Kind, err)
	}
	if err := kt.text.Execute(&text, m); err != nil {
		return fmt.Errorf("render %s text: %w", m.Kind, err)
	}
	if err := kt.html.Execute(&html, m); err != nil {
		return fmt.Errorf("render %s html: %w", m.Kind, err)
	}
	m.Subject = strings.Join(strings.Fields(subj.String()), " ")
	m.Text = strings.TrimSpace(text.String()) + "\n"
	m.HTML = html.String()
	return nil
}

// HumanDuration writes d with its two largest units, dropping a zero
// second unit: "45s", "12m 30s", "1h 2m", "2d 3h", "1h". Less than a
// second (or negative) is "0s".
func HumanDuration(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	units := []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}}
	for i, u := range units {
		if d < u.size {
			continue
		}
		s := fmt.Sprintf("%d%s", d/u.size, u.name)
		if i+1 < len(units) {
			next := units[i+1]
			if n := (d % u.size) / next.size; n > 0 {
				s += fmt.Sprintf(" %d%s", n, next.name)
			}
		}
		return s
	}
	return "0s"
}
