package statuspage

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/upwatch/upwatch/internal/invalid"
)

// Bounds on what a tenant may put on its pages: every count and length is
// capped so a page stays small (and cheap to render) whatever is stored.
const (
	MaxPagesPerTenant       = 50
	MaxComponents           = 100
	MaxTargetsPerComponent  = 50
	MaxTargetsPerPage       = 200
	MaxTitleLen             = 200
	MaxDescriptionLen       = 1000
	MaxURLLen               = 2048
	MaxDomainLen            = 253
	MaxIncidentsPerPage     = 500
	MaxUpdatesPerIncident   = 100
	MaxUpdateBodyLen        = 5000
	MinSlugLen, MaxSlugLen  = 3, 63
	shownIncidentDays       = 90 // resolved incidents stay on the page this long
	maxIncidentsShown       = 50
	maxMaintenanceAheadDays = 14
)

// Spec is what a status page shows besides its slug and domain (the
// registry keeps those in their own columns: they are unique across
// tenants). It is stored as JSON.
type Spec struct {
	Title      string      `json:"title"`
	LogoURL    string      `json:"logo_url,omitempty"`
	Components []Component `json:"components"`
}

// Component is a group of the tenant's targets shown as one row; its state
// is the worst of theirs.
type Component struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Targets     []string `json:"targets"` // target ids of the page's tenant
}

// Incident statuses, in the order an incident usually moves through them.
const (
	Investigating = "investigating"
	Identified    = "identified"
	Monitoring    = "monitoring"
	Resolved      = "resolved"
)

// Statuses are the valid incident update statuses.
var Statuses = []string{Investigating, Identified, Monitoring, Resolved}

var (
	slugRE  = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`)
	labelRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)
)

// ValidateSlug checks a page's slug: lower-case letters, digits and inner
// hyphens, MinSlugLen to MaxSlugLen long.
func ValidateSlug(slug string) []invalid.Field {
	switch {
	case len(slug) < MinSlugLen || len(slug) > MaxSlugLen:
		return []invalid.Field{{Path: "slug", Msg: fmt.Sprintf("must be %d to %d characters", MinSlugLen, MaxSlugLen)}}
	case !slugRE.MatchString(slug):
		return []invalid.Field{{Path: "slug", Msg: "must be lower-case letters, digits and hyphens, starting and ending with a letter or digit"}}
	}
	return nil
}

// NormalizeDomain lower-cases a custom domain and drops a trailing dot.
func NormalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// ValidateDomain checks a custom domain (already normalized); "" is none.
func ValidateDomain(d string) []invalid.Field {
	if d == "" {
		return nil
	}
	bad := []invalid.Field{{Path: "domain", Msg: "must be a host name such as status.example.com (no scheme, port or path)"}}
	if len(d) > MaxDomainLen || !strings.Contains(d, ".") {
		return bad
	}
	for _, l := range strings.Split(d, ".") {
		if !labelRE.MatchString(l) {
			return bad
		}
	}
	return nil
}

// Validate checks a spec; known says whether the tenant has a target id.
// Paths are JSON paths in the page document.
func (s *Spec) Validate(known func(id string) bool) []invalid.Field {
	var errs []invalid.Field
	add := func(path, format string, args ...any) {
		errs = append(errs, invalid.Field{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	text := func(path, v string, maxLen int, required bool) {
		switch {
		case required && strings.TrimSpace(v) == "":
			add(path, "is required")
		case utf8.RuneCountInString(v) > maxLen:
			add(path, "must be at most %d characters", maxLen)
		case !utf8.ValidString(v) || strings.ContainsAny(v, "\x00"):
			add(path, "must be valid UTF-8 text")
		}
	}
	text("title", s.Title, MaxTitleLen, true)
	if s.LogoURL != "" {
		u, err := url.Parse(s.LogoURL)
		switch {
		case len(s.LogoURL) > MaxURLLen:
			add("logo_url", "must be at most %d characters", MaxURLLen)
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil:
			add("logo_url", "must be an http or https URL without credentials")
		}
	}
	if len(s.Components) > MaxComponents {
		add("components", "at most %d components", MaxComponents)
		return errs
	}
	total := 0
	names := map[string]bool{}
	for i, c := range s.Components {
		p := fmt.Sprintf("components[%d]", i)
		text(p+".name", c.Name, MaxTitleLen, true)
		if names[c.Name] {
			add(p+".name", "is already the name of another component")
		}
		names[c.Name] = true
		text(p+".description", c.Description, MaxDescriptionLen, false)
		switch {
		case len(c.Targets) == 0:
			add(p+".targets", "must name at least one target")
		case len(c.Targets) > MaxTargetsPerComponent:
			add(p+".targets", "at most %d targets per component", MaxTargetsPerComponent)
			continue
		}
		total += len(c.Targets)
		seen := map[string]bool{}
		for j, id := range c.Targets {
			tp := fmt.Sprintf("%s.targets[%d]", p, j)
			switch {
			case seen[id]:
				add(tp, "target %q is listed twice", id)
			case !known(id):
				add(tp, "unknown target id %q", id)
			}
			seen[id] = true
		}
	}
	if total > MaxTargetsPerPage {
		add("components", "%d targets in all; at most %d per page", total, MaxTargetsPerPage)
	}
	return errs
}

// ValidateIncident checks an incident's title.
func ValidateIncident(title string) []invalid.Field {
	switch {
	case strings.TrimSpace(title) == "":
		return []invalid.Field{{Path: "title", Msg: "is required"}}
	case utf8.RuneCountInString(title) > MaxTitleLen || !utf8.ValidString(title):
		return []invalid.Field{{Path: "title", Msg: fmt.Sprintf("must be valid text of at most %d characters", MaxTitleLen)}}
	}
	return nil
}

// ValidateUpdate checks an incident update; path prefixes the field names
// ("" or "update.").
func ValidateUpdate(path, status, body string) []invalid.Field {
	var errs []invalid.Field
	valid := false
	for _, s := range Statuses {
		valid = valid || s == status
	}
	if !valid {
		errs = append(errs, invalid.Field{Path: path + "status", Msg: "must be one of " + strings.Join(Statuses, ", ")})
	}
	switch {
	case strings.TrimSpace(body) == "":
		errs = append(errs, invalid.Field{Path: path + "body", Msg: "is required"})
	case utf8.RuneCountInString(body) > MaxUpdateBodyLen || !utf8.ValidString(body):
		errs = append(errs, invalid.Field{Path: path + "body", Msg: fmt.Sprintf("must be valid text of at most %d characters", MaxUpdateBodyLen)})
	}
	return errs
}
