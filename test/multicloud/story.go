package multicloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

// Step is one chapter of the story: what it shows, what to look at, and
// the run that asserts it.
type Step struct {
	// Name is the subtest name.
	Name string
	// Title and Explain are what the demo prints before running it.
	Title   string
	Explain string
	// Look lists commands the user can paste to see it for themselves.
	Look func(t *Topology) []string
	// Run does the step and checks what it promises; logf reports progress
	// and figures.
	Run func(ctx context.Context, t *Topology, logf func(string, ...any)) error
}

// Steps is the story in order. Each step leaves the topology as the next
// expects it (the line up, green rolled back, every node running).
var Steps = []Step{
	{
		Name:    "1_bgp_converges",
		Title:   "BGP converges across the clouds and with on-premises",
		Explain: "Each gateway runs an embedded GoBGP speaker. seoul-gw and tokyo-gw peer over the dedicated line (local preference 200) and over a WireGuard tunnel across the internet (100, the backup); the on-premises BIRD peers with seoul over its own line and with tokyo across the internet. Learned routes land in the kernel with protocol 200.",
		Look: func(t *Topology) []string {
			return []string{
				t.Enter("seoul-gw") + " ip route show proto " + Protocol,
				t.Enter("tokyo-gw") + " ip route show proto " + Protocol,
				t.Enter("seoul-gw") + " " + t.opts.Binary + " bgp neighbors --node http://10.1.0.1:9180",
				t.Enter("seoul-gw") + " wg show " + TunnelIf("tokyo-gw"),
				t.Enter(NSOnPrem) + " birdc -s " + filepath.Join(t.Dir, "bird.ctl") + " show route",
			}
		},
		Run: stepBGP,
	},
	{
		Name:    "2_geodns",
		Title:   "GeoDNS sends each client to its nearest edge",
		Explain: "Both edges also serve the zone. The Korean client (10.1.0.100) gets seoul's edge, the Japanese client (10.2.0.100) tokyo's — whichever server it asks. A resolver that forwards EDNS Client Subnet is answered for the client's subnet, with the scope of the matched network.",
		Look: func(t *Topology) []string {
			return []string{
				t.DigCommand(NSKR, SeoulEdge, ShopDomain, ""),
				t.DigCommand(NSJP, SeoulEdge, ShopDomain, ""),
				t.DigCommand(NSKR, SeoulEdge, ShopDomain, "10.2.0.0/24"),
			}
		},
		Run: stepDNS,
	},
	{
		Name:    "3_cross_cloud_cache_fill",
		Title:   "Each client fetches through its edge from the other cloud's origin",
		Explain: "static's origin is in tokyo, shop's active origin (blue) is in seoul: seoul's edge fills static across the BGP-routed line, tokyo's edge fills shop. The first request is a miss (Cache-Status: fwd=uri-miss; stored), the next ones are hits.",
		Look: func(t *Topology) []string {
			return []string{
				t.CurlCommand(NSKR, SeoulEdge, StaticDomain, "/static/app.css"),
				t.CurlCommand(NSJP, TokyoEdge, ShopDomain, "/index.html"),
			}
		},
		Run: stepCache,
	},
	{
		Name:    "4_line_cut_fails_over_to_vpn",
		Title:   "The dedicated line is cut under load: traffic moves to the VPN, and back",
		Explain: "Clients keep fetching (content that is only fresh for a few seconds, so the edges keep going to the other cloud). The line goes down; within the 3 s BGP hold time the routes move to the WireGuard tunnel, meanwhile the edges answer from cache or stale-if-error. No request fails. When the line returns the routes move back to it.",
		Look: func(t *Topology) []string {
			return []string{
				t.Enter("seoul-gw") + " ip link set dx down    # cut",
				t.Enter("seoul-gw") + " ip route show proto " + Protocol,
				t.Enter("seoul-gw") + " ip link set dx up      # restore",
			}
		},
		Run: stepCut,
	},
	{
		Name:    "5_blue_green_across_clouds",
		Title:   "Blue/green across clouds: promote tokyo's green origin, then roll back",
		Explain: "`intercloud promote shop web green` makes a new revision whose origin group serves green (in tokyo); every edge switches, seoul's reaching green across the line. `intercloud rollback` re-applies the previous revision: blue again.",
		Look: func(t *Topology) []string {
			return []string{
				t.Enter(NSControl) + " " + t.opts.Binary + " history --controller " + ControllerURL,
				t.CurlCommand(NSKR, SeoulEdge, ShopDomain, "/api/version.json"),
			}
		},
		Run: stepPromote,
	},
	{
		Name:    "6_edge_death_moves_dns",
		Title:   "tokyo's edge dies: within a lease TTL Japan is sent to seoul; it comes back",
		Explain: "The tokyo edge's agent is killed (no goodbye). The controller's probe of its /healthz fails (every second, two misses) and at the latest its lease in the store expires (leaseTTL 3 s); either way the DNS servers stop handing it out and the Japanese client gets seoul's edge. Restarted, it registers again and Japan returns to it.",
		Look: func(t *Topology) []string {
			return []string{
				t.DigCommand(NSJP, SeoulEdge, ShopDomain, ""),
				t.Enter(NSControl) + " " + t.opts.Binary + " status --controller " + ControllerURL,
			}
		},
		Run: stepEdgeDeath,
	},
	{
		Name:    "7_every_node_current",
		Title:   "Every node runs the current revision",
		Explain: "`intercloud status` lists every node: live, healthy and on the current revision (the test also waits for this after every step).",
		Look: func(t *Topology) []string {
			return []string{
				t.Enter(NSControl) + " " + t.opts.Binary + " status --controller " + ControllerURL,
				t.Enter(NSControl) + " curl -s " + ControllerURL + "/ui    # the topology page",
			}
		},
		Run: stepAllCurrent,
	},
	{
		Name:    "8_drift_is_healed",
		Title:   "Someone deletes a route and a WireGuard peer by hand on seoul-gw: the node notices and puts them back",
		Explain: "Every agent compares what its roles own with the revision it runs (every 30 s, and on demand). On seoul-gw, `ip route del 10.2.0.0/16 proto 200` and `wg set ic-tokyo-gw peer … remove` are drift; the site heals routes and tunnels, so the check re-adds the route, re-sets the peer (the tunnel handshakes again at once) and records both heals in the store's event log.",
		Look: func(t *Topology) []string {
			return []string{
				t.Enter("seoul-gw") + " ip route del 10.2.0.0/16 proto " + Protocol,
				t.Enter("seoul-gw") + " " + t.opts.Binary + " drift --check --node http://10.1.0.1:9180",
				t.Enter(NSControl) + " " + t.opts.Binary + " drift seoul-gw --controller " + ControllerURL,
			}
		},
		Run: stepDrift,
	},
}

// within runs fn until it succeeds or d passes.
func within(ctx context.Context, d time.Duration, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return Eventually(ctx, 200*time.Millisecond, fn)
}

// converged are the routes of the layout while the dedicated line is up.
func converged() []WantRoute {
	return []WantRoute{
		{"seoul-gw", "10.2.0.0/16", DXTokyo, "dx", Protocol},
		{"seoul-gw", "10.9.0.0/16", OnPremLine, "op", Protocol},
		{"tokyo-gw", "10.1.0.0/16", DXSeoul, "dx", Protocol},
		{"tokyo-gw", "10.9.0.0/16", OnPremInet, "inet", Protocol},
		{NSOnPrem, "10.1.0.0/16", SeoulLineEnd, "op", "bird"},
		{NSOnPrem, "10.2.0.0/16", TokyoInet, "inet", "bird"},
	}
}

// overVPN are the inter-cloud routes while the line is down.
func overVPN() []WantRoute {
	return []WantRoute{
		{"seoul-gw", "10.2.0.0/16", TunnelTokyo, TunnelIf("tokyo-gw"), Protocol},
		{"tokyo-gw", "10.1.0.0/16", TunnelSeoul, TunnelIf("seoul-gw"), Protocol},
	}
}

// logRoutes shows the kernel's lines for the wanted routes.
func (t *Topology) logRoutes(ctx context.Context, logf func(string, ...any), want []WantRoute) {
	for _, w := range want {
		if rs, err := t.Routes(ctx, w.NS); err == nil {
			logf("  %-9s %s", w.NS+":", rs[w.Dst].Line)
		}
	}
}

// TunnelIf is the WireGuard interface a gateway has toward peer
// (vpn.IfName: ic-<peer>).
func TunnelIf(peer string) string {
	n := "ic-" + peer
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

func (t *Topology) ping(ctx context.Context, ns, dst string) error {
	out, err := t.Run(ctx, ns, "ping", "-c", "1", "-W", "1", dst)
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v\n%s", dst, ns, err, out)
	}
	return nil
}

func stepBGP(ctx context.Context, t *Topology, logf func(string, ...any)) error {
	start := time.Now()
	if err := within(ctx, 60*time.Second, func() error { return t.CheckRoutes(ctx, converged()) }); err != nil {
		return err
	}
	logf("routes over the dedicated line and to on-premises in the kernel %.1fs after the step began", time.Since(start).Seconds())
	t.logRoutes(ctx, logf, converged())
	// The VPN is up beside the line: its session is established and its
	// tunnel carries traffic, though no route uses it yet.
	if err := within(ctx, 45*time.Second, func() error { return t.vpnEstablished(ctx) }); err != nil {
		// A session stuck short of established is worth the goroutines of
		// both gateways (the Go runtime prints them on SIGQUIT; the output
		// is logged with the failure).
		t.DumpNode("seoul-gw")
		t.DumpNode("tokyo-gw")
		return err
	}
	logf("BGP over the WireGuard tunnel established %.1fs after the step began", time.Since(start).Seconds())
	for _, p := range [][2]string{
		{"seoul-edge-1", TokyoOrigin}, {"seoul-edge-1", OnPremHost},
		{"tokyo-edge-1", SeoulOrigin}, {"tokyo-edge-1", OnPremHost},
		{"seoul-gw", TunnelTokyo},
	} {
		if err := within(ctx, 10*time.Second, func() error { return t.ping(ctx, p[0], p[1]) }); err != nil {
			return err
		}
	}
	return nil
}

// vpnEstablished checks that both gateways have their tunnel and a BGP
// session over it.
func (t *Topology) vpnEstablished(ctx context.Context) error {
	for _, gw := range []struct{ ns, admin, peer string }{{"seoul-gw", "http://10.1.0.1:9180", "tokyo-gw"}, {"tokyo-gw", "http://10.2.0.1:9180", "seoul-gw"}} {
		if _, err := t.Run(ctx, gw.ns, "ip", "link", "show", TunnelIf(gw.peer)); err != nil {
			return fmt.Errorf("%s: no WireGuard interface %s: %v", gw.ns, TunnelIf(gw.peer), err)
		}
		out, err := t.Run(ctx, gw.ns, t.opts.Binary, "bgp", "neighbors", "-j", "--node", gw.admin)
		if err != nil {
			return fmt.Errorf("%s: bgp neighbors: %v\n%s", gw.ns, err, out)
		}
		var ns []struct{ Name, Kind, State string }
		if err := json.Unmarshal([]byte(out), &ns); err != nil {
			return fmt.Errorf("%s: bgp neighbors -j: %v\n%s", gw.ns, err, out)
		}
		found := false
		for _, n := range ns {
			if n.Kind != "vpn" {
				continue
			}
			found = true
			if n.State != "established" {
				return fmt.Errorf("%s: the BGP session over the VPN (%s) is %s", gw.ns, n.Name, n.State)
			}
		}
		if !found {
			return fmt.Errorf("%s: no vpn neighbor in %s", gw.ns, out)
		}
	}
	return nil
}

func stepDNS(ctx context.Context, t *Topology, logf func(string, ...any)) error {
	for _, c := range []struct{ ns, server, want string }{
		{NSKR, SeoulEdge, SeoulEdge},
		{NSKR, TokyoEdge, SeoulEdge},
		{NSJP, TokyoEdge, TokyoEdge},
		{NSJP, SeoulEdge, TokyoEdge},
	} {
		for _, name := range []string{ShopDomain, StaticDomain} {
			got, out, err := t.Dig(ctx, c.ns, c.server, name, "")
			if err != nil {
				return err
			}
			if !slices.Equal(got, []string{c.want}) {
				return fmt.Errorf("%s asking %s for %s: got %v, want [%s]\n%s", c.ns, c.server, name, got, c.want, out)
			}
		}
	}
	// A resolver in Korea asking for a client in Japan, and the reverse.
	for _, c := range []struct{ ns, server, subnet, want string }{
		{NSKR, SeoulEdge, "10.2.0.0/24", TokyoEdge},
		{NSJP, TokyoEdge, "10.1.7.0/24", SeoulEdge},
	} {
		got, out, err := t.Dig(ctx, c.ns, c.server, ShopDomain, c.subnet)
		if err != nil {
			return err
		}
		if !slices.Equal(got, []string{c.want}) {
			return fmt.Errorf("%s asking %s for %s with ECS %s: got %v, want [%s]\n%s", c.ns, c.server, ShopDomain, c.subnet, got, c.want, out)
		}
		subnet, scope, ok := ECSScope(out)
		if !ok || subnet != c.subnet || scope != "16" {
			return fmt.Errorf("ECS %s: want the option echoed with scope 16 (the matched network is a /16), got %q/%q\n%s", c.subnet, subnet, scope, out)
		}
		logf("ECS %s via %s: %s, scope /%s", c.subnet, c.server, got[0], scope)
	}
	return nil
}

// edgeFor asks the client's own DNS view which edge serves name.
func (t *Topology) edgeFor(ctx context.Context, ns, server, name string) (string, error) {
	got, out, err := t.Dig(ctx, ns, server, name, "")
	if err != nil {
		return "", err
	}
	if len(got) != 1 {
		return "", fmt.Errorf("%s asking %s for %s: want one address, got %v\n%s", ns, server, name, got, out)
	}
	return got[0], nil
}

func (t *Topology) content(path string) string {
	b, err := os.ReadFile(filepath.Join(t.opts.Repo, path))
	if err != nil {
		return "(unreadable " + path + ": " + err.Error() + ")"
	}
	return string(b)
}

func stepCache(ctx context.Context, t *Topology, logf func(string, ...any)) error {
	for _, c := range []struct {
		ns, server, host, path, body string
	}{
		{NSKR, SeoulEdge, StaticDomain, "/static/app.css", "examples/quickstart/content/green/current/static/app.css"},
		{NSJP, TokyoEdge, ShopDomain, "/index.html", "examples/quickstart/content/blue/current/index.html"},
	} {
		edge, err := t.edgeFor(ctx, c.ns, c.server, c.host)
		if err != nil {
			return err
		}
		want := t.content(c.body)
		for i := range 3 {
			r, err := t.Get(ctx, c.ns, edge, c.host, c.path)
			if err != nil {
				return err
			}
			if r.Status != 200 || r.Body != want {
				return fmt.Errorf("%s GET %s%s via %s: status %d, body %q, want %s", c.ns, c.host, c.path, edge, r.Status, r.Body, c.body)
			}
			cs := r.CacheStatus()
			switch {
			case i == 0 && (r.Hit() || !strings.Contains(cs, "miss; fwd-status=200; stored")):
				return fmt.Errorf("%s GET %s%s via %s: first request: Cache-Status %q, want a miss", c.ns, c.host, c.path, edge, cs)
			case i > 0 && !r.Hit():
				return fmt.Errorf("%s GET %s%s via %s: request %d: Cache-Status %q, want a hit", c.ns, c.host, c.path, edge, i+1, cs)
			}
			logf("%s GET %s%s via edge %s: %s", c.ns, c.host, c.path, edge, cs)
		}
	}
	return nil
}

// loop fetches one URL from a client over and over until stop, counting
// failures.
type loop struct {
	ns, ip, host, path, want string

	n, failed, hits, staleIfError, revalidated, fetched atomic.Int64
	mu                                                  sync.Mutex
	errs                                                []string
}

func (l *loop) run(ctx context.Context, t *Topology, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		r, err := t.Get(ctx, l.ns, l.ip, l.host, l.path)
		l.n.Add(1)
		switch {
		case err != nil:
			l.fail(err.Error())
		case r.Status != 200 || r.Body != l.want:
			l.fail(fmt.Sprintf("status %d, Cache-Status %q, body %q", r.Status, r.CacheStatus(), r.Body))
		case strings.Contains(r.CacheStatus(), "stale-if-error"):
			l.staleIfError.Add(1)
		case strings.Contains(r.CacheStatus(), "fwd=stale"):
			l.revalidated.Add(1)
		case r.Hit():
			l.hits.Add(1)
		default:
			l.fetched.Add(1)
		}
	}
}

func (l *loop) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+msg)
	}
	l.mu.Unlock()
}

func (l *loop) String() string {
	return fmt.Sprintf("%s → %s%s via %s: %d requests, %d failed; %d hits, %d revalidated across clouds, %d stale-if-error, %d other fetches",
		l.ns, l.host, l.path, l.ip, l.n.Load(), l.failed.Load(), l.hits.Load(), l.revalidated.Load(), l.staleIfError.Load(), l.fetched.Load())
}

// wgTransfer reads the bytes received and sent by the only peer of a
// WireGuard interface, with the stock wg tool.
func (t *Topology) wgTransfer(ctx context.Context, ns, ifname string) (rx, tx int64, err error) {
	out, err := t.Run(ctx, ns, "wg", "show", ifname, "transfer")
	if err != nil {
		return 0, 0, fmt.Errorf("wg show %s transfer in %s: %v: %s", ifname, ns, err, out)
	}
	f := strings.Fields(out)
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("wg show %s transfer in %s: want one peer, got %q", ifname, ns, out)
	}
	if _, err := fmt.Sscan(f[1]+" "+f[2], &rx, &tx); err != nil {
		return 0, 0, fmt.Errorf("wg show %s transfer: %q: %v", ifname, out, err)
	}
	return rx, tx, nil
}

// setLink takes a link of ns up or down.
func (t *Topology) setLink(ctx context.Context, ns, link, state string) error {
	out, err := t.Run(ctx, ns, "ip", "link", "set", link, state)
	if err != nil {
		return fmt.Errorf("ip link set %s %s in %s: %v: %s", link, state, ns, err, out)
	}
	return nil
}

func stepCut(ctx context.Context, t *Topology, logf func(string, ...any)) error {
	loops := []*loop{
		{ns: NSKR, ip: SeoulEdge, host: StaticDomain, path: "/static/app.css", want: t.content("examples/quickstart/content/green/current/static/app.css")},
		{ns: NSJP, ip: TokyoEdge, host: ShopDomain, path: "/index.html", want: t.content("examples/quickstart/content/blue/current/index.html")},
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, l := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); l.run(ctx, t, stop) }()
	}
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt()
	// Always leave the line up for the next steps.
	defer func() { _ = t.setLink(context.WithoutCancel(ctx), "seoul-gw", "dx", "up") }()

	time.Sleep(time.Second)
	if err := t.setLink(ctx, "seoul-gw", "dx", "down"); err != nil {
		return err
	}
	cut := time.Now()
	if err := within(ctx, 30*time.Second, func() error { return t.CheckRoutes(ctx, overVPN()) }); err != nil {
		return fmt.Errorf("line cut: %w", err)
	}
	logf("line cut: routes over the VPN after %.1fs", time.Since(cut).Seconds())
	t.logRoutes(ctx, logf, overVPN())
	// On-premises does not depend on the line.
	if err := t.CheckRoutes(ctx, converged()[1:2]); err != nil {
		return fmt.Errorf("line cut: %w", err)
	}
	// The tunnel carries the traffic: WireGuard's byte counters grow by
	// what we send across (BGP keepalives alone are ~100 bytes a second).
	rx0, tx0, err := t.wgTransfer(ctx, "seoul-gw", TunnelIf("tokyo-gw"))
	if err != nil {
		return err
	}
	if out, err := t.Run(ctx, "seoul-edge-1", "ping", "-c", "3", "-i", "0.2", "-W", "2", "-s", "1200", TokyoOrigin); err != nil {
		return fmt.Errorf("line cut: ping tokyo's origin from seoul's edge: %v\n%s", err, out)
	}
	rx1, tx1, err := t.wgTransfer(ctx, "seoul-gw", TunnelIf("tokyo-gw"))
	if err != nil {
		return err
	}
	if rx1-rx0 < 3600 || tx1-tx0 < 3600 {
		return fmt.Errorf("line cut: 3 pings of 1200 bytes across the tunnel moved rx %d tx %d bytes through %s", rx1-rx0, tx1-tx0, TunnelIf("tokyo-gw"))
	}
	logf("3 pings of 1200 bytes seoul → tokyo crossed %s: rx +%d tx +%d bytes", TunnelIf("tokyo-gw"), rx1-rx0, tx1-tx0)
	// Uncached, so it crosses the tunnel now: tokyo's edge to blue in seoul.
	r, err := t.Get(ctx, NSJP, TokyoEdge, ShopDomain, "/api/version.json")
	if err != nil {
		return fmt.Errorf("line cut: %w", err)
	}
	if r.Status != 200 || !strings.Contains(r.Body, "blue") {
		return fmt.Errorf("line cut: uncached request over the VPN: status %d body %q", r.Status, r.Body)
	}
	time.Sleep(3 * time.Second) // let the loops refresh over the tunnel
	if err := t.setLink(ctx, "seoul-gw", "dx", "up"); err != nil {
		return err
	}
	restored := time.Now()
	if err := within(ctx, 60*time.Second, func() error { return t.CheckRoutes(ctx, converged()) }); err != nil {
		return fmt.Errorf("line restored: %w", err)
	}
	logf("line restored: routes back on it after %.1fs", time.Since(restored).Seconds())
	time.Sleep(time.Second)
	halt()
	var errs []error
	for _, l := range loops {
		logf("%s", l)
		if l.failed.Load() > 0 {
			errs = append(errs, fmt.Errorf("%s\n  %s", l, strings.Join(l.errs, "\n  ")))
		}
		if l.n.Load() < 10 {
			errs = append(errs, fmt.Errorf("%s: too few requests to tell", l))
		}
	}
	return errors.Join(errs...)
}

// version asks an edge, from a client, which origin serves shop's API.
func (t *Topology) version(ctx context.Context, ns, edge string) (string, error) {
	r, err := t.Get(ctx, ns, edge, ShopDomain, "/api/version.json")
	if err != nil {
		return "", err
	}
	if r.Status != 200 {
		return "", fmt.Errorf("%s GET shop /api/version.json via %s: status %d", ns, edge, r.Status)
	}
	return r.Body, nil
}

func (t *Topology) allEdgesServe(ctx context.Context, color string) error {
	for _, c := range [][2]string{{NSKR, SeoulEdge}, {NSJP, TokyoEdge}, {NSKR, TokyoEdge}, {NSJP, SeoulEdge}} {
		if err := within(ctx, 15*time.Second, func() error {
			v, err := t.version(ctx, c[0], c[1])
			if err != nil {
				return err
			}
			if !strings.Contains(v, `"`+color+`"`) {
				return fmt.Errorf("%s via edge %s: %s, want %s", c[0], c[1], strings.TrimSpace(v), color)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func stepPromote(ctx context.Context, t *Topology, logf func(string, ...any)) error {
	if err := t.allEdgesServe(ctx, "blue"); err != nil {
		return fmt.Errorf("before promote: %w", err)
	}
	out, err := t.CLI(ctx, "promote", "shop", "web", "green")
	if err != nil {
		return fmt.Errorf("promote: %v\n%s", err, out)
	}
	logf("promote: %s", lastLine(out))
	if _, err := t.StatusWait(ctx); err != nil {
		return err
	}
	if err := t.allEdgesServe(ctx, "green"); err != nil {
		return fmt.Errorf("after promote: %w", err)
	}
	out, err = t.CLI(ctx, "rollback")
	if err != nil {
		return fmt.Errorf("rollback: %v\n%s", err, out)
	}
	logf("rollback: %s", lastLine(out))
	if _, err := t.StatusWait(ctx); err != nil {
		return err
	}
	if err := t.allEdgesServe(ctx, "blue"); err != nil {
		return fmt.Errorf("after rollback: %w", err)
	}
	return nil
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(ls) - 1; i >= 0; i-- {
		if strings.HasPrefix(ls[i], "Applied") || strings.HasPrefix(ls[i], "No changes") {
			return ls[i]
		}
	}
	return ls[len(ls)-1]
}

func stepEdgeDeath(ctx context.Context, t *Topology, logf func(string, ...any)) error {
	ttl := t.Site.Site.Store.LeaseTTL.D()
	if e, err := t.edgeFor(ctx, NSJP, SeoulEdge, ShopDomain); err != nil || e != TokyoEdge {
		return fmt.Errorf("before the kill: Japan gets %q (%v), want %s", e, err, TokyoEdge)
	}
	t.KillNode("tokyo-edge-1")
	killed := time.Now()
	// The lease runs out after ttl; allow the time for the DNS servers to
	// hear of it and a query or two.
	if err := within(ctx, ttl+4*time.Second, func() error {
		e, err := t.edgeFor(ctx, NSJP, SeoulEdge, ShopDomain)
		if err != nil {
			return err
		}
		if e != SeoulEdge {
			return fmt.Errorf("Japan still gets %s", e)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("after killing tokyo-edge-1 (lease TTL %s): %w", ttl, err)
	}
	logf("tokyo-edge-1 killed: Japan answered with seoul's edge after %.1fs (lease TTL %s)", time.Since(killed).Seconds(), ttl)
	r, err := t.Get(ctx, NSJP, SeoulEdge, ShopDomain, "/index.html")
	if err != nil || r.Status != 200 {
		return fmt.Errorf("Japan through seoul's edge: %v %v", r, err)
	}
	// The controller shows it down once its lease has run out.
	if err := within(ctx, ttl+3*time.Second, func() error {
		st, err := t.Status(ctx)
		if err != nil {
			return err
		}
		for _, n := range st.Nodes {
			if n.Name == "tokyo-edge-1" && n.Live {
				return fmt.Errorf("status shows the killed tokyo-edge-1 live")
			}
		}
		return nil
	}); err != nil {
		return err
	}
	logf("tokyo-edge-1 down in status after %.1fs", time.Since(killed).Seconds())
	if _, err := t.StatusWait(ctx); err != nil {
		return err
	}

	t.StartNode("tokyo-edge-1")
	restarted := time.Now()
	if err := within(ctx, 30*time.Second, func() error {
		e, err := t.edgeFor(ctx, NSJP, SeoulEdge, ShopDomain)
		if err != nil {
			return err
		}
		if e != TokyoEdge {
			return fmt.Errorf("Japan still gets %s", e)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("after restarting tokyo-edge-1: %w", err)
	}
	logf("tokyo-edge-1 restarted: Japan back on it after %.1fs", time.Since(restarted).Seconds())
	return nil
}

func stepAllCurrent(ctx context.Context, t *Topology, logf func(string, ...any)) error {
	return t.WaitAllCurrent(ctx, 30*time.Second)
}

// WaitAllCurrent waits until every node of the site is live, healthy and
// on the current revision.
func (t *Topology) WaitAllCurrent(ctx context.Context, d time.Duration) error {
	return within(ctx, d, func() error { return t.AllCurrent(ctx) })
}

// AllCurrent checks status: every node of the site live, healthy and on
// the current revision.
func (t *Topology) AllCurrent(ctx context.Context) error {
	st, err := t.Status(ctx)
	if err != nil {
		return err
	}
	if !st.Converged || len(st.Nodes) != len(t.Nodes()) {
		return fmt.Errorf("status: converged %v with %d nodes, want %d", st.Converged, len(st.Nodes), len(t.Nodes()))
	}
	var bad []string
	for _, n := range st.Nodes {
		if !n.Live || !n.Healthy || n.State != "current" || n.Revision != st.Revision || len(n.Unavailable) > 0 {
			bad = append(bad, fmt.Sprintf("%s: live %v healthy %v state %s revision %d (current %d) unavailable %v %s",
				n.Name, n.Live, n.Healthy, n.State, n.Revision, st.Revision, n.Unavailable, n.Message))
		}
		if slices.Contains(n.Roles, config.RoleGateway) && !gatewayReported(n.Report) {
			bad = append(bad, fmt.Sprintf("%s: gateway report without an established session, an up tunnel and routes: %+v", n.Name, n.Report))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("status:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// gatewayReported: the gateway publishes at least one established BGP
// session, one tunnel that is up and some kernel routes (what status and
// /ui show).
func gatewayReported(r status.RoleReport) bool {
	established, up := false, false
	for _, p := range r.Sessions {
		established = established || p.State == "established"
	}
	for _, tn := range r.Tunnels {
		up = up || tn.Up
	}
	return established && up && r.Routes > 0
}
