package suggest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClosest(t *testing.T) {
	fields := []string{"id", "name", "kind", "interval", "timeout", "labels", "http", "alert_policy", "depends_on"}
	for word, want := range map[string]string{
		"intervall":    "interval",
		"Interval":     "interval",
		"timout":       "timeout",
		"alertpolicy":  "alert_policy",
		"depend_on":    "depends_on",
		"nme":          "name",
		"frequency":    "", // nothing close: no guess
		"x":            "",
		"tcp_settings": "",
	} {
		assert.Equal(t, want, Closest(word, fields), word)
	}
}

func TestDistance(t *testing.T) {
	assert.Equal(t, 0, distance("abc", "abc"))
	assert.Equal(t, 1, distance("abc", "abd"))
	assert.Equal(t, 1, distance("abc", "abcd"))
	assert.Equal(t, 3, distance("", "abc"))
	assert.Equal(t, 3, distance("kitten", "sitting"))
}
