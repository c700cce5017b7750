package twilio

import (
	"strings"
	"unicode/utf8"
)

// MaxSegments is how many SMS segments a notification may take.
const MaxSegments = 2

// Characters of the GSM 03.38 default alphabet, and of its extension table
// (which cost two septets each). Text using anything else is sent as UCS-2.
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExt = "\f^{}\\[~]|€"
)

// Segment sizes: a single message, or each part of a concatenated one.
const (
	gsmSingle, gsmPart   = 160, 153 // septets
	ucs2Single, ucs2Part = 70, 67   // UTF-16 code units
)

// units returns how s is encoded and its length in that encoding's units
// (septets for GSM-7, UTF-16 code units for UCS-2).
func units(s string) (gsm bool, n int) {
	gsm = true
	for _, r := range s {
		switch {
		case strings.ContainsRune(gsmBasic, r):
			n++
		case strings.ContainsRune(gsmExt, r):
			n += 2
		default:
			gsm = false
		}
	}
	if gsm {
		return true, n
	}
	n = 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++ // surrogate pair
		}
	}
	return false, n
}

// Segments returns how many SMS segments s takes.
func Segments(s string) int {
	gsm, n := units(s)
	single, part := gsmSingle, gsmPart
	if !gsm {
		single, part = ucs2Single, ucs2Part
	}
	if n <= single {
		return 1
	}
	return (n + part - 1) / part
}

// Shorten returns s cut to fit in at most segments SMS segments (and never
// more than 320 characters), ending in an ellipsis when cut: "..." for
// GSM-7 text (so the cut does not switch the encoding), "…" otherwise. The
// result is valid UTF-8 when s is; invalid bytes are replaced.
func Shorten(s string, segments int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if segments < 1 {
		segments = 1
	}
	const maxChars = 320
	if Segments(s) <= segments && utf8.RuneCountInString(s) <= maxChars {
		return s
	}
	gsm, _ := units(s)
	ellipsis := "…"
	limit := ucs2Part * segments
	if segments == 1 {
		limit = ucs2Single
	}
	if gsm {
		ellipsis = "..."
		limit = gsmPart * segments
		if segments == 1 {
			limit = gsmSingle
		}
	}
	_, el := units(ellipsis)
	if !gsm {
		el = 1
	}
	budget := limit - el
	var b strings.Builder
	used, chars := 0, 0
	for _, r := range s {
		_, cost := units(string(r))
		if !gsm {
			cost = 1
			if r > 0xFFFF {
				cost = 2
			}
		}
		if used+cost > budget || chars+1 > maxChars-utf8.RuneCountInString(ellipsis) {
			break
		}
		b.WriteRune(r)
		used += cost
		chars++
	}
	return strings.TrimRight(b.String(), " \n\r\t") + ellipsis
}
