package origin

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzCleanPath: whatever the request path, an accepted result is relative,
// has no empty, dot or hidden segment, no backslash and no NUL.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/b", "/../x", "/a/./b", "//a//b/", "/.env", "/a\\b", "/a\x00", "/%2e%2e", "/..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		rel, err := cleanPath(p)
		if err != nil {
			return
		}
		if strings.ContainsAny(rel, "\\\x00") || strings.HasPrefix(rel, "/") {
			t.Fatalf("cleanPath(%q) = %q", p, rel)
		}
		if rel == "" {
			return
		}
		for _, seg := range strings.Split(rel, "/") {
			if seg == "" || seg[0] == '.' {
				t.Fatalf("cleanPath(%q) = %q: segment %q", p, rel, seg)
			}
		}
	})
}

// FuzzDecide feeds arbitrary conditional and range headers to the whole
// request-header logic: it must never panic, must answer one of the five
// statuses, and a 206 must address only bytes that exist.
func FuzzDecide(f *testing.F) {
	f.Add("GET", `"abc"`, "", "", "", "bytes=0-1", `"abc"`, int64(100))
	f.Add("HEAD", "*", `W/"abc", "x"`, lmStr, before, "bytes=-5,7-", lmStr, int64(10))
	f.Add("GET", `"a`, "*,", "x", "Sun, 06 Nov 1994 08:49:37 GMT", "bytes=5-1", "W/\"abc\"", int64(0))
	f.Fuzz(func(t *testing.T, method, im, inm, ims, ius, rng, ifRange string, size int64) {
		if size < 0 {
			size = 0
		}
		h := http.Header{}
		for k, v := range map[string]string{"If-Match": im, "If-None-Match": inm, "If-Modified-Since": ims,
			"If-Unmodified-Since": ius, "Range": rng, "If-Range": ifRange} {
			if v != "" {
				h.Set(k, v)
			}
		}
		d := Decide(method, h, Validators{Exists: true, ETag: `"abc"`, LastModified: tLM}, size)
		switch d.Status {
		case 200, 304, 412, 416:
			if d.Ranges != nil {
				t.Fatalf("status %d with ranges", d.Status)
			}
		case 206:
			if method != "GET" || len(d.Ranges) == 0 {
				t.Fatalf("206 for %s with %v", method, d.Ranges)
			}
			for _, r := range d.Ranges {
				if r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size {
					t.Fatalf("range %+v of %d bytes", r, size)
				}
			}
		default:
			t.Fatalf("status %d", d.Status)
		}
	})
}
