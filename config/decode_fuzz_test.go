package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader beside a valid site and as a
// bundle of its own: it must return a bundle or an error, never panic, and
// whatever loads must render, hash, diff, and export to files that
// load back to the same hash.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/errors/*.yaml")
	more, _ := filepath.Glob("../examples/*/*.yaml")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b, *b]\n"))
	f.Add([]byte("apiVersion: intercloud/v1\nkind: Distribution\nname: x\nspec: {origins: {o: {url: '${'}}}\n"))
	f.Add([]byte("---\n---\n"))
	site, err := os.ReadFile("testdata/base-site.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, srcs := range [][]source{
			{{"site.yaml", site}, {"fuzz.yaml", data}},
			{{"fuzz.yaml", data}},
		} {
			b, err := loadSources(srcs)
			if err != nil {
				if err.Error() == "" {
					t.Fatal("empty error")
				}
				continue
			}
			s, err := b.Render(map[string]string{})
			if err != nil {
				continue
			}
			if Hash(s) != s.Hash {
				t.Fatal("hash unstable")
			}
			if d := Diff(s, s); len(d) != 0 {
				t.Fatalf("snapshot differs from itself: %v", d)
			}
			if err := s.Validate(); err != nil {
				t.Fatalf("rendered snapshot fails Validate: %v", err)
			}
			// What renders exports to files that render to the same.
			dir := t.TempDir()
			if _, err := Export(s, dir); err != nil {
				t.Fatalf("export: %v", err)
			}
			back, err := Load(dir)
			if err == nil {
				var again *Snapshot
				if again, err = back.Render(nil); err == nil && again.Hash != s.Hash {
					t.Fatalf("export re-imports to another hash: %v", Diff(s, again))
				}
			}
			if err != nil {
				t.Fatalf("export does not load back: %v", err)
			}
		}
	})
}
