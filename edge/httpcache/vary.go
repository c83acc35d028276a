package httpcache

import (
	"net/http"
	"sort"
	"strconv"
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
// request's values of each field, normalised so that requests RFC 9111
// §4.1 calls equivalent share one variant (combined lines, whitespace
// around list elements dropped and runs of it collapsed, and for
// Accept-Language and Accept-Encoding the order, case and spacing of
// their weighted elements). A missing field differs from an empty one.
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
		weighted := weightedLists[n]
		if len(vals) == 1 && !weighted && strings.IndexAny(vals[0], " \t") < 0 {
			// No whitespace: already what normalising would make of it.
			b.WriteString(vals[0])
			b.WriteByte('\n')
			continue
		}
		elems := listElements(vals)
		if weighted {
			elems = normalizeWeighted(elems)
		}
		for i, e := range elems {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(e)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// weightedLists are the selecting fields whose elements are
// case-insensitive tokens with a weight and whose order means nothing
// beyond that weight (RFC 9110 §12.5.3, §12.5.4).
var weightedLists = map[string]bool{"Accept-Language": true, "Accept-Encoding": true}

// listElements splits field lines at commas outside quoted strings and
// trims and collapses the whitespace of each element.
func listElements(lines []string) []string {
	var out []string
	for _, line := range lines {
		start, inQuote := 0, false
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case c == '\\' && inQuote:
				i++
			case c == '"':
				inQuote = !inQuote
			case c == ',' && !inQuote:
				out = append(out, collapse(line[start:i]))
				start = i + 1
			}
		}
		out = append(out, collapse(line[start:]))
	}
	return out
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// normalizeWeighted lowercases the elements, removes the spaces around
// ';' and '=', writes weights canonically (q=1 is dropped, q=0.50 is
// q=0.5), drops empty elements, and sorts by weight, then name.
func normalizeWeighted(elems []string) []string {
	type item struct {
		name, params string
		q            float64
	}
	items := make([]item, 0, len(elems))
	for _, e := range elems {
		if e == "" {
			continue
		}
		parts := strings.Split(strings.ToLower(e), ";")
		it := item{name: strings.TrimSpace(parts[0]), q: 1}
		var params []string
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(p, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if k == "q" {
				if q, err := strconv.ParseFloat(v, 64); err == nil && q >= 0 && q <= 1 {
					it.q = q
					continue
				}
			}
			params = append(params, k+"="+v)
		}
		if it.q != 1 {
			params = append(params, "q="+strconv.FormatFloat(it.q, 'f', -1, 64))
		}
		it.params = strings.Join(params, ";")
		items = append(items, it)
	}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].q != items[j].q {
			return items[i].q > items[j].q
		}
		return items[i].name < items[j].name
	})
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.name
		if it.params != "" {
			out[i] += ";" + it.params
		}
	}
	return out
}
