package edge

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/intercloud/intercloud/config"
)

// A delta rebuilds only what it names; the result is the table a whole
// build makes, and the distributions it does not name are shared.
func TestTableFromDelta(t *testing.T) {
	mk := func(rev int64, tags map[string]string) *config.Snapshot {
		s := &config.Snapshot{Revision: rev, Site: config.Site{DNS: config.DNS{Zone: "cdn.test."}}}
		for _, name := range slices.Sorted(maps.Keys(tags)) {
			s.Distributions = append(s.Distributions, config.Distribution{Name: name, Spec: config.Spec{
				Aliases:   []string{name + ".example.test"},
				Origins:   map[string]config.Origin{"o": {URL: "http://127.0.0.1:9"}},
				Behaviors: []config.Behavior{{Path: "*", Target: "o"}},
				Headers:   config.Headers{Response: config.HeaderEdit{Set: map[string]string{"X-Tag": tags[name]}}},
			}})
		}
		return s
	}
	pool, ids := newClientPool(), newMemberIDs()
	base := map[string]string{}
	for i := range 50 {
		base[fmt.Sprintf("d%02d", i)] = "a"
	}
	prev, err := buildTable(mk(1, base), "", pool, ids)
	if err != nil {
		t.Fatal(err)
	}
	next := maps.Clone(base)
	next["d07"] = "b"   // changed
	delete(next, "d08") // removed
	next["new"] = "c"   // added
	snap := mk(2, next)
	snap.Delta = &config.Delta{Base: 1, Changed: []string{"d07", "new"}, Removed: []string{"d08"}}
	got, err := buildTableFrom(prev, snap, pool, ids)
	if err != nil || got == nil {
		t.Fatalf("built from the delta: %v %v", got, err)
	}
	want, err := buildTable(mk(2, next), "", pool, ids)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(maps.Collect(got.hosts.all()))), slices.Sorted(maps.Keys(maps.Collect(want.hosts.all())))) {
		t.Fatalf("hosts differ from a whole build")
	}
	for h, d := range want.hosts.all() {
		if got.lookup(h).headers.Response.Set["X-Tag"] != d.headers.Response.Set["X-Tag"] {
			t.Errorf("%s: tag %q, want %q", h, got.lookup(h).headers.Response.Set["X-Tag"], d.headers.Response.Set["X-Tag"])
		}
	}
	if got.lookup("d01.cdn.test") != prev.lookup("d01.cdn.test") {
		t.Error("an unchanged distribution was compiled again")
	}
	if got.lookup("d07.cdn.test") == prev.lookup("d07.cdn.test") {
		t.Error("the changed distribution was not compiled again")
	}
	// A delta from another base, or a site change, is built whole.
	for _, dl := range []*config.Delta{{Base: 7, Changed: []string{"d07"}}, {Base: 1, Site: true}} {
		snap.Delta = dl
		if t2, err := buildTableFrom(prev, snap, pool, ids); t2 != nil || err != nil {
			t.Errorf("delta %+v built incrementally", dl)
		}
	}
}
