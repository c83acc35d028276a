package origin

import (
	"fmt"
	"strings"
)

// CacheRule sets Cache-Control for request paths matching a glob. It
// mirrors config.CacheRule, and has the same YAML shape, so that this
// package builds on its own.
type CacheRule struct {
	Path         string `yaml:"path" json:"path"`
	CacheControl string `yaml:"cacheControl" json:"cacheControl"`
}

// cacheRules maps request paths to a Cache-Control value; first match wins.
type cacheRules []cacheRule

type cacheRule struct {
	pattern string
	value   []string // shared, never mutated: assigned straight into headers
}

// compileRules validates rules before the server uses them.
func compileRules(rs []CacheRule) (cacheRules, error) {
	out := make(cacheRules, 0, len(rs))
	for i, r := range rs {
		if r.Path == "" {
			return nil, fmt.Errorf("cacheRules[%d]: empty path", i)
		}
		v := strings.TrimSpace(r.CacheControl)
		if v == "" {
			return nil, fmt.Errorf("cacheRules[%d] (%s): empty cacheControl", i, r.Path)
		}
		for j := 0; j < len(v); j++ {
			if c := v[j]; c < 0x20 && c != '\t' || c == 0x7f {
				return nil, fmt.Errorf("cacheRules[%d] (%s): control character in cacheControl", i, r.Path)
			}
		}
		out = append(out, cacheRule{pattern: r.Path, value: []string{v}})
	}
	return out, nil
}

// match returns the Cache-Control value for a request path, or nil.
func (rs cacheRules) match(p string) []string {
	for i := range rs {
		if globMatch(rs[i].pattern, p) {
			return rs[i].value
		}
	}
	return nil
}

// globMatch matches CloudFront-style path patterns, as the distribution
// behaviors do: '*' is any run of characters including '/', '?' is one
// character, everything else is literal. Linear time: on a mismatch it
// only backtracks to the last '*'.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				px++
				sx++
				continue
			default:
				if c == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		px = starP + 1
		starS++
		sx = starS
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}
