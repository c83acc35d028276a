package origin

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

// Each case breaks the active version by hand, as an operator with a shell
// would, and expects exactly that file reported, then put back by a heal.
func TestVersionDriftAndHeal(t *testing.T) {
	files := map[string]string{"index.html": "home", "a/b/c.txt": "deep", "css/site.css": "body{}"}
	cases := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		id     string
		actual string // prefix of the reported actual value
	}{
		{"edited", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "index.html"), []byte("defaced"), 0o644)
		}, "index.html", "size 7"},
		{"same size, rewritten", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "index.html")
			os.WriteFile(p, []byte("HOME"), 0o644)
			later := time.Now().Add(time.Hour)
			os.Chtimes(p, later, later)
		}, "index.html", "size 4"},
		{"removed", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "a/b/c.txt"))
		}, "a/b/c.txt", "absent"},
		{"chmod", func(t *testing.T, dir string) {
			os.Chmod(filepath.Join(dir, "css/site.css"), 0o600)
		}, "css/site.css", "size 6"},
		{"added", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "a/evil.js"), []byte("x"), 0o644)
		}, "a/evil.js", "present, not in the version's manifest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			deployTree(t, root, "blue", files)
			if err := Activate(root, "blue"); err != nil {
				t.Fatal(err)
			}
			if d, err := VersionDrift(root, "blue"); err != nil || len(d) != 0 {
				t.Fatalf("fresh version: drift %v, %v", d, err)
			}
			dir := filepath.Join(root, "blue")
			c.break_(t, dir)
			d, err := VersionDrift(root, "blue")
			if err != nil {
				t.Fatal(err)
			}
			if len(d) != 1 || d[0].Kind != status.DriftFile || d[0].ID != "blue/"+c.id || !hasPrefix(d[0].Actual, c.actual) {
				t.Fatalf("drift %+v, want one file blue/%s with actual %q…", d, c.id, c.actual)
			}
			if err := HealFile(root, "blue", c.id); err != nil {
				t.Fatal(err)
			}
			if d, err := VersionDrift(root, "blue"); err != nil || len(d) != 0 {
				t.Fatalf("after heal: drift %v, %v", d, err)
			}
			for rel, want := range files {
				if b, err := os.ReadFile(filepath.Join(dir, rel)); err != nil || string(b) != want {
					t.Errorf("%s after heal: %q, %v", rel, b, err)
				}
			}
			if ents, _ := os.ReadDir(dir); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.Name()[0] == '.' }) {
				t.Errorf("a temporary file is left in the version: %v", ents)
			}
		})
	}
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// A version activated before manifests existed is trusted as found; one
// whose stored copy is damaged is not healed from it.
func TestVersionDriftWithoutManifestAndBadObject(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	deployTree(t, root, "blue", map[string]string{"f": "one"})
	if err := os.Symlink("blue", filepath.Join(root, CurrentLink)); err != nil { // activated by hand
		t.Fatal(err)
	}
	if d, err := VersionDrift(root, "blue"); err != nil || len(d) != 0 {
		t.Fatalf("first look: %v, %v", d, err)
	}
	m, err := ReadManifest(root, "blue")
	if err != nil || len(m.Files) != 1 {
		t.Fatalf("manifest recorded on first look: %+v, %v", m, err)
	}
	os.WriteFile(filepath.Join(root, "blue", "f"), []byte("two"), 0o644)
	os.WriteFile(objectPath(root, m.Files["f"].SHA256), []byte("bad"), 0o644)
	if err := HealFile(root, "blue", "f"); err == nil {
		t.Fatal("healed from a damaged copy")
	}
	if err := HealFile(root, "blue", "../escape"); err == nil {
		t.Fatal("healed a path outside the version")
	}
}

// The role's content listener closed under it (the socket ss -K would
// kill) is reported and re-bound; an edited file of the active version is
// reported through the role too.
func TestRoleDrift(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	deployTree(t, root, "blue", map[string]string{"index.html": "hi"})
	if err := Activate(root, "blue"); err != nil {
		t.Fatal(err)
	}
	r, err := NewRole(role.Options{Node: "o1", Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	addr := storetest.FreeAddr(t)
	if err := role.Apply(ctx, r, originSnap(root, addr)); err != nil {
		t.Fatal(err)
	}
	if d, err := r.Drift(ctx); err != nil || len(d) != 0 {
		t.Fatalf("fresh role: %+v, %v", d, err)
	}
	r.mu.Lock()
	r.ln.Stop(0)
	r.mu.Unlock()
	os.WriteFile(filepath.Join(root, "blue", "index.html"), []byte("defaced"), 0o644)
	d, err := r.Drift(ctx)
	if err != nil || len(d) != 2 || d[0].Kind != status.DriftListener || d[0].ID != "origin "+addr || d[0].Actual != "not bound" ||
		d[1].Kind != status.DriftFile || d[1].ID != "blue/index.html" {
		t.Fatalf("drift: %+v, %v", d, err)
	}
	for _, res := range d {
		if err := r.Heal(ctx, res); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := r.Drift(ctx); err != nil || len(d) != 0 {
		t.Fatalf("after heal: %+v, %v", d, err)
	}
	resp, err := http.Get("http://" + addr + "/index.html")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi" {
		t.Fatalf("served %q after the heals", b)
	}
}

// A file touched or copied with the same bytes is no drift; its new mtime
// is recorded, so it is read once.
func TestVersionDriftTouched(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	deployTree(t, root, "blue", map[string]string{"index.html": "home"})
	if err := Activate(root, "blue"); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "blue", "index.html")
	later := time.Now().Add(time.Hour).Truncate(time.Second)
	os.Chtimes(p, later, later)
	if d, err := VersionDrift(root, "blue"); err != nil || len(d) != 0 {
		t.Fatalf("touched: %+v, %v", d, err)
	}
	m, err := ReadManifest(root, "blue")
	if err != nil || !m.Files["index.html"].MTime.Equal(later) {
		t.Fatalf("manifest after a touch: %+v, %v", m, err)
	}
}
