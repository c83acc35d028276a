package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	cases := []struct {
		name   string
		before string // "" : no file yet
		perm   fs.FileMode
	}{
		{"new file", "", 0o644},
		{"replaces a file", "old content, longer than the new", 0o644},
		{"private mode", "", 0o600},
		{"narrows a wider mode", "old", 0o600},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.json")
			if c.before != "" {
				if err := os.WriteFile(p, []byte(c.before), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			for _, write := range []struct {
				name string
				f    func(string, []byte, fs.FileMode) error
			}{{"WriteFile", WriteFile}, {"ReplaceFile", ReplaceFile}} {
				if err := write.f(p, []byte("new "+write.name), c.perm); err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(p)
				if err != nil || string(b) != "new "+write.name {
					t.Fatalf("%s: content %q, %v", write.name, b, err)
				}
				fi, err := os.Stat(p)
				if err != nil || fi.Mode().Perm() != c.perm {
					t.Fatalf("%s: mode %v, want %v (%v)", write.name, fi.Mode().Perm(), c.perm, err)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Fatalf("%s: left beside it: %v", write.name, ents)
				}
			}
		})
	}
}

// A write that cannot finish leaves the old file and no temporary one.
func TestWriteFileFails(t *testing.T) {
	dir := t.TempDir()
	// A directory in the way of the rename.
	p := filepath.Join(dir, "d")
	if err := os.MkdirAll(filepath.Join(p, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(p, []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "write "+p) {
		t.Fatalf("error %v, want one naming %s", err, p)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "d" || !ents[0].IsDir() {
		t.Fatalf("after the failure: %v", ents)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644); err == nil {
		t.Fatal("a write into a missing directory succeeded")
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if err := SyncDir(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %v, want one naming %s", err, missing)
	}
}
