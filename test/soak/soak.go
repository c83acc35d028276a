// Package soak runs the whole system under load while faults come and go
// on a seeded schedule, checks that nothing is lost, and reports it: the
// multi-cloud namespace topology (test/multicloud) grown to two edges and
// a DNS node per cloud and a three-member store, wrk, dnsperf, ping and a
// stream of operator commands against it, malformed input at rate, and
// invariants checked from what was recorded. See README.md.
package soak

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercloud/intercloud/test/multicloud"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
)

// SiteDir is the soak's site, relative to the repository root.
const SiteDir = "test/soak/testdata/site"

// BulkPrefixes is how many /24s of 10.128.0.0/9 on-premises announces.
const BulkPrefixes = 10000

// Edges are the edge nodes of the soak's site and their addresses.
var Edges = map[string]string{
	"seoul-edge-1": multicloud.SeoulEdge, "seoul-edge-2": "10.1.0.11",
	"tokyo-edge-1": multicloud.TokyoEdge, "tokyo-edge-2": "10.2.0.11",
}

// DNS nodes of the soak's site.
const (
	SeoulDNS = "10.1.0.53"
	TokyoDNS = "10.2.0.53"
)

// extra are the nodes the soak adds to the multi-cloud layout.
var extra = []multicloud.ExtraNode{
	{Name: "seoul-edge-2", Cloud: "seoul", Addr: "10.1.0.11"},
	{Name: "tokyo-edge-2", Cloud: "tokyo", Addr: "10.2.0.11"},
	{Name: "seoul-dns", Cloud: "seoul", Addr: SeoulDNS},
	{Name: "tokyo-dns", Cloud: "tokyo", Addr: TokyoDNS},
}

// Options configure Run.
type Options struct {
	Binary, Repo string
	// Duration is the length of each phase of load.
	Duration time.Duration
	// Baseline runs a fault-free phase of the same length first, for the
	// added latency.
	Baseline bool
	Seed     int64
	// IdleConns is how many idle connections the bad-input sender holds
	// open (spread over the edges).
	IdleConns int
	// Slack is how long a fault's window runs past its recovery.
	Slack time.Duration
	// Faults are the kinds the schedule draws from (all when empty).
	Faults []string
	// Clock lets the schedule draw the clock step, which steps the whole
	// host's wall clock: only for a run alone on the machine (make soak).
	Clock bool
}

// runner is one soak run.
type runner struct {
	tb   testing.TB
	opts Options
	topo *multicloud.Topology
	toxi *netns.Proc
	// hostile is the namespace of the hostile BGP speaker.
	hostile *netns.Namespace
	logf    func(string, ...any)
	rec     *Recording

	// disks are the edges' disk-tier mounts by node (disk.go).
	disks map[string]string

	mu     sync.Mutex
	dead   map[string]time.Time // killed namespaces, since when
	exited map[*netns.Proc]bool // processes watchExits has seen end
}

// Run builds the topology, runs the phases and returns the recording. It
// fails tb only when the run itself cannot go on; broken invariants are
// in the recording (Problems).
func Run(tb testing.TB, opts Options) *Recording {
	tb.Helper()
	for _, tool := range [][2]string{{"wrk", "wrk"}, {"dnsperf", "dnsperf"}, {"nft", "nftables"}, {"wireguard-go", "wireguard-go"}} {
		testenv.NeedTool(tb, tool[0], tool[1])
	}
	if opts.Slack == 0 {
		opts.Slack = 3 * time.Second
	}
	h := netns.New(tb)
	bird, err := writeBirdConf(tb.TempDir(), filepath.Join(opts.Repo, multicloud.ExampleDir, "onprem", "bird.conf"))
	if err != nil {
		tb.Fatal(err)
	}
	r := &runner{tb: tb, opts: opts, logf: tb.Logf, dead: map[string]time.Time{}, exited: map[*netns.Proc]bool{}}
	topo := multicloud.Build(tb, h, multicloud.Options{Binary: opts.Binary, Repo: opts.Repo,
		SiteDir: SiteDir, Extra: extra, StoreMembers: 3, BirdConf: bird, Prepare: r.mountDisks})
	r.topo = topo
	r.rec = &Recording{Seed: opts.Seed, Duration: opts.Duration, LeaseTTL: topo.Site.Site.Store.LeaseTTL.D(), Slack: opts.Slack}
	// The toxiproxy before blue, in its origin's namespace.
	r.toxi = topo.NS("seoul-origin").StartHelper(toxiHelper, "10.1.0.20:9101", "10.1.0.20:9001")
	r.hostile = topo.InetHost(hostileNS, hostileAddr)

	ctx := context.Background()
	begin := time.Now()
	if t := r.waitRecovered(ctx, 4*time.Minute); t.IsZero() {
		tb.Fatalf("soak: the site never converged: %v", r.recoveredErr(ctx))
	}
	r.logf("soak: every node live and current, %d on-premises prefixes in both gateways, %.1fs after the daemons started", BulkPrefixes, time.Since(begin).Seconds())
	if err := r.prepare(ctx); err != nil {
		tb.Fatal(err)
	}
	if opts.Baseline {
		r.rec.Phases = append(r.rec.Phases, r.phase(ctx, "baseline", nil))
	}
	kinds := kindsOf(opts.Faults, opts.Clock)
	if len(kinds) == 0 {
		tb.Fatalf("soak: no fault kind in %v (clock step allowed: %v)", opts.Faults, opts.Clock)
	}
	r.rec.Phases = append(r.rec.Phases, r.phase(ctx, "faults", Schedule(opts.Seed, opts.Duration, kinds...)))
	return r.rec
}

// prepare writes the load generators' inputs into the run directory.
func (r *runner) prepare(ctx context.Context) error {
	files := map[string]string{
		"soak.lua":    wrkScript,
		"queries.txt": multicloud.ShopDomain + " A\n" + multicloud.StaticDomain + " A\n",
	}
	for name, body := range files {
		if err := writeFile(filepath.Join(r.topo.Dir, name), body); err != nil {
			return err
		}
	}
	return nil
}

// phase runs the load (and the faults of plan) for the run's duration.
func (r *runner) phase(ctx context.Context, name string, plan []Planned) *Phase {
	p := &Phase{Name: name, Start: now()}
	r.logf("soak: phase %s: %s of load, %d faults", name, r.opts.Duration, len(plan))
	p.ProcsStart = r.procStats()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	// Each loop's result goes to a field of its own, read after wg.Wait;
	// mu guards only the slices several loops append to.
	spawn := func(fn func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); fn(loadCtx) }()
	}
	for _, l := range []struct{ ns, edge string }{
		{multicloud.NSKR, "seoul-edge-1"}, {multicloud.NSKR, "seoul-edge-2"},
		{multicloud.NSJP, "tokyo-edge-1"}, {multicloud.NSJP, "tokyo-edge-2"},
	} {
		spawn(func(ctx context.Context) {
			ss := r.wrkLoop(ctx, l.ns, l.edge)
			mu.Lock()
			p.HTTP = append(p.HTTP, ss...)
			mu.Unlock()
		})
	}
	for _, d := range []struct{ ns, server, name, ecs string }{
		{multicloud.NSKR, SeoulDNS, "seoul-dns", ""}, {multicloud.NSJP, TokyoDNS, "tokyo-dns", ""},
		{multicloud.NSKR, TokyoDNS, "tokyo-dns", "10.2.0.0/24"}, {multicloud.NSJP, SeoulDNS, "seoul-dns", "10.1.0.0/24"},
	} {
		spawn(func(ctx context.Context) {
			ss := r.dnsperfLoop(ctx, d.ns, d.server, d.name, d.ecs)
			mu.Lock()
			p.DNS = append(p.DNS, ss...)
			mu.Unlock()
		})
	}
	pings := []*netns.Proc{
		r.topo.NS(multicloud.NSKR).Start("ping", "-D", "-O", "-n", "-i", "0.5", "-W", "1", multicloud.JPClient),
		r.topo.NS(multicloud.NSJP).Start("ping", "-D", "-O", "-n", "-i", "0.5", "-W", "1", multicloud.KRClient),
	}
	spawn(func(ctx context.Context) { p.Control = r.controlLoop(ctx) })
	spawn(func(ctx context.Context) { p.DNSAnswers = r.dnsChecker(ctx) })
	spawn(func(ctx context.Context) { p.Routes = r.routeChecker(ctx) })
	spawn(func(ctx context.Context) { p.Store = r.storeChecker(ctx) })
	spawn(func(ctx context.Context) { p.Exits = r.watchExits(ctx) })
	var bad *badInput
	if plan != nil {
		bad = r.startBadInput(ctx)
	}
	faultsDone := make(chan []Fault, 1)
	faultCtx, stopFaults := context.WithDeadline(ctx, p.Start.Add(r.opts.Duration))
	go func() { faultsDone <- r.inject(faultCtx, p.Start, plan) }()

	time.Sleep(time.Until(p.Start.Add(r.opts.Duration)))
	p.Faults = <-faultsDone // the last fault is healed and recovered
	stopFaults()
	stopLoad()
	wg.Wait()
	p.End = now()
	for i, pg := range pings {
		pg.Stop()
		p.Ping = append(p.Ping, unstepPings(parsePing([]string{multicloud.NSKR, multicloud.NSJP}[i], pg.Output()), p.Faults)...)
	}
	if bad != nil {
		var v []string
		p.BadInput, p.Notes, v = bad.stop(ctx)
		p.Violations = append(p.Violations, v...)
	}
	if plan != nil && !r.opts.Clock {
		p.Notes = append(p.Notes, "clock step not drawn: it steps the whole host's CLOCK_REALTIME (one namespace's cannot be), "+
			"so only a run alone on the machine draws it (SOAK_CLOCK=1, as make soak sets)")
	}
	p.ProcsEnd = r.procStats()
	p.Violations = append(p.Violations, r.endChecks(ctx, p)...)
	r.logf("soak: phase %s done: %d HTTP slices, %d DNS slices, %d faults, %d violations found at the end", name, len(p.HTTP), len(p.DNS), len(p.Faults), len(p.Violations))
	return p
}

// Output writes run.json.gz, report.txt and timeline.png (of the faults
// phase) into dir.
func (rec *Recording) Output(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if err := rec.Save(filepath.Join(dir, "run.json.gz")); err != nil {
		return err
	}
	var b strings.Builder
	rec.Report(&b, CacheBytes)
	if err := os.WriteFile(filepath.Join(dir, "report.txt"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	p := rec.Phase("faults")
	if p == nil {
		return errors.New("soak: no faults phase to plot")
	}
	return rec.Plot(p, filepath.Join(dir, "timeline.png"))
}

// CacheBytes is what each edge's cache may hold (cache.memory of the
// soak's site), allowed on top of the leak bound.
var CacheBytes = map[string]int64{
	"seoul-edge-1": 64 << 20, "seoul-edge-2": 64 << 20, "tokyo-edge-1": 64 << 20, "tokyo-edge-2": 64 << 20,
}

func writeFile(path, body string) error {
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	return nil
}

// writeBirdConf writes the on-premises BIRD config: the demo's, plus a
// static protocol of BulkPrefixes /24s of 10.128.0.0/9 it also exports,
// and a short error wait.
func writeBirdConf(dir, demo string) (string, error) {
	b, err := os.ReadFile(demo)
	if err != nil {
		return "", fmt.Errorf("soak: %w", err)
	}
	conf := strings.Replace(string(b), `export where proto = "onprem";`, `export where proto = "onprem" || proto = "bulk";`, 1)
	// After a session error BIRD stays idle for its error wait time (60 s
	// by default): the soak's BIRD comes back as fast as the bgp tests'
	// does, so what a route loss shows is ours.
	conf = strings.Replace(conf, "connect retry time 1;", "connect retry time 1;\n\terror wait time 1, 2;", 1)
	if !strings.Contains(conf, `proto = "bulk"`) || !strings.Contains(conf, "error wait time") {
		return "", fmt.Errorf("soak: %s no longer has the export and timers the soak extends", demo)
	}
	var sb strings.Builder
	sb.WriteString(conf)
	sb.WriteString("\n# The soak's load on BGP: many prefixes.\nprotocol static bulk {\n\tipv4;\n")
	for i := range BulkPrefixes {
		fmt.Fprintf(&sb, "\troute 10.%d.%d.0/24 unreachable;\n", 128+i/256, i%256)
	}
	sb.WriteString("}\n")
	path := filepath.Join(dir, "bird.conf")
	return path, writeFile(path, sb.String())
}
