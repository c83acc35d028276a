package httpcache

import (
	"net/http"
	"strings"
)

// NotModified evaluates a client's If-None-Match / If-Modified-Since
// against a stored response (RFC 9110 §13.2.2): true means answer 304.
func NotModified(method string, reqH, stored http.Header) bool {
	if method != http.MethodGet && method != http.MethodHead {
		return false
	}
	// The field names are canonical: direct map reads are what Values and
	// Get do, without canonicalising the name on every request.
	if inm := reqH["If-None-Match"]; len(inm) > 0 {
		etag := first(stored["Etag"])
		for _, line := range inm {
			// The members strings.Split(line, ",") would give, without
			// allocating them.
			for rest, more := line, true; more; {
				var t string
				t, rest, more = strings.Cut(rest, ",")
				t = strings.TrimSpace(t)
				if t == "*" && etag != "" {
					return true
				}
				if etag != "" && weakMatch(t, etag) {
					return true
				}
			}
		}
		return false
	}
	ims := first(reqH["If-Modified-Since"])
	if ims == "" {
		return false
	}
	since, err := http.ParseTime(ims)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(stored.Get("Last-Modified"))
	if err != nil {
		return false
	}
	return !lm.After(since)
}

// first is Header.Get of an already looked-up field.
func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func weakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// NotModifiedHeaders are the stored fields a 304 carries (RFC 9110 §15.4.5).
var NotModifiedHeaders = []string{"Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Vary", "Last-Modified"}

// skipOn304 are fields a 304 must not replace in the stored response.
var skipOn304 = map[string]bool{"Content-Length": true, "Content-Encoding": true, "Transfer-Encoding": true, "Content-Range": true, "Content-Type": false}

// MergeNotModified updates a stored header set with the fields of a 304
// (RFC 9111 §3.2) and returns the new set; stored is not modified.
func MergeNotModified(stored, fresh http.Header) http.Header {
	out := stored.Clone()
	for k, v := range fresh {
		if skipOn304[k] {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}
