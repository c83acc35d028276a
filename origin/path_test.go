package origin

import (
	"errors"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{"/", "", nil},
		{"/index.html", "index.html", nil},
		{"/a/b/c.css", "a/b/c.css", nil},
		{"/dir/", "dir", nil},
		{"//a///b", "a/b", nil},
		{"/a.b/c..d/e.", "a.b/c..d/e.", nil},
		{"", "", errBadPath},
		{"a", "", errBadPath},
		{"/..", "", errBadPath},
		{"/../etc/passwd", "", errBadPath},
		{"/a/../../etc/passwd", "", errBadPath},
		{"/a/./b", "", errBadPath},
		{"/a/..", "", errBadPath},
		{"/.", "", errBadPath},
		{"/a\\..\\b", "", errBadPath},
		{"/a\x00b", "", errBadPath},
		{"/.env", "", errHidden},
		{"/.git/config", "", errHidden},
		{"/a/.htaccess", "", errHidden},
		{"/a/.deploy-x/f", "", errHidden},
		{"//.env", "", errHidden},
	}
	for _, tt := range tests {
		got, err := cleanPath(tt.in)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"*", "/anything/at/all", true},
		{"/static/*", "/static/a/b.js", true},
		{"/static/*", "/static", false},
		{"*.html", "/a/b/index.html", true},
		{"*.html", "/a/b/index.htm", false},
		{"/assets/*.js", "/assets/app.1234.js", true},
		{"/assets/*.js", "/assets/app.css", false},
		{"/img/?.png", "/img/a.png", true},
		{"/img/?.png", "/img/ab.png", false},
		{"/exact", "/exact", true},
		{"/exact", "/exactly", false},
		{"*a*a*a*a*b", "/" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
		{"/**", "/x", true},
		{"", "", true},
		{"", "/", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.path); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.path, got, tt.want)
		}
	}
}

func TestCompileRules(t *testing.T) {
	if _, err := compileRules([]CacheRule{{Path: "", CacheControl: "no-cache"}}); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := compileRules([]CacheRule{{Path: "*", CacheControl: " "}}); err == nil {
		t.Error("empty value accepted")
	}
	if _, err := compileRules([]CacheRule{{Path: "*", CacheControl: "max-age=1\r\nX-Evil: 1"}}); err == nil {
		t.Error("header injection accepted")
	}
	rs, err := compileRules([]CacheRule{
		{Path: "/assets/*", CacheControl: "max-age=31536000, immutable"},
		{Path: "*.html", CacheControl: "no-cache"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"/assets/a.html": "max-age=31536000, immutable", // first match wins
		"/index.html":    "no-cache",
		"/data.json":     "",
	} {
		got := ""
		if v := rs.match(p); v != nil {
			got = v[0]
		}
		if got != want {
			t.Errorf("match(%q) = %q, want %q", p, got, want)
		}
	}
}
