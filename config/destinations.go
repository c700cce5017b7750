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

// validate checks every destination; path prefixes every error
// ("contact_groups[0]" gives "contact_groups[0].slack[1].channel").
func (d Destinations) validate(path string) []invalid.Field {
	var errs []invalid.Field
	d.each(func(ch string, list reflect.Value) {
		for i := range list.Len() {
			p := fmt.Sprintf("%s.%s[%d]", path, ch, i)
			item := list.Index(i)
			// A redacted credential sent back for a destination that has
			// none stored (Keep puts stored ones back before this runs) is
			// the one problem of its field.
			redacted := map[string]bool{}
			t := item.Type()
			for j := range t.NumField() {
				kind := t.Field(j).Tag.Get("secret")
				if s := item.Field(j).String(); kind != "" && s != "" && secret.IsRedactedTagged(kind, s) {
					name, _, _ := strings.Cut(t.Field(j).Tag.Get("yaml"), ",")
					redacted[name] = true
					errs = append(errs, invalid.Field{Path: p + "." + name,
						Msg: "is a redacted value: send the credential itself (on update, a stored one's redacted form keeps it)"})
				}
			}
			if err := item.Interface().(validator).Validate(); err != nil {
				for _, e := range unjoin(err) {
					if f := fieldOf(e); !redacted[f] {
						errs = append(errs, invalid.Field{Path: p + "." + f, Msg: msgOf(e)})
					}
				}
			}
		}
	})
	return errs
}
