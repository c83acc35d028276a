package agent

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/intercloud/intercloud/config"
)

// lkgSite is a snapshot of n distributions whose aliases carry tag.
func lkgSite(rev int64, n int, tag func(i int) string) *config.Snapshot {
	s := &config.Snapshot{Revision: rev, Hash: fmt.Sprintf("h%d", rev), Site: config.Site{Name: "site"}}
	for i := range n {
		s.Distributions = append(s.Distributions, config.Distribution{Name: fmt.Sprintf("d%03d", i),
			Spec: config.Spec{Aliases: []string{tag(i)}}})
	}
	return s
}

// next derives revision rev from s: change sets distribution i's alias,
// remove drops it, add appends new ones; the result carries its Delta.
func next(s *config.Snapshot, rev int64, change map[int]string, remove []int, add []string, site string) *config.Snapshot {
	out := *s
	out.Revision, out.Hash = rev, fmt.Sprintf("h%d", rev)
	out.Distributions = nil
	d := &config.Delta{Base: s.Revision, Site: site != ""}
	if site != "" {
		out.Site.Name = site
	}
	for i, dist := range s.Distributions {
		if slices.Contains(remove, i) {
			d.Removed = append(d.Removed, dist.Name)
			continue
		}
		if a, ok := change[i]; ok {
			dist.Spec.Aliases = []string{a}
			d.Changed = append(d.Changed, dist.Name)
		}
		out.Distributions = append(out.Distributions, dist)
	}
	for _, name := range add {
		out.Distributions = append(out.Distributions, config.Distribution{Name: name, Spec: config.Spec{Aliases: []string{"new"}}})
		d.Changed = append(d.Changed, name)
	}
	slices.SortFunc(out.Distributions, func(a, b config.Distribution) int { return cmp.Compare(a.Name, b.Name) })
	out.Delta = d
	return &out
}

func lkgFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, lkgDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestLastKnownGoodLog writes a sequence of revisions as the writer does
// and reads each back: what is read is always the revision written, and a
// small change writes a small file, not the site.
func TestLastKnownGoodLog(t *testing.T) {
	dir := t.TempDir()
	s1 := lkgSite(1, 100, func(i int) string { return "a" })
	steps := []struct {
		name  string
		snap  func(prev *config.Snapshot) *config.Snapshot
		files []string // lkg/ afterwards
	}{
		{"whole first", func(*config.Snapshot) *config.Snapshot { return s1 },
			[]string{"base-1.json", "manifest.json"}},
		{"one change", func(p *config.Snapshot) *config.Snapshot { return next(p, 2, map[int]string{5: "b"}, nil, nil, "") },
			[]string{"base-1.json", "dist-2-d005.json", "manifest.json"}},
		{"same one again", func(p *config.Snapshot) *config.Snapshot { return next(p, 3, map[int]string{5: "c"}, nil, nil, "") },
			[]string{"base-1.json", "dist-3-d005.json", "manifest.json"}},
		{"remove and add", func(p *config.Snapshot) *config.Snapshot {
			return next(p, 4, nil, []int{0}, []string{"d100/x"}, "")
		}, []string{"base-1.json", "dist-3-d005.json", "dist-4-d100%2Fx.json", "manifest.json"}},
		{"stacks only (a delta that names nothing)", func(p *config.Snapshot) *config.Snapshot {
			s := next(p, 5, nil, nil, nil, "")
			s.Stacks = []config.Stack{{Name: "shared", Outputs: map[string]config.Output{"url": {Type: config.OutputURL, Value: "http://127.0.0.1:9"}}}}
			return s
		}, []string{"base-1.json", "dist-3-d005.json", "dist-4-d100%2Fx.json", "manifest.json"}},
		{"site", func(p *config.Snapshot) *config.Snapshot { return next(p, 6, nil, nil, nil, "renamed") },
			[]string{"base-1.json", "dist-3-d005.json", "dist-4-d100%2Fx.json", "manifest.json", "site-6.json"}},
		{"a quarter of the site: new base", func(p *config.Snapshot) *config.Snapshot {
			ch := map[int]string{}
			for i := range 30 {
				ch[i] = "z"
			}
			return next(p, 7, ch, nil, nil, "")
		}, []string{"base-7.json", "manifest.json"}},
		{"no delta: whole", func(p *config.Snapshot) *config.Snapshot {
			s := next(p, 8, map[int]string{1: "q"}, nil, nil, "")
			s.Delta = nil
			return s
		}, []string{"base-8.json", "manifest.json"}},
		{"delta from another base: whole", func(p *config.Snapshot) *config.Snapshot {
			s := next(p, 10, map[int]string{1: "r"}, nil, nil, "")
			s.Delta.Base = 9
			return s
		}, []string{"base-10.json", "manifest.json"}},
	}
	var on *lkgIndex
	var prev *config.Snapshot
	for _, st := range steps {
		snap := st.snap(prev)
		idx, err := writeLastKnownGood(filepath.Join(dir, lkgDir), on, lkgWrite{lastKnownGood{Cluster: "c1", Snapshot: snap}, snap.Delta})
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		on, prev = idx, snap
		got, err := readLastKnownGood(dir)
		if err != nil {
			t.Fatalf("%s: read: %v", st.name, err)
		}
		want := *snap
		want.Delta = nil
		if got.Cluster != "c1" || !reflect.DeepEqual(got.Snapshot, &want) {
			t.Errorf("%s: read back\n %+v\nwant\n %+v", st.name, got.Snapshot, &want)
		}
		if files := lkgFiles(t, dir); !slices.Equal(files, st.files) {
			t.Errorf("%s: files %v, want %v", st.name, files, st.files)
		}
	}
}

// TestLastKnownGoodQueueMergesDeltas: revisions the writer had no time for
// are skipped, and the one it writes carries every change since the one
// on disk.
func TestLastKnownGoodQueueMergesDeltas(t *testing.T) {
	a := &Agent{lkgQueue: make(chan lkgWrite, 1)}
	s1 := lkgSite(1, 100, func(int) string { return "a" })
	s2 := next(s1, 2, map[int]string{1: "b"}, []int{2}, nil, "")
	s3 := next(s2, 3, map[int]string{3: "c"}, nil, []string{"d002"}, "x") // index 3 of s2 is d004
	a.saveLastKnownGood(lastKnownGood{Cluster: "c", Snapshot: s2})
	a.saveLastKnownGood(lastKnownGood{Cluster: "c", Snapshot: s3})
	w := <-a.lkgQueue
	if w.lkg.Snapshot != s3 || w.delta == nil {
		t.Fatalf("queued %+v", w)
	}
	slices.Sort(w.delta.Changed)
	if w.delta.Base != 1 || !w.delta.Site || !slices.Equal(w.delta.Changed, []string{"d001", "d002", "d004"}) || len(w.delta.Removed) != 0 {
		t.Errorf("merged delta %+v", w.delta)
	}
	// From another cluster nothing merges: the write is whole.
	a.saveLastKnownGood(lastKnownGood{Cluster: "c", Snapshot: s2})
	a.saveLastKnownGood(lastKnownGood{Cluster: "other", Snapshot: s3})
	if w := <-a.lkgQueue; w.delta != nil {
		t.Errorf("delta across clusters: %+v", w.delta)
	}

	dir := t.TempDir()
	idx, err := writeLastKnownGood(filepath.Join(dir, lkgDir), nil, lkgWrite{lastKnownGood{Cluster: "c", Snapshot: s1}, nil})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writeLastKnownGood(filepath.Join(dir, lkgDir), idx, w); err != nil {
		t.Fatal(err)
	}
	got, err := readLastKnownGood(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := *s3
	want.Delta = nil
	if !reflect.DeepEqual(got.Snapshot, &want) {
		t.Errorf("read back %+v, want %+v", got.Snapshot, &want)
	}
}

// TestLastKnownGoodCrashLeftovers: files a crash left before the manifest
// was renamed are not part of what is read, and the next write removes
// them; the single-file layout of earlier versions is still read.
func TestLastKnownGoodCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	s1 := lkgSite(1, 10, func(int) string { return "a" })
	idx, err := writeLastKnownGood(filepath.Join(dir, lkgDir), nil, lkgWrite{lastKnownGood{Snapshot: s1}, nil})
	if err != nil {
		t.Fatal(err)
	}
	s2 := next(s1, 2, map[int]string{1: "b"}, nil, nil, "")
	// The crash: revision 2's file written, its manifest never.
	if err := writeFileSynced(filepath.Join(dir, lkgDir), distFile(2, "d001"), s2.Distribution("d001")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, lkgDir, ".tmp-123"), []byte("{half"), 0o600)
	got, err := readLastKnownGood(dir)
	if err != nil || got.Snapshot.Revision != 1 || got.Snapshot.Distribution("d001").Spec.Aliases[0] != "a" {
		t.Fatalf("after the crash read %+v, %v; want revision 1 as written", got.Snapshot, err)
	}
	s3 := next(s1, 3, map[int]string{2: "c"}, nil, nil, "")
	if _, err := writeLastKnownGood(filepath.Join(dir, lkgDir), idx, lkgWrite{lastKnownGood{Snapshot: s3}, s3.Delta}); err != nil {
		t.Fatal(err)
	}
	if files := lkgFiles(t, dir); !slices.Equal(files, []string{"base-1.json", "dist-3-d002.json", "manifest.json"}) {
		t.Errorf("leftovers not removed: %v", files)
	}

	legacy := t.TempDir()
	if err := writeFileSynced(legacy, legacyLKG, lastKnownGood{Cluster: "old", Snapshot: s1}); err != nil {
		t.Fatal(err)
	}
	if got, err := readLastKnownGood(legacy); err != nil || got.Cluster != "old" || got.Snapshot.Revision != 1 {
		t.Errorf("legacy layout read %+v, %v", got, err)
	}
}

// Nodes of one process handed the same snapshot share its encoding; any
// other snapshot or cluster is encoded anew.
func TestEncodeBaseSharesOnlyTheSameSnapshot(t *testing.T) {
	s1 := &config.Snapshot{Revision: 1, Hash: "a"}
	s2 := &config.Snapshot{Revision: 1, Hash: "a"} // equal, but another read
	enc := func(lkg lastKnownGood) []byte {
		b, err := encodeBase(lkg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := enc(lastKnownGood{Cluster: "c", Snapshot: s1})
	if again := enc(lastKnownGood{Cluster: "c", Snapshot: s1}); &again[0] != &first[0] {
		t.Error("the same snapshot was encoded twice")
	}
	for _, other := range []lastKnownGood{{Cluster: "c", Snapshot: s2}, {Cluster: "d", Snapshot: s1}} {
		b := enc(other)
		var back lastKnownGood
		if err := json.Unmarshal(b, &back); err != nil || back.Cluster != other.Cluster {
			t.Errorf("%+v: encoded as %s (%v)", other, b, err)
		}
	}
}
