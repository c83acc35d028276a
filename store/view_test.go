package store

import (
	"context"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/intercloud/intercloud/status"
)

// Every watcher of one Store sees the same sets, built from one watch that
// decodes only the keys that changed: puts, garbage, deletes and
// invalidation completions, in the order they were written.
func TestViewsFollowChangesForEveryWatcher(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	putNode := func(name string, rev int64) {
		b, _ := json.Marshal(status.NodeStatus{Name: name, Revision: rev})
		if _, err := s.cli.Put(ctx, nodeKey(name), string(b)); err != nil {
			t.Fatal(err)
		}
	}
	putNode("a", 1)

	type watcher struct {
		got chan map[string]status.NodeStatus
	}
	watch := func() watcher {
		w := watcher{got: make(chan map[string]status.NodeStatus, 64)}
		go s.WatchNodes(ctx, func(m map[string]status.NodeStatus) { w.got <- m })
		return w
	}
	// until waits for the watcher's set to be want (revision by node).
	until := func(w watcher, want map[string]int64) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case m := <-w.got:
				have := map[string]int64{}
				for n, st := range m {
					have[n] = st.Revision
				}
				if maps.Equal(have, want) {
					return
				}
			case <-deadline:
				t.Fatalf("watcher never saw %v", want)
			}
		}
	}

	first := watch()
	until(first, map[string]int64{"a": 1})
	putNode("b", 1)
	putNode("a", 2)
	until(first, map[string]int64{"a": 2, "b": 1})

	// A watcher that joins later gets the current set at once.
	second := watch()
	until(second, map[string]int64{"a": 2, "b": 1})

	steps := []struct {
		name string
		do   func()
		want map[string]int64
	}{
		{"a node writes garbage: not live", func() {
			if _, err := s.cli.Put(ctx, nodeKey("b"), "{"); err != nil {
				t.Fatal(err)
			}
		}, map[string]int64{"a": 2}},
		{"it writes a status again", func() { putNode("b", 3) }, map[string]int64{"a": 2, "b": 3}},
		{"a lease ends: the key goes", func() {
			if _, err := s.cli.Delete(ctx, nodeKey("a")); err != nil {
				t.Fatal(err)
			}
		}, map[string]int64{"b": 3}},
	}
	for _, st := range steps {
		st.do()
		until(first, st.want)
		until(second, st.want)
	}

	// Invalidations are built from two kinds of key.
	inv := make(chan map[string]*InvalidationState, 64)
	go s.WatchInvalidations(ctx, func(m map[string]*InvalidationState) { inv <- m })
	if err := s.PutInvalidation(ctx, status.Invalidation{ID: "i1", Distribution: "shop"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkInvalidationDone(ctx, "i1", "edge-1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	for done := false; !done; {
		select {
		case m := <-inv:
			done = m["i1"] != nil && m["i1"].Distribution == "shop" && !m["i1"].Done["edge-1"].IsZero()
		case <-deadline:
			t.Fatal("the invalidation and its completion never arrived together")
		}
	}
}
