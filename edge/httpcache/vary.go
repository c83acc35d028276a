package httpcache

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	return string(AppendVaryKey(make([]byte, 0, 64), names, reqH))
}

// AppendVaryKey appends VaryKey(names, reqH) to dst. A cache hit builds
// its key in a buffer of its own with it: the normalised value of a
// one-line field comes from a memo, so that a hit allocates nothing.
func AppendVaryKey(dst []byte, names []string, reqH http.Header) []byte {
	for _, n := range names {
		dst = append(dst, n...)
		vals, ok := reqH[n]
		if !ok {
			dst = append(dst, "\x00absent\n"...)
			continue
		}
		dst = append(dst, ':')
		weighted := weightedLists[n]
		if len(vals) == 1 && !weighted && strings.IndexAny(vals[0], " \t") < 0 {
			// No whitespace: already what normalising would make of it.
			dst = append(dst, vals[0]...)
			dst = append(dst, '\n')
			continue
		}
		if len(vals) == 1 {
			if v, ok := normMemo.get(n, vals[0]); ok {
				dst = append(dst, v...)
				dst = append(dst, '\n')
				continue
			}
		}
		elems := listElements(vals)
		if weighted {
			elems = normalizeWeighted(elems)
		}
		norm := strings.Join(elems, ",")
		if len(vals) == 1 {
			normMemo.put(n, vals[0], norm)
		}
		dst = append(dst, norm...)
		dst = append(dst, '\n')
	}
	return dst
}

// memo maps (field name, one-line value) to the normalised value. Clients
// send few distinct Accept-Encoding and Accept-Language values (one per
// browser build), so it stays small; it holds at most memoMax, after
// which new values are normalised each time, so that a client sending
// random values costs only its own requests. Readers take the current
// map without a lock; a writer copies it.
type memo struct {
	m  atomic.Pointer[map[memoKey]string]
	mu sync.Mutex
}

type memoKey struct{ name, value string }

const memoMax = 1024

var normMemo memo

func (c *memo) get(name, value string) (string, bool) {
	m := c.m.Load()
	if m == nil {
		return "", false
	}
	v, ok := (*m)[memoKey{name, value}]
	return v, ok
}

func (c *memo) put(name, value, norm string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil && len(*old) >= memoMax {
		return
	}
	m := make(map[memoKey]string, 1)
	if old != nil {
		m = make(map[memoKey]string, len(*old)+1)
		for k, v := range *old {
			m[k] = v
		}
	}
	// The request's strings may live in a server's reused buffer.
	m[memoKey{strings.Clone(name), strings.Clone(value)}] = strings.Clone(norm)
	c.m.Store(&m)
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
