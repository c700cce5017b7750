package statuspage

import (
	"embed"
	"encoding/xml"
	"html/template"
	"strings"
	"time"
)

//go:embed templates/page.html
var templates embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"when":    func(t time.Time) string { return t.UTC().Format("Jan 2, 2006 15:04 UTC") },
	"join":    func(s []string) string { return strings.Join(s, ", ") },
}).ParseFS(templates, "templates/page.html"))

// The Atom feed (RFC 4287): one entry per incident shown on the page,
// its updates newest first in the content.
type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	Title   string      `xml:"title"`
	ID      string      `xml:"id"`
	Updated string      `xml:"updated"`
	Links   []atomLink  `xml:"link"`
	Author  atomAuthor  `xml:"author"`
	Entries []atomEntry `xml:"entry"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomAuthor struct {
	Name string `xml:"name"`
}

type atomEntry struct {
	Title     string    `xml:"title"`
	ID        string    `xml:"id"`
	Updated   string    `xml:"updated"`
	Published string    `xml:"published"`
	Link      atomLink  `xml:"link"`
	Content   atomText  `xml:"content"`
	Category  []atomCat `xml:"category"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

type atomCat struct {
	Term string `xml:"term,attr"`
}

func renderFeed(v view) ([]byte, error) {
	f := atomFeed{
		Title: v.Title + " status", ID: v.URL, Updated: v.Generated.Format(time.RFC3339),
		Links:  []atomLink{{Rel: "self", Type: "application/atom+xml", Href: v.FeedURL}, {Rel: "alternate", Type: "text/html", Href: v.URL}},
		Author: atomAuthor{Name: v.Title},
	}
	latest := time.Time{}
	for _, inc := range append(append([]incidentView{}, v.Active...), v.Past...) {
		var b strings.Builder
		for _, u := range inc.Updates {
			b.WriteString(u.At.UTC().Format("Jan 2, 15:04 UTC") + " — " + u.Status + ": " + u.Body + "\n\n")
		}
		link := v.URL + "#incident-" + inc.ID
		f.Entries = append(f.Entries, atomEntry{
			Title: "[" + inc.Status + "] " + inc.Title, ID: link,
			Updated: inc.Updated.UTC().Format(time.RFC3339), Published: inc.Start.UTC().Format(time.RFC3339),
			Link: atomLink{Rel: "alternate", Type: "text/html", Href: link}, Content: atomText{Type: "text", Body: strings.TrimSpace(b.String())},
			Category: []atomCat{{Term: inc.Status}},
		})
		if inc.Updated.After(latest) {
			latest = inc.Updated
		}
	}
	// A feed's updated is its newest entry's (or the page's build time
	// when it has none), so it changes only when an incident does.
	if !latest.IsZero() {
		f.Updated = latest.UTC().Format(time.RFC3339)
	}
	out, err := xml.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), out...), nil
}
