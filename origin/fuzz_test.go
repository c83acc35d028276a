package origin

import (
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
