package secret_test

import (
	"testing"

	"github.com/upwatch/upwatch/secret"
)

func TestEachTagged(t *testing.T) {
	type dest struct {
		URL   string `secret:"url"`
		Token string `secret:"token"`
		Plain string
	}
	type group struct {
		Name  string
		Dests []dest
		Other []dest
	}
	g := group{Name: "n", Dests: []dest{{URL: "https://h.example/a/SECRET1", Token: "SECRET2", Plain: "p"}}, Other: []dest{{Token: "SECRET3"}}}
	var got []string
	secret.EachTagged(&g, func(kind string, f *string) {
		got = append(got, kind+"="+*f)
		*f = secret.RedactTagged(kind, *f)
	})
	want := []string{"url=https://h.example/a/SECRET1", "token=SECRET2", "url=", "token=SECRET3"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field %d: got %q, want %q", i, got[i], want[i])
		}
	}
	if g.Dests[0].Plain != "p" || g.Name != "n" {
		t.Errorf("untagged fields changed: %+v", g)
	}
	d := g.Dests[0]
	if !secret.IsRedactedTagged(secret.TagURL, d.URL) || !secret.IsRedactedTagged(secret.TagToken, d.Token) {
		t.Errorf("not redacted: %+v", d)
	}
	if secret.IsRedactedTagged(secret.TagToken, "xoxb-1") || g.Other[0].URL != "" {
		t.Errorf("a real token is taken for a redacted one, or empty became something")
	}
	if secret.RedactTagged(secret.TagToken, "a") == secret.RedactTagged(secret.TagToken, "b") {
		t.Errorf("two tokens redact alike")
	}
}
