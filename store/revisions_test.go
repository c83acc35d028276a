package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/intercloud/intercloud/config"
)

// site is a rendered snapshot with n distributions, each with a behavior
// and a header, hashed as the controller hashes it.
func site(rev int64, n int, tag string) *config.Snapshot {
	s := &config.Snapshot{Revision: rev, Time: time.Now().UTC(), Site: config.Site{Name: "t"}}
	for i := range n {
		s.Distributions = append(s.Distributions, config.Distribution{Name: fmt.Sprintf("d%05d", i), Spec: config.Spec{
			Origins:   map[string]config.Origin{"o": {URL: "http://127.0.0.1:9001"}},
			Behaviors: []config.Behavior{{Path: "*", Target: "o"}},
			Headers:   config.Headers{Response: config.HeaderEdit{Set: map[string]string{"X-Tag": tag}}},
		}})
	}
	s.Hash = config.Hash(s)
	return s
}

func rehash(s *config.Snapshot, rev int64) *config.Snapshot {
	s.Revision, s.Hash = rev, config.Hash(s)
	return s
}

// distributionMods is each distribution key's mod revision.
func distributionMods(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	resp, err := s.cli.Get(context.Background(), keyDistributions, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, kv := range resp.Kvs {
		out[strings.TrimPrefix(string(kv.Key), keyDistributions)] = kv.ModRevision
	}
	return out
}

func TestRevisionsScaleWithTheChange(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := context.Background()

	// 1,000 distributions: more than one etcd transaction can hold.
	first := site(1, 1000, "a")
	if err := s.Commit(ctx, first, 0); err != nil {
		t.Fatal(err)
	}
	cur, mod, err := s.Current(ctx)
	if err != nil || cur.Hash != first.Hash || len(cur.Distributions) != 1000 {
		t.Fatalf("revision 1 read back: %v, %d distributions", err, len(cur.Distributions))
	}
	before := distributionMods(t, s)

	// A one-line change writes that distribution and nothing else.
	next := site(2, 1000, "a")
	next.Distributions[17].Spec.Headers.Response.Set["X-Tag"] = "b"
	rehash(next, 2)
	if err := s.Commit(ctx, next, mod); err != nil {
		t.Fatal(err)
	}
	after := distributionMods(t, s)
	var rewritten []string
	for name, rev := range after {
		if rev != before[name] {
			rewritten = append(rewritten, name)
		}
	}
	if !slices.Equal(rewritten, []string{"d00017"}) {
		t.Fatalf("a one-line change rewrote %d distributions: %v", len(rewritten), rewritten[:min(5, len(rewritten))])
	}
	man, _, err := s.manifest(ctx, 2)
	if err != nil || man.Parent != 1 || !slices.Equal(man.Changed, []string{"d00017"}) || man.Site || len(man.Removed) != 0 {
		t.Fatalf("manifest of revision 2: %+v %v", man, err)
	}

	// Revision 1 still reads as it was; revision 2 whole and from 1 agree.
	old, err := s.Revision(ctx, 1)
	if err != nil || config.Hash(old) != first.Hash {
		t.Fatalf("revision 1 after revision 2: %v", err)
	}
	whole, err := s.Revision(ctx, 2)
	if err != nil || config.Hash(whole) != next.Hash {
		t.Fatalf("revision 2 read whole: %v", err)
	}
	inc, err := s.RevisionFrom(ctx, old, 2)
	if err != nil || inc.Hash != next.Hash || config.Hash(inc) != next.Hash || inc.Distributions[17].Spec.Headers.Response.Set["X-Tag"] != "b" {
		t.Fatalf("revision 2 built from 1: %v", err)
	}

	// Removing distributions and changing the site.
	_, mod, _ = s.Current(ctx)
	third := site(3, 990, "a")
	third.Distributions[17] = next.Distributions[17]
	third.Site.Name = "t2"
	rehash(third, 3)
	if err := s.Commit(ctx, third, mod); err != nil {
		t.Fatal(err)
	}
	man, _, _ = s.manifest(ctx, 3)
	if !man.Site || len(man.Removed) != 10 || len(man.Changed) != 0 {
		t.Fatalf("manifest of revision 3: site %v removed %d changed %v", man.Site, len(man.Removed), man.Changed)
	}
	if inc, err := s.RevisionFrom(ctx, whole, 3); err != nil || config.Hash(inc) != third.Hash || inc.Site.Name != "t2" || len(inc.Distributions) != 990 {
		t.Fatalf("revision 3 built from 2: %v", err)
	}
	// From a base that is not its parent, it reads whole.
	if inc, err := s.RevisionFrom(ctx, old, 3); err != nil || config.Hash(inc) != third.Hash {
		t.Fatalf("revision 3 from revision 1: %v", err)
	}
}

// A commit whose parts were written but whose last step never ran leaves
// keys newer than the current revision; readers never see them, and the
// next commit writes them again.
func TestPartsOfAnUnfinishedCommitAreNeitherReadNorKept(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := context.Background()
	first := site(1, 3, "a")
	if err := s.Commit(ctx, first, 0); err != nil {
		t.Fatal(err)
	}
	// The parts of an unfinished revision 2: one changed, one new.
	garbage, _ := json.Marshal(config.Distribution{Name: "d00001", Spec: config.Spec{Aliases: []string{"half.example.test"}}})
	if _, err := s.cli.Put(ctx, keyDistributions+"d00001", string(garbage)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cli.Put(ctx, keyDistributions+"zzz", string(garbage)); err != nil {
		t.Fatal(err)
	}
	cur, mod, err := s.Current(ctx)
	if err != nil || cur.Hash != first.Hash {
		t.Fatalf("the current revision shows half a commit: %v", err)
	}
	// Another process (no memory of revision 1) commits the same content
	// with one change elsewhere.
	other := openStore(t, m.Endpoints())
	next := site(2, 3, "a")
	next.Distributions[2].Spec.Headers.Response.Set["X-Tag"] = "c"
	rehash(next, 2)
	if err := other.Commit(ctx, next, mod); err != nil {
		t.Fatal(err)
	}
	got, err := s.Revision(ctx, 2)
	if err != nil || config.Hash(got) != next.Hash || len(got.Distributions) != 3 {
		t.Fatalf("revision 2 after a half commit: %v, %d distributions", err, len(got.Distributions))
	}
}

func TestLegacyRevisionsReadAndMoveOn(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := context.Background()
	// The layout of earlier versions: a whole snapshot per revision.
	old := site(1, 2, "a")
	body, _ := json.Marshal(old)
	info, _ := json.Marshal(RevisionInfo{Revision: 1, Hash: old.Hash, Time: old.Time})
	for k, v := range map[string]string{revisionKey(1): string(body), keyRevision: string(info)} {
		if _, err := s.cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	cur, mod, err := s.Current(ctx)
	if err != nil || cur.Hash != old.Hash || len(cur.Distributions) != 2 {
		t.Fatalf("a legacy revision: %v", err)
	}
	next := rehash(site(2, 2, "b"), 2)
	if err := s.Commit(ctx, next, mod); err != nil {
		t.Fatal(err)
	}
	got, err := s.RevisionFrom(ctx, cur, 2)
	if err != nil || config.Hash(got) != next.Hash {
		t.Fatalf("revision 2 after a legacy one: %v", err)
	}
	if hist, err := s.History(ctx); err != nil || len(hist) != 2 || hist[0].Hash != old.Hash {
		t.Fatalf("history across layouts: %+v %v", hist, err)
	}
}

func TestTooLargeADistributionNamesTheLimit(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	big := site(1, 1, "a")
	big.Distributions[0].Spec.Aliases = []string{strings.Repeat("x", config.MaxDistributionBytes)}
	err := s.Commit(context.Background(), big, 0)
	if err == nil || !strings.Contains(err.Error(), "distribution d00000") || !strings.Contains(err.Error(), fmt.Sprint(config.MaxDistributionBytes)) {
		t.Fatalf("commit of a too large distribution: %v", err)
	}
}

func TestPruneKeepsWhatTheRetentionSaysAndCompactsPastTheRest(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := context.Background()
	var mod int64
	hashes := map[int64]string{}
	for rev := int64(1); rev <= 30; rev++ {
		snap := site(rev, 20, "a")
		snap.Distributions[rev%20].Spec.Headers.Response.Set["X-Tag"] = fmt.Sprint(rev)
		if rev%7 == 0 {
			snap.Site.Name = fmt.Sprint("site-", rev) // the site changes now and then
		}
		if rev >= 10 && rev < 15 {
			snap.Distributions = snap.Distributions[:15+rev%3] // some removed, then back
		}
		if err := s.Commit(ctx, rehash(snap, rev), mod); err != nil {
			t.Fatal(err)
		}
		hashes[rev] = snap.Hash
		_, mod, _ = s.Current(ctx)
	}
	now := time.Now()
	// A pinned revision keeps the line of history after it.
	res, err := s.Prune(ctx, Retention{Keep: 5, KeepFor: time.Hour, Pinned: []int64{3}}, now.Add(2*time.Hour))
	if err != nil || res.Deleted != 2 || res.Kept != 28 || res.Oldest != 3 || res.CompactAt == 0 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	res, err = s.Prune(ctx, Retention{Keep: 5, KeepFor: time.Hour}, now.Add(2*time.Hour))
	if err != nil || res.Deleted != 23 || res.Kept != 5 || res.Oldest != 26 || res.Objects == 0 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	hist, _ := s.History(ctx)
	if len(hist) != 5 || hist[0].Revision != 26 {
		t.Fatalf("history after prune: %+v", hist)
	}
	// etcd compacted to the revision before the current one: the kept
	// ones before it are rebuilt from their undo, exactly.
	if _, err := s.cli.Get(ctx, keySite, clientv3.WithRev(res.CompactAt-1)); err == nil {
		t.Fatal("etcd history before the revision before the current one was not compacted")
	}
	fresh := openStore(t, m.Endpoints()) // nothing remembered
	for rev := int64(26); rev <= 30; rev++ {
		got, err := fresh.Revision(ctx, rev)
		if err != nil || got.Revision != rev || config.Hash(got) != hashes[rev] {
			t.Fatalf("revision %d kept but not read back as written: %v", rev, err)
		}
	}
	if _, err := s.Revision(ctx, 2); err == nil || !strings.Contains(err.Error(), "older than the history kept") {
		t.Fatalf("a pruned revision: %v", err)
	}
	// Only the objects the kept revisions' undo names are left.
	need := map[string]bool{}
	for rev := int64(27); rev <= 30; rev++ {
		m, _, err := s.manifest(ctx, rev)
		if err != nil || m.Undo == nil {
			t.Fatalf("manifest %d: %+v %v", rev, m, err)
		}
		for _, id := range m.Undo.Dists {
			need[id] = true
		}
		if m.Undo.Site != "" {
			need[m.Undo.Site] = true
		}
	}
	objs, err := s.cli.Get(ctx, keyObjects, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil || len(objs.Kvs) != len(need) || len(need) < 8 {
		t.Fatalf("history objects after prune: %d, %v; want the %d that revisions 27 to 30 name", len(objs.Kvs), err, len(need))
	}
	for _, kv := range objs.Kvs {
		if !need[strings.TrimPrefix(string(kv.Key), keyObjects)] {
			t.Errorf("object %s kept, no kept revision needs it", kv.Key)
		}
	}
	// Young revisions are kept whatever their number.
	res, err = s.Prune(ctx, Retention{Keep: 1, KeepFor: time.Hour}, now)
	if err != nil || res.Deleted != 0 {
		t.Fatalf("prune within keepFor: %+v %v", res, err)
	}
}

// etcd may compact past any revision's point in its history (node status
// keeps writing; an operator's retention): the current revision still
// reads from what the keys are now, an older one is rebuilt from the undo
// of those after it, and one whose later revisions kept no undo (written
// by an earlier version) says it is gone, and prune drops it.
func TestRevisionsAfterEtcdCompactedPastThem(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := context.Background()
	first := site(1, 5, "a")
	if err := s.Commit(ctx, first, 0); err != nil {
		t.Fatal(err)
	}
	_, mod, _ := s.Current(ctx)
	second := site(2, 4, "b") // one removed, the rest changed
	second.Site.Name = "t2"
	if err := s.Commit(ctx, rehash(second, 2), mod); err != nil {
		t.Fatal(err)
	}
	compact := func() {
		var head int64
		for i := range 20 { // status churn
			resp, err := s.cli.Put(ctx, keyNodes+fmt.Sprint("n", i), "x")
			if err != nil {
				t.Fatal(err)
			}
			head = resp.Header.Revision
		}
		if _, err := s.cli.Compact(ctx, head); err != nil {
			t.Fatal(err)
		}
	}
	compact()
	s = openStore(t, m.Endpoints()) // nothing read before, nothing remembered
	cur, _, err := s.Current(ctx)
	if err != nil || config.Hash(cur) != second.Hash || len(cur.Distributions) != 4 {
		t.Fatalf("the current revision after compaction: %v", err)
	}
	if got, err := s.Site(ctx, 2); err != nil || got.Name != "t2" {
		t.Fatalf("the current site after compaction: %v", err)
	}
	if got, err := s.Revision(ctx, 1); err != nil || config.Hash(got) != first.Hash || len(got.Distributions) != 5 {
		t.Fatalf("revision 1 rebuilt after compaction: %v", err)
	}
	if got, err := s.Site(ctx, 1); err != nil || got.Name != "t" {
		t.Fatalf("the site of revision 1 after compaction: %v", err)
	}
	if res, err := s.Prune(ctx, Retention{Keep: 10, KeepFor: time.Hour}, time.Now()); err != nil || res.Deleted != 0 || res.Kept != 2 {
		t.Fatalf("prune after compaction: %+v %v", res, err)
	}

	// Revision 2 as an earlier version wrote it: no undo.
	resp, err := s.cli.Get(ctx, revisionKey(2))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.Unmarshal(resp.Kvs[0].Value, &raw)
	delete(raw, "undo")
	b, _ := json.Marshal(raw)
	if _, err := s.cli.Put(ctx, revisionKey(2), string(b)); err != nil {
		t.Fatal(err)
	}
	compact()
	s = openStore(t, m.Endpoints())
	if _, err := s.Revision(ctx, 1); err == nil || !strings.Contains(err.Error(), "older than the history the store keeps") {
		t.Fatalf("a revision without undo after it, compacted: %v", err)
	}
	res, err := s.Prune(ctx, Retention{Keep: 10, KeepFor: time.Hour}, time.Now())
	if err != nil || res.Deleted != 1 || res.Kept != 1 {
		t.Fatalf("prune after compaction: %+v %v", res, err)
	}
}

func TestTooWideAChangeNamesTheLimit(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	defer func(v int) { maxManifestBytes = v }(maxManifestBytes)
	maxManifestBytes = 600
	err := s.Commit(context.Background(), site(1, 40, "a"), 0)
	if err == nil || !strings.Contains(err.Error(), "changes 40 distributions") || !strings.Contains(err.Error(), "over the 600") {
		t.Fatalf("commit of a too wide change: %v", err)
	}
	if cur, _, err := s.Current(context.Background()); err != nil || cur != nil {
		t.Fatalf("after the refused commit: %v, %v; want nothing", cur, err)
	}
}

// A commit that writes an object again while prune collects the ones no
// kept revision needs (its undo names the same content) keeps it: only
// the version prune listed is deleted.
func TestPruneSparesAnObjectWrittenAgainMeanwhile(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := context.Background()
	var mod int64
	for rev := int64(1); rev <= 6; rev++ {
		snap := site(rev, 4, "a")
		snap.Distributions[0].Spec.Headers.Response.Set["X-Tag"] = fmt.Sprint(rev)
		if err := s.Commit(ctx, rehash(snap, rev), mod); err != nil {
			t.Fatal(err)
		}
		_, mod, _ = s.Current(ctx)
	}
	objs, err := s.cli.Get(ctx, keyObjects, clientv3.WithPrefix())
	if err != nil || len(objs.Kvs) < 3 {
		t.Fatalf("objects before prune: %d %v", len(objs.Kvs), err)
	}
	again := objs.Kvs[0] // the oldest revisions' undo: prune will drop it
	afterObjectsListed = func() {
		if _, err := s.cli.Put(ctx, string(again.Key), string(again.Value)); err != nil {
			t.Error(err)
		}
	}
	defer func() { afterObjectsListed = nil }()
	res, err := s.Prune(ctx, Retention{Keep: 1}, time.Now().Add(time.Hour))
	if err != nil || res.Objects == 0 {
		t.Fatalf("prune: %+v %v", res, err)
	}
	if got, err := s.cli.Get(ctx, string(again.Key)); err != nil || len(got.Kvs) != 1 {
		t.Fatalf("the object written again during the collection was deleted (%v)", err)
	}
	left, _ := s.cli.Get(ctx, keyObjects, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if len(left.Kvs) != 1 {
		t.Fatalf("%d objects left, want only the one written again", len(left.Kvs))
	}
}
