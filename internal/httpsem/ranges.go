package httpsem

import (
	"errors"
	"strings"
)

// rangeSpec is one byte-range-spec of a Range header (RFC 9110 §14.1.1)
// before it is resolved against a length: either First-Last (Last -1 when
// open-ended) or a suffix of Suffix bytes (First -1).
type rangeSpec struct {
	First, Last int64
	Suffix      int64
}

// ByteRange is a resolved, satisfiable range: Length bytes from Start.
type ByteRange struct {
	Start, Length int64
}

// End is the last byte position included (inclusive, as Content-Range
// writes it).
func (r ByteRange) End() int64 { return r.Start + r.Length - 1 }

// errNotBytes means the Range header names another range unit; the server
// ignores such a header (RFC 9110 §14.2).
var errNotBytes = errors.New("range unit is not bytes")

// maxRangeSpecs bounds the work one request can cause; a Range with more
// specs is treated as invalid and ignored (RFC 9110 §14.2 allows this for
// "many small ranges", a denial-of-service indication).
const maxRangeSpecs = 100

// parseRange parses a Range header value of the bytes unit. It returns
// errNotBytes for other units and another error for an invalid
// ranges-specifier; RFC 9110 §14.2 lets the server ignore both, and this
// server does (it answers 200 with the whole representation).
func parseRange(v string) ([]rangeSpec, error) {
	unit, set, ok := strings.Cut(v, "=")
	if !ok {
		return nil, errors.New("range: missing '='")
	}
	// range-unit is a token compared case-insensitively; no whitespace is
	// allowed around it or the '='.
	if !isToken(unit) {
		return nil, errors.New("range: invalid range unit")
	}
	if !strings.EqualFold(unit, "bytes") {
		return nil, errNotBytes
	}
	var specs []rangeSpec
	for elem := range strings.SplitSeq(set, ",") {
		elem = trimOWS(elem)
		if elem == "" {
			// The #rule lets lists carry empty elements; a recipient
			// must accept a reasonable number of them (RFC 9110 §5.6.1.2).
			continue
		}
		if len(specs) == maxRangeSpecs {
			return nil, errors.New("range: too many ranges")
		}
		first, last, ok := strings.Cut(elem, "-")
		if !ok {
			return nil, errors.New("range: missing '-' in " + quoteShort(elem))
		}
		if first == "" {
			n, ok := parseDigits(last)
			if !ok {
				return nil, errors.New("range: invalid suffix-length in " + quoteShort(elem))
			}
			specs = append(specs, rangeSpec{First: -1, Last: -1, Suffix: n})
			continue
		}
		f, ok := parseDigits(first)
		if !ok {
			return nil, errors.New("range: invalid first-pos in " + quoteShort(elem))
		}
		l := int64(-1)
		if last != "" {
			if l, ok = parseDigits(last); !ok {
				return nil, errors.New("range: invalid last-pos in " + quoteShort(elem))
			}
			if decimalLess(last, first) {
				return nil, errors.New("range: last-pos before first-pos in " + quoteShort(elem))
			}
		}
		specs = append(specs, rangeSpec{First: f, Last: l})
	}
	if len(specs) == 0 {
		return nil, errors.New("range: empty range-set")
	}
	return specs, nil
}

// resolveRanges turns specs into the satisfiable ranges of a representation
// of size bytes, in request order, with overlapping or adjacent ranges
// coalesced (RFC 9110 §14.2 allows it; it also defeats requests that ask for
// the same bytes many times). An empty result means nothing is satisfiable:
// the answer is 416.
func resolveRanges(specs []rangeSpec, size int64) []ByteRange {
	out := make([]ByteRange, 0, len(specs))
	for _, s := range specs {
		var r ByteRange
		switch {
		case s.First < 0: // suffix-range
			if s.Suffix == 0 || size == 0 {
				continue
			}
			n := min(s.Suffix, size)
			r = ByteRange{Start: size - n, Length: n}
		default:
			if s.First >= size {
				continue
			}
			end := size - 1
			if s.Last >= 0 && s.Last < end {
				end = s.Last
			}
			r = ByteRange{Start: s.First, Length: end - s.First + 1}
		}
		out = append(out, r)
	}
	return coalesce(out)
}

// coalesce merges ranges that overlap or touch. Ranges that neither overlap
// nor touch keep the order the client asked for.
func coalesce(rs []ByteRange) []ByteRange {
	for i := 0; i < len(rs); i++ {
		for j := i + 1; j < len(rs); j++ {
			a, b := rs[i], rs[j]
			if a.Start <= b.Start+b.Length && b.Start <= a.Start+a.Length {
				start := min(a.Start, b.Start)
				end := max(a.Start+a.Length, b.Start+b.Length)
				rs[i] = ByteRange{Start: start, Length: end - start}
				rs = append(rs[:j], rs[j+1:]...)
				// The grown range may now touch one already passed.
				j = i
			}
		}
	}
	return rs
}

// posLimit stands in for positions too large for int64: no representation
// is that long, so only comparisons with the size matter.
const posLimit = int64(1) << 62

// parseDigits parses 1*DIGIT into a non-negative int64, clamping values
// of 19 digits or more to posLimit.
func parseDigits(s string) (int64, bool) {
	if !allDigits(s) {
		return 0, false
	}
	s = strings.TrimLeft(s, "0")
	if len(s) > 18 {
		return posLimit, true
	}
	var n int64
	for i := 0; i < len(s); i++ {
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// decimalLess compares two 1*DIGIT strings exactly, whatever their length.
func decimalLess(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

// isToken reports whether s is a non-empty RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || !tokenChar[c] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return "\"" + s + "\""
}
