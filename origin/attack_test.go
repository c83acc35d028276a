package origin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const secret = "TOP-SECRET-OUTSIDE-THE-ROOT"

// TestTraversalAttacks tries every way out of a version directory we know
// of: dot segments (plain, encoded, mixed), backslashes, NUL, hidden files,
// and symlinks (absolute, relative, into another version, through a
// directory link). None may return the secret; each gets its status.
func TestTraversalAttacks(t *testing.T) {
	o := newOrigin(t, map[string]string{
		"index.html":    "home",
		"sub/file.txt":  "inside",
		".env":          "hidden at top", // Deploy skips it
		"sub/.htaccess": "hidden below",
	}, nil)
	outside := filepath.Join(filepath.Dir(o.root), "outside")
	writeTree(t, outside, map[string]string{"secret.txt": secret})
	writeTree(t, filepath.Dir(o.root), map[string]string{"secret.txt": secret})
	deployTree(t, o.root, "v2", map[string]string{"secret.txt": secret})
	v1 := filepath.Join(o.root, "v1")
	// Hidden files placed by hand (not by Deploy) are still refused.
	writeTree(t, v1, map[string]string{".git/config": secret, "sub/.secret": secret})
	links := map[string]string{
		"abs-link":        filepath.Join(outside, "secret.txt"),
		"rel-link":        "../../outside/secret.txt",
		"root-link":       "../../secret.txt",
		"version-link":    "../v2/secret.txt",
		"dir-link":        outside,
		"rel-dir-link":    "../../outside",
		"proc-link":       "/proc/self/root/etc/hostname",
		"sub/inside-link": "file.txt", // stays inside: allowed
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(v1, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		target string
		status int
	}{
		{"/sub/file.txt", 200},
		{"/sub/inside-link", 200},
		{"/../secret.txt", 400},
		{"/../../outside/secret.txt", 400},
		{"/sub/../../secret.txt", 400},
		{"/%2e%2e/secret.txt", 400},
		{"/%2E%2E/%2e%2e/outside/secret.txt", 400},
		{"/sub/%2e%2e/%2e%2e/secret.txt", 400},
		{"/..%2f..%2fsecret.txt", 400},
		{"/sub/..%2F..%2Fsecret.txt", 400},
		{"/./index.html", 400},
		{"/sub\\..\\..\\secret.txt", 400},
		{"/..\\secret.txt", 400},
		{"/%5c..%5csecret.txt", 400},
		{"/sub/file.txt%00.html", 400},
		{"/.env", 404},
		{"/%2eenv", 404},
		{"/.git/config", 404},
		{"/sub/.secret", 404},
		{"/sub/.htaccess", 404},
		{"/abs-link", 404},
		{"/rel-link", 404},
		{"/root-link", 404},
		{"/version-link", 404},
		{"/dir-link/secret.txt", 404},
		{"/rel-dir-link/secret.txt", 404},
		{"/proc-link", 404},
		{"http://origin/../secret.txt", 400},
	}
	for _, tt := range tests {
		resp, body := o.raw(tt.target)
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s: %d, want %d", tt.target, resp.StatusCode, tt.status)
		}
		if strings.Contains(body, secret) {
			t.Errorf("GET %s leaked the secret", tt.target)
		}
	}
	if n := o.counter("intercloud_origin_rejected_paths_total", "reason", "escape"); n < 7 {
		t.Errorf("escape rejections counted: %v, want >= 7", n)
	}
	// The version header cannot name a way out either (it needs the token
	// first; without uploads enabled it is refused outright).
	if resp, _ := o.do("GET", "/secret.txt", nil, VersionHeader, "v2"); resp.StatusCode != 405 {
		t.Errorf("version header without uploads enabled: %d, want 405", resp.StatusCode)
	}
}

// TestUploadAttacks: the write path refuses the same escapes, and bad
// version names, without creating anything outside the root.
func TestUploadAttacks(t *testing.T) {
	o := newOrigin(t, map[string]string{"index.html": "home"}, withToken(t))
	outside := filepath.Join(filepath.Dir(o.root), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	deployTree(t, o.root, "v2", map[string]string{"index.html": "home"})
	v2 := filepath.Join(o.root, "v2")
	os.Symlink(outside, filepath.Join(v2, "abs-dir"))
	os.Symlink("../../outside", filepath.Join(v2, "rel-dir"))
	os.Symlink(filepath.Join(outside, "f"), filepath.Join(v2, "abs-file"))
	os.Symlink(outside, filepath.Join(o.root, "vlink")) // a "version" that is a link out
	auth := []string{"Authorization", "Bearer " + testToken}
	tests := []struct {
		path, version string
		status        int
	}{
		{"/abs-dir/x.txt", "v2", 404},
		{"/rel-dir/x.txt", "v2", 404},
		{"/abs-file", "v2", 404},
		{"/x.txt", "vlink", 404},
		{"/../x.txt", "v2", 400},
		{"/%2e%2e/x.txt", "v2", 400},
		{"/.x.txt", "v2", 404},
		{"/a/.git/config", "v2", 404},
		{"/x.txt", "../outside", 400},
		{"/x.txt", ".deploy-x", 400},
		{"/x.txt", "current", 400},
		{"/x.txt", "", 400},
		{"/", "v2", 400},
		{"/dir/", "v2", 400},
	}
	for _, tt := range tests {
		kv := append([]string{}, auth...)
		if tt.version != "" {
			kv = append(kv, VersionHeader, tt.version)
		}
		resp, _ := o.do("PUT", tt.path, strings.NewReader("pwned"), kv...)
		if resp.StatusCode != tt.status {
			t.Errorf("PUT %s into %q: %d, want %d", tt.path, tt.version, resp.StatusCode, tt.status)
		}
		resp, _ = o.do("DELETE", tt.path, nil, kv...)
		if resp.StatusCode != tt.status && resp.StatusCode != 404 {
			t.Errorf("DELETE %s in %q: %d, want %d", tt.path, tt.version, resp.StatusCode, tt.status)
		}
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Errorf("files appeared outside the root: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(o.root), "x.txt")); err == nil {
		t.Error("x.txt written next to the root")
	}
}
