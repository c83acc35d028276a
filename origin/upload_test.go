package origin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUploadsDisabledWithoutToken(t *testing.T) {
	o := newOrigin(t, map[string]string{"a.txt": "a"}, nil)
	for _, m := range []string{"PUT", "DELETE"} {
		resp, _ := o.do(m, "/a.txt", strings.NewReader("x"), "Authorization", "Bearer "+testToken, VersionHeader, "v2")
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
			t.Errorf("%s without a token file: %d Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if _, err := os.Stat(filepath.Join(o.root, "v2")); err == nil {
		t.Error("a refused PUT created the version")
	}
}

func TestUploads(t *testing.T) {
	o := newOrigin(t, map[string]string{"a.txt": "a"}, withToken(t))
	auth := "Bearer " + testToken
	put := func(path, version, body string, kv ...string) int {
		t.Helper()
		kv = append(kv, "Authorization", auth, VersionHeader, version)
		resp, _ := o.do("PUT", path, strings.NewReader(body), kv...)
		return resp.StatusCode
	}
	get := func(path, version string) (int, string) {
		t.Helper()
		resp, body := o.do("GET", path, nil, "Authorization", auth, VersionHeader, version)
		return resp.StatusCode, body
	}

	// Authentication.
	for _, tt := range []struct {
		authz  string
		status int
	}{
		{"", 401},
		{"Basic dXNlcjpwYXNz", 401},
		{"Bearer wrong-token-wrong-token", 403},
		{"Bearer " + testToken + "x", 403},
		{"bearer " + testToken, 201},
	} {
		kv := []string{VersionHeader, "v2"}
		if tt.authz != "" {
			kv = append(kv, "Authorization", tt.authz)
		}
		resp, _ := o.do("PUT", "/auth.txt", strings.NewReader("x"), kv...)
		if resp.StatusCode != tt.status {
			t.Errorf("Authorization %q: %d, want %d", tt.authz, resp.StatusCode, tt.status)
		}
		if tt.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without a Bearer challenge")
		}
	}

	// Create, read back from the inactive version, replace, conditions.
	if c := put("/dir/sub/new.txt", "v2", "first"); c != 201 {
		t.Fatalf("create: %d", c)
	}
	if c, body := get("/dir/sub/new.txt", "v2"); c != 200 || body != "first" {
		t.Fatalf("read back: %d %q", c, body)
	}
	if resp, _ := o.do("GET", "/dir/sub/new.txt", nil); resp.StatusCode != 404 {
		t.Errorf("the inactive version leaks into the active one: %d", resp.StatusCode)
	}
	if resp, _ := o.do("GET", "/dir/sub/new.txt", nil, VersionHeader, "v2"); resp.StatusCode != 401 {
		t.Errorf("reading an inactive version without the token: %d, want 401", resp.StatusCode)
	}
	if c := put("/dir/sub/new.txt", "v2", "nope", "If-None-Match", "*"); c != 412 {
		t.Errorf("create-only over an existing file: %d, want 412", c)
	}
	if c := put("/dir/sub/new.txt", "v2", "nope", "If-Match", `"stale"`); c != 412 {
		t.Errorf("If-Match stale: %d, want 412", c)
	}
	resp, _ := o.do("GET", "/dir/sub/new.txt", nil, "Authorization", auth, VersionHeader, "v2")
	etag := resp.Header.Get("ETag")
	if c := put("/dir/sub/new.txt", "v2", "second", "If-Match", etag); c != 204 {
		t.Errorf("replace with the current tag: %d, want 204", c)
	}
	resp, body := o.do("GET", "/dir/sub/new.txt", nil, "Authorization", auth, VersionHeader, "v2")
	if body != "second" || resp.Header.Get("ETag") == etag {
		t.Errorf("after replace: %q, ETag %s (was %s)", body, resp.Header.Get("ETag"), etag)
	}
	if c := put("/dir/sub/new.txt", "v2", "x", "Content-Range", "bytes 0-0/10"); c != 400 {
		t.Errorf("partial PUT: %d, want 400", c)
	}
	if c := put("/dir", "v2", "x"); c != 409 {
		t.Errorf("PUT over a directory: %d, want 409", c)
	}
	// The active version is immutable.
	if c := put("/a.txt", "v1", "changed"); c != 409 {
		t.Errorf("PUT into the active version: %d, want 409", c)
	}
	// Temporary files never stay behind.
	filepath.Walk(filepath.Join(o.root, "v2"), func(p string, _ os.FileInfo, _ error) error {
		if strings.HasPrefix(filepath.Base(p), ".upload-") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})

	// Activation makes the uploaded version live.
	o.activate("v2")
	if resp, body := o.do("GET", "/dir/sub/new.txt", nil); resp.StatusCode != 200 || body != "second" {
		t.Errorf("after activating v2: %d %q", resp.StatusCode, body)
	}

	// DELETE in an inactive version.
	del := func(path, version string, kv ...string) int {
		kv = append(kv, "Authorization", auth, VersionHeader, version)
		resp, _ := o.do("DELETE", path, nil, kv...)
		return resp.StatusCode
	}
	if c := put("/gone.txt", "v1", "bye"); c != 201 {
		t.Fatalf("PUT into v1 once inactive: %d", c)
	}
	if c := del("/gone.txt", "v1", "If-Match", `"stale"`); c != 412 {
		t.Errorf("DELETE If-Match stale: %d", c)
	}
	if c := del("/gone.txt", "v1"); c != 204 {
		t.Errorf("DELETE: %d", c)
	}
	if c := del("/gone.txt", "v1"); c != 404 {
		t.Errorf("DELETE again: %d", c)
	}
	if c := del("/a.txt", "v2"); c != 409 {
		t.Errorf("DELETE in the active version: %d, want 409", c)
	}
}

func TestUploadLimit(t *testing.T) {
	tok := withToken(t)
	o := newOrigin(t, map[string]string{"a": "a"}, func(c *Config) { tok(c); c.MaxUpload = 100 })
	resp, _ := o.do("PUT", "/big", strings.NewReader(strings.Repeat("x", 101)),
		"Authorization", "Bearer "+testToken, VersionHeader, "v2")
	if resp.StatusCode != 413 {
		t.Errorf("oversized PUT: %d, want 413", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(o.root, "v2", "big")); err == nil {
		t.Error("oversized body stored")
	}
}
