package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/store"
)

// measureHistory makes n one-line applies (each changes the X-Tag line of
// the next distribution in turn, the change a user makes in a file, here
// made on the rendered snapshot so that 10,000 applies do not re-read
// 10,000 files each) through Controller.Apply, while the controller's
// history loop prunes as it does in `intercloud controller` (every 100
// commits and every minute). Then it prunes once more and compares the
// members' database sizes with what the keyspace holds: one full copy of
// the site, and the history the retention keeps.
func measureHistory(b *testing.B, ctx context.Context, ctl *controller.Controller, s *store.Store, cli *clientv3.Client,
	cfg string, n int, fail func(*testing.B, string, ...any)) []metric {
	cur, err := load(cfg)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	var lat []float64
	viaStore := os.Getenv("CPBENCH_HISTORY_VIA") != "controller"
	prev, _, err := s.Pointer(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		next := *cur
		next.Distributions = slices.Clone(cur.Distributions)
		d := &next.Distributions[i%len(next.Distributions)]
		d.Spec.Headers.Response.Set = maps.Clone(d.Spec.Headers.Response.Set)
		d.Spec.Headers.Response.Set["X-Tag"] = fmt.Sprintf("h%d", i)
		a0 := time.Now()
		if viaStore {
			// The controller's commit, without its O(site) reads and
			// hash: the same keys written by the same store.Commit.
			_, mod, err := s.Pointer(ctx)
			if err != nil {
				b.Fatal(err)
			}
			next.Revision = prev.Revision + 1
			next.Time = time.Now().UTC().Truncate(time.Millisecond)
			next.Reason = "one-line change"
			next.Hash = chainHash(prev.Hash, d)
			if err := s.Commit(ctx, &next, mod); err != nil {
				fail(b, "commit %d of %d: %v", i+1, n, err)
			}
			prev.Revision, prev.Hash = next.Revision, next.Hash
			if (i+1)%100 == 0 { // the controller wakes its pruner every 100 commits
				if err := ctl.PruneHistory(ctx); err != nil {
					fail(b, "prune: %v", err)
				}
			}
		} else {
			res, err := ctl.Apply(ctx, &next, "one-line change")
			if err != nil {
				fail(b, "apply %d of %d: %v", i+1, n, err)
			}
			if !res.Changed {
				fail(b, "apply %d of %d changed nothing", i+1, n)
			}
		}
		lat = append(lat, time.Since(a0).Seconds())
		cur = &next
		if (i+1)%1000 == 0 {
			b.Logf("%d applies in %v (p50 %.0f ms, p99 %.0f ms)", i+1, time.Since(t0).Round(time.Second),
				pct(lat, 50)*1000, pct(lat, 99)*1000)
		}
	}
	elapsed := time.Since(t0)
	// The pruner runs after every 100th commit; run it once more, as its
	// minute tick would, so that the last commits are pruned too.
	if err := ctl.PruneHistory(ctx); err != nil {
		fail(b, "prune: %v", err)
	}
	hist, err := s.History(ctx)
	if err != nil {
		b.Fatal(err)
	}
	sizes := keyspaceSizes(b, ctx, cli)
	left := dbSizes(b, ctx, cli) // as the controller leaves them
	// Defragment every member whatever its size (the controller does it
	// only past 64 MiB with half of it free): the file size is then what
	// the data takes.
	for _, ep := range cli.Endpoints() {
		if _, err := cli.Defragment(ctx, ep); err != nil {
			b.Fatalf("defragment %s: %v", ep, err)
		}
	}
	defrag := dbSizes(b, ctx, cli)
	allowed := sizes.full + sizes.history + sizes.other
	mib := func(x int64) float64 { return float64(x) / (1 << 20) }
	b.Logf("%d applies in %v; %d revisions kept (%d..%d)", n, elapsed.Round(time.Second), len(hist), hist[0].Revision, hist[len(hist)-1].Revision)
	b.Logf("keyspace: one full copy %.2f MiB (site + %d distributions), history kept %.2f MiB (%d manifests, %d older versions), other keys %.2f MiB",
		mib(sizes.full), sizes.dists, mib(sizes.history), sizes.manifests, sizes.versions, mib(sizes.other))
	b.Logf("members' db as the controller leaves it: size %v MiB, in use %v MiB; after defragmenting: %v MiB",
		mibs(left.size), mibs(left.inUse), mibs(defrag.size))
	return []metric{
		{float64(n) / elapsed.Seconds(), "applies/s"},
		{pct(lat, 50) * 1000, "apply-p50-ms"},
		{mib(sizes.full), "full-copy-MiB"},
		{mib(sizes.history), "history-MiB"},
		{mib(slices.Max(left.size)), "db-MiB"},
		{mib(slices.Max(left.inUse)), "db-in-use-MiB"},
		{mib(slices.Max(defrag.size)), "db-defrag-MiB"},
		{float64(slices.Max(left.inUse)) / float64(allowed), "in-use/(copy+history)"},
		{float64(slices.Max(defrag.size)) / float64(allowed), "defrag/(copy+history)"},
	}
}

type memberSizes struct{ size, inUse []int64 }

func dbSizes(b *testing.B, ctx context.Context, cli *clientv3.Client) memberSizes {
	var out memberSizes
	for _, ep := range cli.Endpoints() {
		st, err := cli.Status(ctx, ep)
		if err != nil {
			b.Fatalf("status of %s: %v", ep, err)
		}
		out.size = append(out.size, st.DbSize)
		out.inUse = append(out.inUse, st.DbSizeInUse)
	}
	return out
}

func mibs(x []int64) string {
	var s []string
	for _, v := range x {
		s = append(s, fmt.Sprintf("%.2f", float64(v)/(1<<20)))
	}
	return strings.Join(s, " / ")
}

// keyspace is what the keyspace holds, in bytes of keys and values.
type keyspace struct {
	full      int64 // the site and every distribution, as of now
	dists     int
	history   int64 // the manifests kept, the parts they replaced (objects) and the older versions they read
	manifests int
	versions  int
	other     int64 // every other key (pointer, health, nodes, ...)
}

func keyspaceSizes(b *testing.B, ctx context.Context, cli *clientv3.Client) keyspace {
	var k keyspace
	type manifest struct {
		etcdRev int64
		changed []string
	}
	var kept []manifest
	cur := map[string]int64{} // key → mod revision of the value now
	from, end := "/intercloud/", clientv3.GetPrefixRangeEnd("/intercloud/")
	for {
		resp, err := cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(1000))
		if err != nil {
			b.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			key, size := string(kv.Key), int64(len(kv.Key)+len(kv.Value))
			cur[key] = kv.ModRevision
			switch {
			case key == "/intercloud/site":
				k.full += size
			case strings.HasPrefix(key, "/intercloud/distributions/"):
				k.full += size
				k.dists++
			case strings.HasPrefix(key, "/intercloud/revisions/"):
				k.history += size
				k.manifests++
				var m struct {
					Changed []string `json:"changed"`
					Site    bool     `json:"siteChanged"`
				}
				if err := json.Unmarshal(kv.Value, &m); err != nil {
					b.Fatalf("%s: %v", key, err)
				}
				var keys []string
				if m.Site {
					keys = append(keys, "/intercloud/site")
				}
				for _, n := range m.Changed {
					keys = append(keys, "/intercloud/distributions/"+n)
				}
				kept = append(kept, manifest{kv.CreateRevision, keys})
			case strings.HasPrefix(key, "/intercloud/objects/"):
				k.history += size // what a kept revision replaced, once compaction took its etcd version
			default:
				k.other += size
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	// The versions a kept revision reads that are no longer current.
	for _, m := range kept {
		for _, key := range m.changed {
			if cur[key] <= m.etcdRev {
				continue // still the current value: counted in the full copy
			}
			resp, err := cli.Get(ctx, key, clientv3.WithRev(m.etcdRev))
			if errors.Is(err, rpctypes.ErrCompacted) {
				continue // compacted: the version lives on as an object, counted above
			}
			if err != nil {
				b.Fatalf("%s at %d: %v", key, m.etcdRev, err)
			}
			for _, kv := range resp.Kvs {
				k.history += int64(len(kv.Key) + len(kv.Value))
				k.versions++
			}
		}
	}
	return k
}

// chainHash stands in for the canonical hash (config.Hash, ~0.4 s for
// 10,000 distributions): a SHA-256 of the previous revision's hash and
// the changed distribution, the same size in the store.
func chainHash(prev string, d *config.Distribution) string {
	b, _ := json.Marshal(d)
	h := sha256.Sum256(append([]byte(prev), b...))
	return hex.EncodeToString(h[:])
}
