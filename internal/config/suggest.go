package config

import (
	"fmt"
	"slices"
	"strings"
)

// suggest names the known key closest to a misspelt one, since a typo is the usual cause.
func (d *decoder) suggest(path string) string {
	candidates := make([]string, 0, len(d.leaves)+len(d.sections))
	for k := range d.leaves {
		candidates = append(candidates, k)
	}
	for k := range d.sections {
		candidates = append(candidates, k)
	}
	slices.Sort(candidates) // so that ties always resolve the same way
	best, bestDist := "", 3 // more than two edits away is not worth suggesting
	for _, k := range candidates {
		if dist := editDistance(strings.ToLower(path), strings.ToLower(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
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
