// Package suggest finds the name a user probably meant when they misspelt
// one ("intervall" -> "interval"), for "did you mean" hints in errors.
package suggest

import "strings"

// Closest returns the candidate nearest to word by edit distance, or ""
// when none is near enough to be a likely typo: one edit for words of up
// to 3 letters, else 2, or a third of the word's length for long words.
func Closest(word string, candidates []string) string {
	word = strings.ToLower(word)
	limit := max(2, len(word)/3)
	if len(word) <= 3 {
		limit = 1
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := distance(word, strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, over bytes
// (field names are ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
