package httpcache

import (
	"net/http"
	"strconv"
	"strings"
)

// RangeResult says how to answer a Range request from a full object.
type RangeResult int

const (
	RangeFull          RangeResult = iota // ignore the Range, send 200
	RangePartial                          // send 206 with Start..End
	RangeUnsatisfiable                    // send 416
)

// ParseRange resolves one "bytes=" range against an object of size bytes.
// Multiple ranges and syntax errors are ignored (a 200 is always allowed,
// RFC 9110 §14.2). ifRange is the request's If-Range, evaluated against h.
func ParseRange(spec, ifRange string, h http.Header, size int64) (RangeResult, int64, int64) {
	if spec == "" {
		return RangeFull, 0, 0
	}
	if ifRange != "" && !ifRangeMatches(ifRange, h) {
		return RangeFull, 0, 0
	}
	unit, set, ok := strings.Cut(spec, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") || strings.Contains(set, ",") {
		return RangeFull, 0, 0
	}
	first, last, ok := strings.Cut(strings.TrimSpace(set), "-")
	if !ok {
		return RangeFull, 0, 0
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return RangeFull, 0, 0
		}
		if n == 0 || size == 0 {
			return RangeUnsatisfiable, 0, 0
		}
		return RangePartial, max(0, size-n), size - 1
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return RangeFull, 0, 0
	}
	end := size - 1
	if last != "" {
		e, err := strconv.ParseInt(last, 10, 64)
		if err != nil || e < start {
			return RangeFull, 0, 0
		}
		end = min(e, size-1)
	}
	if start >= size {
		return RangeUnsatisfiable, 0, 0
	}
	return RangePartial, start, end
}

// ifRangeMatches: a strong ETag equal to the stored one, or a date equal
// to Last-Modified (RFC 9110 §13.1.5).
func ifRangeMatches(v string, h http.Header) bool {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, `"`) {
		etag := h.Get("ETag")
		return etag != "" && !strings.HasPrefix(etag, "W/") && v == etag
	}
	if strings.HasPrefix(v, "W/") {
		return false
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	return err == nil && lm.Equal(t)
}
