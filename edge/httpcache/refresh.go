package httpcache

import "net/http"

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
