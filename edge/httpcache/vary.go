package httpcache

import (
	"net/http"
	"sort"
	"strings"
)

// VaryNames returns the canonical, sorted, de-duplicated field names of a
// response's Vary, and whether it holds "*".
func VaryNames(h http.Header) (names []string, star bool) {
	seen := map[string]bool{}
	for _, line := range h.Values("Vary") {
		for _, n := range strings.Split(line, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if n == "*" {
				return nil, true
			}
			n = http.CanonicalHeaderKey(n)
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names, false
}

// VaryKey is the secondary key of a request for the given Vary names: the
// request's values of each field, normalised (RFC 9111 §4.1: combined
// lines, whitespace collapsed). A missing field differs from an empty one.
func VaryKey(names []string, reqH http.Header) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		vals, ok := reqH[n]
		if !ok {
			b.WriteString("\x00absent\n")
			continue
		}
		b.WriteByte(':')
		for i, v := range vals {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.Join(strings.Fields(v), " "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}
