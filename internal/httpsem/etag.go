package httpsem

import "strings"

// An entity-tag is handled as the string it is sent as: the opaque-tag with
// its quotes, and the W/ prefix when weak (RFC 9110 §8.8.3). Keeping that
// form lets a stored ETag field be compared as is, without a parsed copy.

// scanETag reads one entity-tag from the start of s. An opaque-tag may hold
// any etagc, commas included, so only the closing quote ends it; W/ is
// case-sensitive (RFC 9110 §8.8.3).
func scanETag(s string) (tag, rest string, ok bool) {
	start := s
	if strings.HasPrefix(s, "W/") {
		s = s[2:]
	}
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			n := len(start) - len(s) + i + 1
			return start[:n], start[n:], true
		case c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80:
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// validETag reports whether s is exactly one entity-tag.
func validETag(s string) bool {
	_, rest, ok := scanETag(s)
	return ok && rest == ""
}

// etagList walks the members of an If-Match or If-None-Match field ("*" /
// #entity-tag, RFC 9110 §13.1.1) over all its field lines. It yields
// substrings of the lines and lives on the caller's stack, so a walk
// allocates nothing: the edge makes one on cache hits.
type etagList struct {
	lines []string
	s     string // what is left of the current line
	stop  bool   // a malformed element was met: the list ends there
}

// next returns the next member, "*" or an entity-tag; false at the end of
// the list. Empty elements are skipped, as the #rule asks of recipients
// (RFC 9110 §5.6.1.2). A malformed element ends the list: what came before
// it counts, nothing after it does. A tag followed by something other than
// a comma is still taken (it was well-formed); a "*" so followed is not.
func (l *etagList) next() (string, bool) {
	for !l.stop {
		l.s = strings.TrimLeft(l.s, " \t,")
		if l.s == "" {
			if len(l.lines) == 0 {
				return "", false
			}
			l.s, l.lines = l.lines[0], l.lines[1:]
			continue
		}
		if l.s[0] == '*' {
			rest := strings.TrimLeft(l.s[1:], " \t")
			if rest != "" && rest[0] != ',' {
				l.stop = true
				return "", false
			}
			l.s = rest
			return "*", true
		}
		tag, rest, ok := scanETag(l.s)
		if !ok {
			l.stop = true
			return "", false
		}
		rest = strings.TrimLeft(rest, " \t")
		l.stop = rest != "" && rest[0] != ','
		l.s = rest
		return tag, true
	}
	return "", false
}

// listMatches reports whether an If-Match or If-None-Match field holds
// "*" or an entity-tag that matches etag, strongly or weakly.
func listMatches(lines []string, etag string, strong bool) bool {
	l := etagList{lines: lines}
	for {
		t, ok := l.next()
		if !ok {
			return false
		}
		if t == "*" || strong && strongMatch(t, etag) || !strong && weakMatch(t, etag) {
			return true
		}
	}
}

// weak reports whether a well-formed entity-tag is weak.
func weak(t string) bool { return strings.HasPrefix(t, "W/") }

// strongMatch is the strong comparison of RFC 9110 §8.8.3.2: both strong
// and character-for-character equal.
func strongMatch(a, b string) bool {
	return a == b && a != "" && !weak(a)
}

// weakMatch is the weak comparison: the opaque-tags are equal, W/ or not.
func weakMatch(a, b string) bool {
	return a != "" && strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}
