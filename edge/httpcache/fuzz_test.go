package httpcache

import (
	"net/http"
	"testing"
)

// FuzzParseRange: any Range / If-Range against any size yields a range
// inside the object or no range at all.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=7-", "bytes=9-1", "bytes=0-1,2-3", "bytes=-0", "bytes=99999999999999999999-", "bytes= 1 - 2 "} {
		f.Add(s, "", int64(10))
	}
	f.Add("bytes=0-0", `"e"`, int64(0))
	h := http.Header{"Etag": {`"e"`}, "Last-Modified": {"Mon, 02 Jan 2006 15:04:05 GMT"}}
	f.Fuzz(func(t *testing.T, spec, ifRange string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		res, start, end := ParseRange(spec, ifRange, h, size)
		if res == RangePartial && (start < 0 || end < start || end >= size) {
			t.Fatalf("ParseRange(%q, %d) = %d-%d", spec, size, start, end)
		}
	})
}

// FuzzNotModified: conditionals never panic and a 304 needs a validator.
func FuzzNotModified(f *testing.F) {
	f.Add(`"a", W/"b"`, "Mon, 02 Jan 2006 15:04:05 GMT", `"b"`, "")
	f.Add("*", "", "", "Mon, 02 Jan 2006 15:04:05 GMT")
	f.Fuzz(func(t *testing.T, inm, ims, etag, lm string) {
		req := http.Header{}
		if inm != "" {
			req.Set("If-None-Match", inm)
		}
		if ims != "" {
			req.Set("If-Modified-Since", ims)
		}
		stored := http.Header{}
		if etag != "" {
			stored.Set("ETag", etag)
		}
		if lm != "" {
			stored.Set("Last-Modified", lm)
		}
		if NotModified("GET", req, stored) && etag == "" && lm == "" {
			t.Fatal("304 without a stored validator")
		}
	})
}
