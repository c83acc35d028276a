package paths_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/edge"
	"github.com/intercloud/intercloud/test/multicloud"
	"github.com/intercloud/intercloud/test/netns"
)

// TestLinkPaths: the gateway links between two clouds are candidate
// paths of an edge. The multi-cloud layout runs as the product sets it
// up (controller, store, one agent per node; the gateways peer with BGP
// over a dedicated veth line and over a WireGuard tunnel): seoul's edge
// serves an origin in tokyo, and its candidates are link:dx (preferred,
// as BGP prefers the line) and link:vpn: they replace the direct path,
// which would be the line again under another name. Congestion
// on the link in use (an nftables policer in seoul's gateway, on forwarded packets only so that BGP keeps its session)
// moves the misses to the other link within seconds (8 s asserted) with no failed request,
// and the packets of the misses cross the other link both ways (the
// replies by the connection mark tokyo's gateway set); once the policer
// is gone, a miss now and then over the line (probes measure no
// throughput) finds it fast again and the misses come back.
func TestLinkPaths(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := multicloud.BuildBinary(repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := netns.New(t)
	// tokyo's origin serves green's content and a 128 KiB object: loss
	// shows in the throughput of bodies that size, not only in latency.
	prepare := func(tp *multicloud.Topology) {
		dst := filepath.Join(tp.Dir, "content")
		if out, err := exec.Command("cp", "-a", filepath.Join(repo, "examples/quickstart/content/green"), dst).CombinedOutput(); err != nil {
			t.Fatalf("copy the origin's content: %v\n%s", err, out)
		}
		if err := os.WriteFile(filepath.Join(dst, "v2", "big.bin"), bytes.Repeat([]byte("0123456789abcdef"), 8<<10), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	topo := multicloud.Build(t, h, multicloud.Options{Binary: bin, Repo: repo, SiteDir: "test/paths/testdata/links", Prepare: prepare})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if err := topo.WaitAllCurrent(ctx, 90*time.Second); err != nil {
		t.Fatalf("the site never converged: %v", err)
	}
	lp := topo.Site.Site.LinkPaths("seoul", "tokyo")
	if len(lp) != 2 {
		t.Fatalf("link paths seoul-tokyo: %+v, want dx and vpn", lp)
	}
	tos := map[string]int{"direct": 0}
	for _, p := range lp {
		tos["link:"+p.Link] = p.TOS()
	}

	// The gateways installed each link's learned routes in its table and
	// the rules that select it.
	if err := multicloud.Eventually(ctx, 200*time.Millisecond, func() error {
		for _, ns := range []string{"seoul-gw", "tokyo-gw"} {
			rules, err := topo.Run(ctx, ns, "ip", "rule", "show")
			if err != nil {
				return err
			}
			for _, p := range lp {
				for _, want := range []string{fmt.Sprintf("tos 0x%02x lookup %d", p.TOS(), p.Table), fmt.Sprintf("fwmark %#x/%#x lookup %d", p.Mark(), config.LinkMarkMask, p.Table)} {
					if !strings.Contains(rules, want) {
						return fmt.Errorf("%s: no rule %q:\n%s", ns, want, rules)
					}
				}
				routes, err := topo.Run(ctx, ns, "ip", "route", "show", "table", strconv.Itoa(p.Table))
				if err != nil || !strings.Contains(routes, "proto 200") {
					return fmt.Errorf("%s: table %d (link %s) has no learned route: %v\n%s", ns, p.Table, p.Link, err, routes)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range lp {
		out, _ := topo.Run(ctx, "seoul-gw", "ip", "route", "show", "table", strconv.Itoa(p.Table))
		t.Logf("seoul-gw table %d (link %s, DSCP %d): %s", p.Table, p.Link, p.DSCP, strings.TrimSpace(out))
	}

	// dev is the interface of seoul's gateway that a fetch over path
	// leaves by: what the kernel routes its TOS to.
	devRE := regexp.MustCompile(` dev (\S+)`)
	dev := func(path string) string {
		args := []string{"route", "get", multicloud.TokyoOrigin, "from", multicloud.SeoulEdge, "iif", "lan"}
		if t := tos[path]; t != 0 {
			args = append(args, "tos", fmt.Sprintf("0x%02x", t))
		}
		out, err := topo.Run(ctx, "seoul-gw", "ip", args...)
		m := devRE.FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("ip %v in seoul-gw: %v\n%s", args, err, out)
		}
		return m[1]
	}
	devs := map[string]string{}
	for p := range tos {
		devs[p] = dev(p)
	}
	t.Logf("seoul-gw sends direct over %s, link:dx over %s, link:vpn over %s", devs["direct"], devs["link:dx"], devs["link:vpn"])
	if devs["link:dx"] == devs["link:vpn"] {
		t.Fatalf("both links leave seoul-gw by %s: the rules do not route by TOS", devs["link:dx"])
	}

	kr := nsClient(topo.NS(multicloud.NSKR))
	edgePaths := func() (edge.OriginPaths, error) {
		resp, err := kr.Get("http://" + multicloud.SeoulEdge + ":9180/v1/edge/paths?distribution=links")
		if err != nil {
			return edge.OriginPaths{}, err
		}
		defer resp.Body.Close()
		var out []edge.OriginPaths
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return edge.OriginPaths{}, err
		}
		if len(out) != 1 {
			return edge.OriginPaths{}, fmt.Errorf("%d origins measured, want 1", len(out))
		}
		return out[0], nil
	}
	// switches is intercloud_edge_path_switches_total of the origin.
	switchRE := regexp.MustCompile(`(?m)^intercloud_edge_path_switches_total\{distribution="links",origin="tokyo"\} (\d+)`)
	switches := func() int {
		resp, err := kr.Get("http://" + multicloud.SeoulEdge + ":9180/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := switchRE.FindSubmatch(b)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	chosen := func() string {
		o, err := edgePaths()
		if err != nil {
			return ""
		}
		return o.Chosen.ID
	}

	// Load: misses from a client in seoul, every object new.
	var seq atomic.Int64
	load := func(workers int, gap, d time.Duration) loadResult {
		var mu sync.Mutex
		var res loadResult
		var wg sync.WaitGroup
		end := time.Now().Add(d)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(end) {
					n := seq.Add(1)
					req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/big.bin?n=%d", multicloud.SeoulEdge, n), nil)
					req.Host = "links.example.test"
					start := time.Now()
					resp, err := kr.Do(req)
					code := 0
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						code = resp.StatusCode
					}
					el := time.Since(start)
					mu.Lock()
					if err != nil || code != 200 {
						res.failed++
						t.Errorf("GET /big.bin?n=%d: %d %v", n, code, err)
					} else {
						res.lat = append(res.lat, el)
					}
					mu.Unlock()
					time.Sleep(gap)
				}
			}()
		}
		wg.Wait()
		return res
	}
	const workers, gap = 4, 50 * time.Millisecond

	before := load(workers, gap, 6*time.Second)
	o, err := edgePaths()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, p := range o.Paths {
		ids[p.ID] = true
		t.Logf("FIGURE before: %s rtt %v ttfb %v loss %.2f%% throughput %.0f B/s (%d samples) chosen %v", p.ID, p.RTT, p.TTFB.Round(10*time.Microsecond), 100*p.Loss, p.Throughput, p.Samples, p.Chosen)
	}
	if len(ids) != 2 || !ids["link:dx"] || !ids["link:vpn"] {
		t.Fatalf("seoul-edge-1's candidates %v, want link:dx and link:vpn", ids)
	}
	cur := o.Chosen.ID
	bad := devs[cur]
	if bad == "" {
		t.Fatalf("seoul-edge-1 chose %q, not one of %v", cur, ids)
	}
	t.Logf("seoul-edge-1 fetches over %s (leaves seoul-gw by %s): impairing %s", cur, bad, bad)

	// Count the edge's packets over the other link, both ways, in the
	// gateway: the replies come back over it only if tokyo's gateway
	// routed them by the connection mark.
	other := devs["link:dx"]
	if other == bad {
		other = devs["link:vpn"]
	}
	nft := func(ns, script string) {
		f := filepath.Join(t.TempDir(), "rules.nft")
		if err := os.WriteFile(f, []byte(script+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := topo.Run(ctx, ns, "nft", "-f", f); err != nil {
			t.Fatalf("nft in %s: %v\n%s", ns, err, out)
		}
	}
	nft("seoul-gw", fmt.Sprintf(`table inet watch {
	chain forwarded {
		type filter hook forward priority -10;
		oifname %[1]q ip saddr %[2]s ip daddr %[3]s counter
		iifname %[1]q ip saddr %[3]s ip daddr %[2]s counter
	}
}`, other, multicloud.SeoulEdge, multicloud.TokyoOrigin))
	counters := func() (out, back int64) {
		s, _ := topo.Run(ctx, "seoul-gw", "nft", "list", "table", "inet", "watch")
		var n []int64
		for _, m := range regexp.MustCompile(`counter packets (\d+)`).FindAllStringSubmatch(s, -1) {
			v, _ := strconv.ParseInt(m[1], 10, 64)
			n = append(n, v)
		}
		if len(n) != 2 {
			t.Fatalf("watch counters: %s", s)
		}
		return n[0], n[1]
	}
	// Congestion on the link: a policer drops what exceeds 512 KB/s each
	// way (the misses ask some 10 MB/s), on forwarded packets only.
	const rate = "512 kbytes/second"
	nft("seoul-gw", fmt.Sprintf(`table inet impair {
	chain forwarded {
		type filter hook forward priority 0;
		iifname %[1]q limit rate over %[2]s counter drop
		oifname %[1]q limit rate over %[2]s counter drop
	}
}`, bad, rate))
	sw0 := switches()
	t0 := time.Now()
	var moved atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if c := chosen(); c != "" && devs[c] != bad {
				moved.Store(int64(time.Since(t0)))
				return
			}
		}
	}()
	// The issue asks a move "within seconds" here (5 s is its figure for
	// parents): measured 3.9-4.7 s alone on the machine, so 8 s leaves
	// room for `make test`'s other packages on the same two cores.
	during := load(workers, gap, 8*time.Second)
	close(stop)
	<-done
	if moved.Load() == 0 {
		if o, err := edgePaths(); err == nil {
			for _, p := range o.Paths {
				t.Logf("during: %s rtt %v ttfb %v loss %.2f%% throughput %.0f (%d samples) chosen %v", p.ID, p.RTT, p.TTFB.Round(10*time.Microsecond), 100*p.Loss, p.Throughput, p.Samples, p.Chosen)
			}
		}
		t.Fatalf("seoul-edge-1 did not leave %s within 8s of a %s policer on %s (still %s)", cur, rate, bad, chosen())
	}
	t.Logf("FIGURE moved off %s %.1fs after the impairment (issue: within seconds; asserted: 8s)", cur, time.Duration(moved.Load()).Seconds())
	// A second window, all on the new path, shows where the misses go.
	o1, b1 := counters()
	settled := load(workers, gap, 4*time.Second)
	o2, b2 := counters()
	t.Logf("FIGURE %s policer on %s: misses now over %s; the edge's packets over %s: %d out, %d back during %d misses",
		rate, bad, chosen(), other, o2-o1, b2-b1, len(settled.lat))
	if o2-o1 < int64(len(settled.lat)) || b2-b1 < int64(len(settled.lat)) {
		t.Errorf("during %d misses only %d packets went and %d came back over %s: the misses did not move both ways", len(settled.lat), o2-o1, b2-b1, other)
	}
	if o, err := edgePaths(); err == nil {
		for _, p := range o.Paths {
			t.Logf("FIGURE during: %s rtt %v ttfb %v loss %.2f%% throughput %.0f B/s (%d samples) chosen %v", p.ID, p.RTT, p.TTFB.Round(10*time.Microsecond), 100*p.Loss, p.Throughput, p.Samples, p.Chosen)
		}
	}
	if out, err := topo.Run(ctx, "seoul-gw", "nft", "list", "table", "inet", "impair"); err == nil {
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "counter") {
				t.Logf("FIGURE policer rule: %s", strings.TrimSpace(l))
			}
		}
	}
	t.Logf("FIGURE path switches during the %.0fs of the impairment: %d", time.Since(t0).Seconds(), switches()-sw0)
	if out, err := topo.Run(ctx, "seoul-gw", "nft", "delete", "table", "inet", "impair"); err != nil {
		t.Fatalf("remove the impairment: %v\n%s", err, out)
	}
	t1 := time.Now()
	back := time.Duration(0)
	var returning loadResult
	for time.Since(t1) < 40*time.Second {
		r := load(1, 100*time.Millisecond, 500*time.Millisecond)
		returning.lat = append(returning.lat, r.lat...)
		returning.failed += r.failed
		if c := chosen(); devs[c] == bad {
			back = time.Since(t1)
			break
		}
	}
	if back == 0 {
		t.Errorf("seoul-edge-1 did not come back to %s within 40s of the repair (still %s)", bad, chosen())
	} else {
		t.Logf("FIGURE back over %s (%s) %.1fs after the repair (issue: within 30s)", bad, chosen(), back.Seconds())
	}
	after := load(workers, gap, 4*time.Second)
	for name, r := range map[string]loadResult{"before": before, "during": during, "settled": settled, "returning": returning, "after": after} {
		if r.failed != 0 {
			t.Errorf("%s: %d requests failed", name, r.failed)
		}
	}
	f := func(r loadResult) string {
		return fmt.Sprintf("%v/%v (%d)", r.pct(.5).Round(10*time.Microsecond), r.pct(.99).Round(10*time.Microsecond), len(r.lat))
	}
	t.Logf("FIGURE miss latency p50/p99 (requests): before %s, first 5s of the impairment %s, after the move %s, after the repair %s",
		f(before), f(during), f(settled), f(after))
}
