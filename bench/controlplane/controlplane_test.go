// Package controlplane measures the control plane at CDN scale (issue 14):
// a real three-member etcd cluster (three `intercloud store` processes on
// loopback), the controller package, and a fleet of real agents.
//
//   - BenchmarkControlPlane/apply-10k: 10,000 distribution files (two
//     origins in a group, three behaviors, response headers each) loaded
//     with config.Load + Render and applied with Controller.Apply; the
//     time from the apply's start until every node reports the revision.
//   - BenchmarkControlPlane/one-line-change: one line of one distribution
//     file changed and applied, 20 times; the time from Apply returning
//     until every node's edge answers a client with the new header
//     (polled over HTTP on each edge's listener, as a client sees it), and
//     until every node reports the revision in the store.
//   - BenchmarkControlPlane/history: one-line applies (store.Commit, see
//     history_test.go) with history pruned as the controller does,
//     then the members' database sizes against one full copy of the site
//     plus the history kept.
//
// BenchmarkRoleMemory and BenchmarkDNSVsGdnsd10k (roles_test.go) measure
// the edge's and the DNS server's memory per distribution and the DNS
// server's queries per second against gdnsd with 10,000 names in the zone.
//
// Sizes: CPBENCH_DISTRIBUTIONS (10,000), CPBENCH_NODES (50),
// CPBENCH_CHANGES (20), CPBENCH_APPLIES (2,000), and
// CPBENCH_NODES_PER_CLIENT (1: every agent its own store client; see
// fleet). The 100 nodes run with CPBENCH_NODES=100
// CPBENCH_NODES_PER_CLIENT=25 (bench/README.md, run H): with a client
// each, 100 agents decode 100 copies of every revision on two cores.
// 10,000 applies take ~17 min at ~100 ms each, so the default 2,000 keeps
// `make bench` within its timeout.
package controlplane

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
)

const (
	// dnsNodes of the fleet also run the DNS role (one per cloud): a site
	// has a few authoritative servers and many edges.
	dnsNodes = 4
	// pollEvery is how often each edge is asked for the change: often
	// enough for a figure against a 1 s target, rarely enough that 100
	// pollers do not take the cores the nodes need (~5,000 requests/s
	// while the change is on its way, fewer as nodes get it).
	pollEvery = 20 * time.Millisecond
	// memoryLimit is the benchmark process's Go memory limit while the
	// fleet runs.
	memoryLimit = 12 << 30
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkControlPlane runs the three control-plane measurements on one
// cluster and one fleet, in order: the large apply, the one-line changes
// (the fleet holding the large site), then the history (fleet stopped).
func BenchmarkControlPlane(b *testing.B) {
	nDists := envInt("CPBENCH_DISTRIBUTIONS", 10000)
	nNodes := envInt("CPBENCH_NODES", 50)
	nChanges := envInt("CPBENCH_CHANGES", 20)
	nApplies := envInt("CPBENCH_APPLIES", 2000)
	perClient := envInt("CPBENCH_NODES_PER_CLIENT", 1)
	b.Logf("%d nodes, %d per store client", nNodes, perClient)

	// 100 nodes holding 10,000 distributions are over 7.5 GB of live heap in
	// one process (the snapshot ~4 KB and the edge's table ~3.3 KB per
	// distribution per node, BenchmarkRoleMemory); with the default GOGC
	// the heap would grow to twice that. The limit makes the collector run
	// before the machine's memory is gone; the nodes pay for that in CPU.
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(memoryLimit))
	dir := b.TempDir()
	bin := buildBinary(b, dir)
	endpoints, _ := startCluster(b, bin, filepath.Join(dir, "store"))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		io.WriteString(w, "ok")
	}))
	b.Cleanup(origin.Close)

	nodes := fleetSpec(b, nNodes, min(dnsNodes, nNodes))
	cfg := filepath.Join(dir, "cfg")
	writeConfig(b, cfg, siteYAML(endpoints, nodes), nDists, origin.URL)

	s, err := store.Open(endpoints)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	logs := &syncBuffer{}
	ctl := controller.New(controller.Options{Store: s, Registry: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	// What `intercloud controller` runs beside its API. Health checks read
	// every revision and probe every edge; they stop with the fleet.
	ctx, cancel := context.WithCancel(context.Background())
	healthCtx, stopHealth := context.WithCancel(ctx)
	b.Cleanup(stopHealth)
	var bg sync.WaitGroup
	bg.Add(3)
	go func() { defer bg.Done(); ctl.RunHealth(healthCtx) }()
	go func() { defer bg.Done(); ctl.RunRollouts(ctx) }()
	go func() { defer bg.Done(); ctl.RunHistory(ctx) }()
	b.Cleanup(func() { cancel(); bg.Wait() })

	fl := startFleet(b, endpoints, nodes, filepath.Join(dir, "nodes"), perClient)
	reports := watchReports(ctx, s)
	fail := func(b *testing.B, format string, args ...any) {
		b.Helper()
		b.Logf("controller log:\n%s", tail(logs.String()))
		b.Logf("agents' log:\n%s", tail(fl.logs.String()))
		b.Fatalf(format, args...)
	}

	var snap *config.Snapshot // the site as last applied
	b.Run("apply-10k", func(b *testing.B) {
		once(b, func() []metric {
			t0 := time.Now()
			var err error
			snap, err = load(cfg)
			if err != nil {
				b.Fatal(err)
			}
			loaded := time.Now()
			res, err := ctl.Apply(ctx, snap, "apply files")
			if err != nil {
				fail(b, "apply %d distributions: %v", nDists, err)
			}
			applied := time.Now()
			all, ok := reports.wait(res.Revision, nodes, 5*time.Minute)
			if !ok {
				fail(b, "not every node reported revision %d within 5 minutes", res.Revision)
			}
			// Every edge serves the site, as a client sees it.
			for i := range nodes {
				for _, d := range []int{0, nDists / 2, nDists - 1} {
					if got := fl.tag(i, distName(d)); got != "v0" {
						fail(b, "node %s, %s: X-Tag %q, want v0", nodes[i].name, distName(d), got)
					}
				}
			}
			snap.Revision = res.Revision
			b.Logf("%d distributions, %d nodes: load+render %v, Apply %v, every node reporting %v after the apply started (first %v, median %v)",
				nDists, nNodes, loaded.Sub(t0).Round(time.Millisecond), applied.Sub(loaded).Round(time.Millisecond),
				all.last.Sub(loaded).Round(time.Millisecond), all.first.Sub(loaded).Round(time.Millisecond), all.median.Sub(loaded).Round(time.Millisecond))
			return []metric{
				{loaded.Sub(t0).Seconds(), "load+render-s"},
				{applied.Sub(loaded).Seconds(), "apply-s"},
				{all.first.Sub(loaded).Seconds(), "first-node-s"},
				{all.median.Sub(loaded).Seconds(), "median-node-s"},
				{all.last.Sub(loaded).Seconds(), "every-node-s"},
			}
		})
	})
	if snap == nil || b.Failed() {
		return
	}

	b.Run("one-line-change", func(b *testing.B) {
		once(b, func() []metric {
			var everyServe, everyReport, applies, perNode []float64
			for i := 1; i <= nChanges; i++ {
				target := (i * 397) % nDists
				tag := fmt.Sprintf("v%d", i)
				writeDist(b, cfg, target, origin.URL, tag)
				next, err := load(cfg)
				if err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				res, err := ctl.Apply(ctx, next, "one-line change")
				returned := time.Now()
				if err != nil {
					fail(b, "change %d: %v", i, err)
				}
				if !res.Changed || len(res.Changes) != 1 {
					fail(b, "change %d: want one change, got %+v", i, res.Changes)
				}
				served, ok := fl.waitServed(distName(target), tag, returned, 30*time.Second)
				if !ok {
					var got []string
					for j := range nodes {
						got = append(got, fl.tag(j, distName(target)))
					}
					st, _ := s.Nodes(ctx)
					for _, n := range nodes {
						b.Logf("%s: revision %d healthy %v %s", n.name, st[n.name].Revision, st[n.name].Healthy, st[n.name].Message)
					}
					fail(b, "change %d: not every edge served %s %s within 30s (now: %q)", i, distName(target), tag, got)
				}
				rep, ok := reports.wait(res.Revision, nodes, 60*time.Second)
				if !ok {
					fail(b, "change %d: not every node reported revision %d within 60s", i, res.Revision)
				}
				applies = append(applies, returned.Sub(t0).Seconds())
				everyServe = append(everyServe, slices.Max(served))
				everyReport = append(everyReport, rep.last.Sub(returned).Seconds())
				perNode = append(perNode, served...)
				// Let the fleet settle (reports written) before the next change.
				time.Sleep(500 * time.Millisecond)
			}
			b.Logf("time to every edge serving, per change (s): %.3f", everyServe)
			b.Logf("time to every node reporting, per change (s): %.3f", everyReport)
			b.Logf("Apply duration, per change (s): %.3f", applies)
			return []metric{
				{pct(everyServe, 50) * 1000, "serve-p50-ms"},
				{pct(everyServe, 99) * 1000, "serve-p99-ms"},
				{pct(perNode, 50) * 1000, "node-serve-p50-ms"},
				{pct(perNode, 99) * 1000, "node-serve-p99-ms"},
				{pct(everyReport, 50) * 1000, "report-p50-ms"},
				{pct(everyReport, 99) * 1000, "report-p99-ms"},
				{pct(applies, 50) * 1000, "apply-p50-ms"},
			}
		})
	})
	if b.Failed() {
		return
	}

	// The history is measured without the fleet: 100 nodes following
	// thousands of revisions a minute is not the question, and the cores
	// would go to them. The controller's health checks stop with them.
	fl.stop()
	stopHealth()
	b.Run("history", func(b *testing.B) {
		once(b, func() []metric {
			return measureHistory(b, ctx, ctl, s, etcdClient(b, endpoints), cfg, nApplies, fail)
		})
	})
}

// load reads and renders the config directory, as `intercloud apply` does.
func load(dir string) (*config.Snapshot, error) {
	bundle, err := config.Load(dir)
	if err != nil {
		return nil, err
	}
	return bundle.Render(nil)
}

// waitServed polls every edge until it answers dist with X-Tag tag and
// returns, per node, the seconds from since until it did.
func (f *fleet) waitServed(dist, tag string, since time.Time, timeout time.Duration) ([]float64, bool) {
	out := make([]float64, len(f.nodes))
	ok := make([]bool, len(f.nodes))
	var wg sync.WaitGroup
	for i := range f.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the pollers over the interval.
			time.Sleep(time.Duration(i) * pollEvery / time.Duration(len(f.nodes)))
			for time.Since(since) < timeout {
				if f.tag(i, dist) == tag {
					out[i], ok[i] = time.Since(since).Seconds(), true
					return
				}
				time.Sleep(pollEvery)
			}
		}()
	}
	wg.Wait()
	return out, !slices.Contains(ok, false)
}

// reportWatch follows what the nodes report in the store: when each node
// first reported each revision.
type reportWatch struct {
	mu   sync.Mutex
	seen map[int64]map[string]time.Time
	kick chan struct{}
}

func watchReports(ctx context.Context, s *store.Store) *reportWatch {
	w := &reportWatch{seen: map[int64]map[string]time.Time{}, kick: make(chan struct{}, 1)}
	go s.WatchNodes(ctx, func(m map[string]status.NodeStatus) {
		now := time.Now()
		w.mu.Lock()
		for name, st := range m {
			byNode := w.seen[st.Revision]
			if byNode == nil {
				byNode = map[string]time.Time{}
				w.seen[st.Revision] = byNode
			}
			if _, ok := byNode[name]; !ok {
				byNode[name] = now
			}
		}
		w.mu.Unlock()
		select {
		case w.kick <- struct{}{}:
		default:
		}
	})
	return w
}

type reportTimes struct{ first, median, last time.Time }

// wait waits until every node has reported rev.
func (w *reportWatch) wait(rev int64, nodes []nodeSpec, timeout time.Duration) (reportTimes, bool) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		var ts []time.Time
		for _, n := range nodes {
			if t, ok := w.seen[rev][n.name]; ok {
				ts = append(ts, t)
			}
		}
		w.mu.Unlock()
		if len(ts) == len(nodes) {
			slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
			return reportTimes{ts[0], ts[len(ts)/2], ts[len(ts)-1]}, true
		}
		select {
		case <-w.kick:
		case <-deadline:
			return reportTimes{}, false
		}
	}
}

type metric struct {
	v    float64
	unit string
}

// once runs measure a single time and reports its figures: each figure
// here is one long run against shared state, not an operation to repeat
// b.N times. A measurement shorter than -benchtime is followed by a pause
// to its end, so that the framework does not ask for more iterations; the
// wall time (ns/op) is not reported, it includes that pause.
func once(b *testing.B, measure func() []metric) {
	t0 := time.Now()
	ms := measure()
	for _, m := range ms {
		b.ReportMetric(m.v, m.unit)
	}
	b.ReportMetric(0, "ns/op")
	if f := flag.Lookup("test.benchtime"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil {
			time.Sleep(d - time.Since(t0) + 10*time.Millisecond)
		}
	}
}

// pct is the p-th percentile (nearest rank).
func pct(x []float64, p float64) float64 {
	if len(x) == 0 {
		return 0
	}
	y := slices.Clone(x)
	slices.Sort(y)
	i := int(float64(len(y))*p/100+0.999999) - 1
	return y[min(max(i, 0), len(y)-1)]
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}
