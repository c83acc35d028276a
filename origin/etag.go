package origin

import "strings"

// etagList is a parsed If-Match / If-None-Match value: either "*" or a list
// of entity-tags (each with its quotes, weak ones with the W/ prefix).
type etagList struct {
	star bool
	tags []string
}

// parseETagList parses the field lines of an If-Match or If-None-Match
// header (RFC 9110 §13.1.1/§13.1.2). Parsing stops at the first malformed
// element: what came before still counts, the rest cannot match.
func parseETagList(lines []string) etagList {
	var l etagList
	for _, line := range lines {
		s := line
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			if s[0] == '*' {
				rest := strings.TrimLeft(s[1:], " \t")
				if rest != "" && rest[0] != ',' {
					return l
				}
				l.star = true
				s = rest
				continue
			}
			tag, rest, ok := scanETag(s)
			if !ok {
				return l
			}
			l.tags = append(l.tags, tag)
			s = strings.TrimLeft(rest, " \t")
			if s != "" && s[0] != ',' {
				return l
			}
		}
	}
	return l
}

// scanETag reads one entity-tag from the start of s.
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

// etagWeak reports whether a well-formed entity-tag is weak.
func etagWeak(t string) bool { return strings.HasPrefix(t, "W/") }

// etagStrongMatch is the strong comparison of RFC 9110 §8.8.3.2: both
// strong and character-for-character equal.
func etagStrongMatch(a, b string) bool {
	return a == b && !etagWeak(a) && a != ""
}

// etagWeakMatch is the weak comparison: opaque-tags equal, W/ ignored.
func etagWeakMatch(a, b string) bool {
	return a != "" && strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}
