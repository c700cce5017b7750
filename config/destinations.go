package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/upwatch/upwatch/alerting/notify"
	"github.com/upwatch/upwatch/alerting/notify/alertmanager"
	"github.com/upwatch/upwatch/alerting/notify/discord"
	"github.com/upwatch/upwatch/alerting/notify/ntfy"
	"github.com/upwatch/upwatch/alerting/notify/opsgenie"
	"github.com/upwatch/upwatch/alerting/notify/pagerduty"
	"github.com/upwatch/upwatch/alerting/notify/slack"
	"github.com/upwatch/upwatch/alerting/notify/teams"
	"github.com/upwatch/upwatch/alerting/notify/telegram"
	"github.com/upwatch/upwatch/internal/invalid"
	"github.com/upwatch/upwatch/secret"
)

// Destinations are a contact group's chat and paging destinations, one
// list per channel; each field's YAML name is its channel's name (what an
// alert policy's channels list). This struct is the one list of those
// channels: validation, recipients and DestinationChannels walk it.
// Credentials are fields tagged secret:"url" or secret:"token": sealed at
// rest and redacted in API answers like a group's webhooks.
type Destinations struct {
	Slack        []slack.Destination        `yaml:"slack,omitempty"`
	Teams        []teams.Destination        `yaml:"teams,omitempty"`
	Discord      []discord.Destination      `yaml:"discord,omitempty"`
	Telegram     []telegram.Destination     `yaml:"telegram,omitempty"`
	PagerDuty    []pagerduty.Destination    `yaml:"pagerduty,omitempty"`
	Opsgenie     []opsgenie.Destination     `yaml:"opsgenie,omitempty"`
	Ntfy         []ntfy.Destination         `yaml:"ntfy,omitempty"`
	Alertmanager []alertmanager.Destination `yaml:"alertmanager,omitempty"`
}

// validator is what every destination type implements: problems as
// "field: message" errors, joined.
type validator interface{ Validate() error }

// each calls f with every destination list: its channel and the list.
func (d *Destinations) each(f func(channel string, list reflect.Value)) {
	v := reflect.ValueOf(d).Elem()
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		f(name, v.Field(i))
	}
}

// DestinationChannels are the channels a contact group's destinations
// are told on, in declaration order.
func DestinationChannels() []string {
	var out []string
	(&Destinations{}).each(func(ch string, _ reflect.Value) { out = append(out, ch) })
	return out
}

// Clone returns d with its own lists (elements are flat values), so the
// result's fields can be redacted without touching d's.
func (d Destinations) Clone() Destinations {
	c := d
	(&c).each(func(_ string, list reflect.Value) {
		if list.IsNil() {
			return
		}
		cp := reflect.MakeSlice(list.Type(), list.Len(), list.Len())
		reflect.Copy(cp, list)
		list.Set(cp)
	})
	return c
}

// Recipients returns one recipient per destination, named name, with its
// channel and the destination as JSON (its Endpoint).
func (d Destinations) Recipients(name string) []notify.Recipient {
	var out []notify.Recipient
	d.each(func(ch string, list reflect.Value) {
		for i := range list.Len() {
			b, err := json.Marshal(list.Index(i).Interface())
			if err != nil {
				continue // flat structs of strings and ints always marshal
			}
			out = append(out, notify.Recipient{Name: name, Channel: ch, Endpoint: string(b)})
		}
	})
	return out
}

// eachSecret calls f with every credential field of every destination:
// its path below the group ("slack[1].token"), its kind (secret.TagURL,
// secret.TagToken) and the field.
func (d *Destinations) eachSecret(f func(path, kind string, field *string)) {
	d.each(func(ch string, list reflect.Value) {
		for i := range list.Len() {
			item := list.Index(i)
			t := item.Type()
			for j := range t.NumField() {
				kind := t.Field(j).Tag.Get("secret")
				if kind == "" || item.Field(j).Kind() != reflect.String {
					continue
				}
				name, _, _ := strings.Cut(t.Field(j).Tag.Get("yaml"), ",")
				f(fmt.Sprintf("%s[%d].%s", ch, i, name), kind, item.Field(j).Addr().Interface().(*string))
			}
		}
	})
}

// isReference reports whether a credential is written as env:NAME or
// file:/path (secret.Parse).
func isReference(s string) bool {
	return strings.HasPrefix(s, "env:") || strings.HasPrefix(s, "file:")
}

// resolveSecrets replaces credentials written as env:NAME or file:/path in
// the config file by what they name, as the providers' secrets are; path
// prefixes every error ("contact_groups[0]"), which names the variable or
// file, never a value.
func (d *Destinations) resolveSecrets(path string) []invalid.Field {
	var errs []invalid.Field
	d.eachSecret(func(p, _ string, f *string) {
		if !isReference(*f) {
			return
		}
		v, err := secret.Parse(*f)
		if err != nil {
			errs = append(errs, invalid.Field{Path: path + "." + p, Msg: err.Error()})
			return
		}
		*f = v.Reveal()
	})
	return errs
}

// validate checks every destination; path prefixes every error
// ("contact_groups[0]" gives "contact_groups[0].slack[1].channel").
func (d Destinations) validate(path string) []invalid.Field {
	var errs []invalid.Field
	// A redacted credential sent back for a destination that has none
	// stored (Keep puts stored ones back before this runs), or a reference
	// sent to the API (the config file's are resolved at load), is the one
	// problem of its field.
	bad := map[string]bool{}
	d.eachSecret(func(p, kind string, f *string) {
		switch {
		case *f != "" && secret.IsRedactedTagged(kind, *f):
			errs = append(errs, invalid.Field{Path: path + "." + p,
				Msg: "is a redacted value: send the credential itself (on update, a stored one's redacted form keeps it)"})
		case isReference(*f):
			errs = append(errs, invalid.Field{Path: path + "." + p,
				Msg: "env: and file: references are for the config file; send the credential itself"})
		default:
			return
		}
		bad[p] = true
	})
	d.each(func(ch string, list reflect.Value) {
		for i := range list.Len() {
			p := fmt.Sprintf("%s[%d]", ch, i)
			if err := list.Index(i).Interface().(validator).Validate(); err != nil {
				for _, e := range unjoin(err) {
					if f := p + "." + fieldOf(e); !bad[f] {
						errs = append(errs, invalid.Field{Path: path + "." + f, Msg: msgOf(e)})
					}
				}
			}
		}
	})
	return errs
}
