package store

import (
	"context"
	"testing"

	"github.com/intercloud/intercloud/config"
)

// Stacks are one key beside the site: written when they change, read with
// every revision whole or from its parent, deleted when the last goes, and
// a change to them leaves the site and the distributions alone.
func TestStacksAreStoredWithTheirRevision(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := context.Background()
	withStack := func(rev int64, url string) *config.Snapshot {
		snap := site(rev, 3, "a")
		if url != "" {
			snap.Stacks = []config.Stack{{Name: "shared", Outputs: map[string]config.Output{"url": {Type: config.OutputURL, Value: url}}}}
		}
		return rehash(snap, rev)
	}
	revs := []*config.Snapshot{withStack(1, "http://127.0.0.1:9001"), withStack(2, "http://127.0.0.1:9002"), withStack(3, "http://127.0.0.1:9002"), withStack(4, "")}
	// Revision 3 changes a distribution, not the stacks.
	revs[2].Distributions[1].Spec.Headers.Response.Set["X-Tag"] = "b"
	rehash(revs[2], 3)
	revs[3].Distributions[1].Spec.Headers.Response.Set["X-Tag"] = "b"
	rehash(revs[3], 4)
	var prev *config.Snapshot
	for i, want := range revs {
		_, mod, err := s.Current(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx, want, mod); err != nil {
			t.Fatal(err)
		}
		man, _, err := s.manifest(ctx, want.Revision)
		if err != nil {
			t.Fatal(err)
		}
		if wantChanged := i != 2; man.Stacks != wantChanged || man.Site != (i == 0) || man.HasStacks != (i < 3) {
			t.Errorf("revision %d manifest: stacks changed %v, site %v, has stacks %v", want.Revision, man.Stacks, man.Site, man.HasStacks)
		}
		whole, err := s.Revision(ctx, want.Revision)
		if err != nil || config.Hash(whole) != want.Hash {
			t.Fatalf("revision %d read whole: %v (stacks %+v)", want.Revision, err, whole.Stacks)
		}
		if prev != nil {
			inc, err := s.RevisionFrom(ctx, prev, want.Revision)
			if err != nil || config.Hash(inc) != want.Hash || len(inc.Stacks) != len(want.Stacks) {
				t.Fatalf("revision %d from its parent: %v (stacks %+v)", want.Revision, err, inc.Stacks)
			}
		}
		prev = whole
	}
	if resp, err := s.cli.Get(ctx, keyStacks); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("the stacks key outlives the last stack: %v", err)
	}
	// Earlier revisions still read as they were.
	if old, err := s.Revision(ctx, 1); err != nil || config.Hash(old) != revs[0].Hash || old.Stack("shared") == nil {
		t.Errorf("revision 1 after the stacks went: %v", err)
	}
	// Read by another client (nothing remembered), from etcd's versions,
	// then rebuilt from the undo once etcd compacted past them all.
	for _, compact := range []bool{false, true} {
		if compact {
			resp, err := s.cli.Put(ctx, keyNodes+"churn", "x")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.cli.Compact(ctx, resp.Header.Revision); err != nil {
				t.Fatal(err)
			}
		}
		fresh := openStore(t, m.Endpoints())
		for _, want := range revs {
			got, err := fresh.Revision(ctx, want.Revision)
			if err != nil || config.Hash(got) != want.Hash || len(got.Stacks) != len(want.Stacks) {
				t.Errorf("revision %d read by a fresh client (etcd compacted: %v): %v", want.Revision, compact, err)
			}
		}
	}
}
