package httpcache

import (
	"strings"
	"time"
)

// The three HTTP-date forms of RFC 9110 §5.6.7 as shapes: 'A' a letter,
// 'D' a digit, '_' a space or a digit (asctime's day), anything else
// itself. Go's time.Parse accepts more (a one-digit hour, runs of spaces),
// and a cache that reads a malformed Expires as a date keeps a response
// fresh that RFC 9111 §5.3 says is already expired.
var dateForms = []struct{ shape, layout string }{
	{"AAA, DD AAA DDDD DD:DD:DD GMT", "Mon, 02 Jan 2006 15:04:05 GMT"}, // IMF-fixdate
	{", DD-AAA-DD DD:DD:DD GMT", "Monday, 02-Jan-06 15:04:05 GMT"},     // rfc850-date, after the day name
	{"AAA AAA _D DD:DD:DD DDDD", "Mon Jan _2 15:04:05 2006"},           // asctime-date
}

// ParseHTTPDate parses an HTTP-date strictly: one of the three forms of
// RFC 9110 §5.6.7, each character where the grammar puts it.
func ParseHTTPDate(s string) (time.Time, bool) {
	for i, f := range dateForms {
		v := s
		if i == 1 {
			// rfc850-date: a full day name of letters, then the fixed part.
			c := strings.IndexByte(s, ',')
			if c < 6 || !letters(s[:c]) {
				continue
			}
			v = s[c:]
		}
		if !fits(v, f.shape) {
			continue
		}
		t, err := time.Parse(f.layout, s)
		if err != nil {
			continue
		}
		return t.UTC(), true
	}
	return time.Time{}, false
}

func fits(v, shape string) bool {
	if len(v) != len(shape) {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch shape[i] {
		case 'A':
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
				return false
			}
		case 'D':
			if c < '0' || c > '9' {
				return false
			}
		case '_':
			if c != ' ' && (c < '0' || c > '9') {
				return false
			}
		default:
			if c != shape[i] {
				return false
			}
		}
	}
	return true
}

func letters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
