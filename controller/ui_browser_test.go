package controller_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/miekg/dns"

	"github.com/intercloud/intercloud/agent"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
	"github.com/intercloud/intercloud/test/testenv"
)

// console is a real controller on an embedded store, with two real edge
// nodes (agents running the edge and DNS roles), two real origins, and
// two gateways whose registrations say what a gateway reports (running
// real gateways needs root, TUN devices and namespaces: test/multicloud
// does that).
type console struct {
	ctl   *controller.Controller
	store *store.Store
	url   string
	edges []string // HTTP addresses
	dns   string
}

const token = "console-secret"

func wgKey(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

func startConsole(t *testing.T) *console {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := storetest.Start(t)
	s := storetest.Open(t, m.Endpoints())
	ctl := controller.New(controller.Options{Store: s, Logger: log, Token: token})
	mux := http.NewServeMux()
	ctl.Routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	origin := func(name string) string {
		o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=300")
			fmt.Fprintf(w, "%s %s\n", name, r.URL.Path)
		}))
		t.Cleanup(o.Close)
		return o.URL
	}
	health := &config.Health{Path: "/healthz", Interval: config.Duration(500 * time.Millisecond), Timeout: config.Duration(400 * time.Millisecond)}
	c := &console{ctl: ctl, store: s, url: srv.URL}
	edge := func(name, cloud string, roles ...config.Role) config.Node {
		n := config.Node{Name: name, Cloud: cloud, Roles: roles, Address: "127.0.0.1",
			Listen: config.Listen{HTTP: storetest.FreeAddr(t), Admin: storetest.FreeAddr(t)}}
		if len(roles) > 1 {
			n.Listen.DNS = storetest.FreeAddr(t)
			c.dns = n.Listen.DNS
		}
		c.edges = append(c.edges, n.Listen.HTTP)
		return n
	}
	gw := func(name, cloud, id string) config.Node {
		return config.Node{Name: name, Cloud: cloud, Roles: []config.Role{config.RoleGateway},
			Gateway: &config.Gateway{RouterID: netip.MustParseAddr(id), Wireguard: &config.Wireguard{PrivateKeyFile: "unused.key"}}}
	}
	site := config.Site{
		Name: "console",
		DNS:  config.DNS{Zone: "cdn.example.test."},
		Controller: config.Controller{
			// A node on another hash is called drifted at once.
			DriftGrace: config.Duration(time.Millisecond)},
		Clouds: []config.Cloud{
			{Name: "seoul", ASN: 65001, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			{Name: "tokyo", ASN: 65002, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}},
		},
		Nodes: []config.Node{
			edge("seoul-edge-1", "seoul", config.RoleEdge, config.RoleDNS),
			edge("tokyo-edge-1", "tokyo", config.RoleEdge),
			gw("seoul-gw", "seoul", "198.18.0.1"),
			gw("tokyo-gw", "tokyo", "198.18.0.2"),
		},
		Links: []config.Link{
			{Name: "dx", Kind: config.LinkDedicated,
				A: config.LinkEnd{Node: "seoul-gw", Address: netip.MustParseAddr("127.0.1.1")},
				B: config.LinkEnd{Node: "tokyo-gw", Address: netip.MustParseAddr("127.0.1.2")}},
			{Name: "vpn", Kind: config.LinkVPN,
				A: config.LinkEnd{Node: "seoul-gw", Endpoint: "127.0.2.1:51820", Tunnel: netip.MustParsePrefix("100.64.0.1/30"), PublicKey: wgKey(1)},
				B: config.LinkEnd{Node: "tokyo-gw", Endpoint: "127.0.2.2:51820", Tunnel: netip.MustParsePrefix("100.64.0.2/30"), PublicKey: wgKey(2)}},
		},
	}
	dist := config.Distribution{Name: "shop", Spec: config.Spec{
		Origins: map[string]config.Origin{
			"blue":  {URL: origin("blue"), Health: health},
			"green": {URL: origin("green"), Health: health},
		},
		OriginGroups: map[string]config.OriginGroup{"web": {Members: []string{"blue", "green"}, Active: "blue"}},
		Behaviors:    []config.Behavior{{Path: "*", Target: "web"}},
	}}
	snap, err := config.NewSnapshot(site, []config.Distribution{dist})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.Apply(ctx, snap, "console test"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after cancel (cleanups run last-in first-out)
	t.Cleanup(cancel)
	wg.Go(func() { ctl.RunHealth(ctx) })
	wg.Go(func() { ctl.RunMetrics(ctx, time.Second) })
	for _, n := range []string{"seoul-edge-1", "tokyo-edge-1"} {
		a := agent.New(agent.Options{Node: n, Store: s, StateDir: filepath.Join(t.TempDir(), n), Logger: log})
		wg.Go(func() {
			if err := a.Run(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("agent %s: %v", n, err)
			}
		})
	}
	at := time.Now()
	report := func(name, dxState string, hash string) status.NodeStatus {
		peer := "tokyo-gw"
		if name == "tokyo-gw" {
			peer = "seoul-gw"
		}
		return status.NodeStatus{Name: name, Roles: []config.Role{config.RoleGateway}, Revision: 1, Hash: hash, Healthy: true,
			Report: status.RoleReport{Routes: 1, Sessions: []status.PeerState{
				{Peer: "127.0.1.2", Name: "dx", Link: "dedicated", State: dxState},
				{Peer: "100.64.0.2", Name: "vpn", Link: "vpn", State: "established", Accepted: 1},
			}, Tunnels: []status.TunnelState{{Interface: "ic-" + peer, Peer: peer, Up: true, LastHandshake: at.Add(-30 * time.Second)}}}}
	}
	s.Register(ctx, report("seoul-gw", "active", snap.Hash), 5*time.Second, log)
	s.Register(ctx, report("tokyo-gw", "idle", "hand-edited"), 5*time.Second, log)
	storetest.Eventually(t, 60*time.Second, "every node registered and the edges on revision 1", func() bool {
		st, err := ctl.Status(ctx)
		if err != nil || len(st.Nodes) != 4 {
			return false
		}
		for _, n := range st.Nodes {
			if !n.Live || (strings.Contains(n.Name, "edge") && n.State != "current") {
				return false
			}
		}
		return true
	})
	return c
}

// traffic asks both edges and the DNS node, a bounded number of times,
// until ctx ends, so that the charts have rates to show.
func (c *console) traffic(ctx context.Context) {
	client := &http.Client{Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion("shop.cdn.example.test.", dns.TypeA)
	for i := 0; i < 600 && ctx.Err() == nil; i++ {
		for _, e := range c.edges {
			// Mostly hits, and a miss each round for the origin latency.
			for _, path := range []string{fmt.Sprintf("/p%d", i%5), fmt.Sprintf("/p%d", i%5), fmt.Sprintf("/u%d", i)} {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e+path, nil)
				req.Host = "shop.cdn.example.test"
				if resp, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
		_, _, _ = (&dns.Client{Timeout: time.Second}).ExchangeContext(ctx, q, c.dns)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// browser is headless Chromium; it records every console error, uncaught
// exception and error entry of the browser log of the page.
type browser struct {
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	chromium := testenv.NeedTool(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	b := &browser{ctx: bctx}
	// The first Run starts the browser; no deadline on it (it would stop
	// the browser), the test's own timeout bounds it.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.mu.Lock()
				b.errs = append(b.errs, strings.TrimSpace(m.String()+" "+m.Source+" "+m.URL))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs actions with a deadline, failing the test with what was asked.
func (b *browser) do(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, b *browser, js string, opts ...chromedp.EvaluateOption) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// errors returns the errors seen so far and forgets them.
func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.errs
	b.errs = nil
	return e
}

// screenshot takes a full-page PNG and checks that it is a picture: it
// decodes, it is page-sized, and it is not one flat colour. With
// $UI_SCREENSHOTS set, it is kept there for a person to look at.
func (b *browser) screenshot(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	img, err := png.Decode(bytes.NewReader(buf))
	if err != nil {
		t.Fatalf("screenshot %s does not decode as PNG: %v", name, err)
	}
	bounds := img.Bounds()
	if bounds.Dx() < 800 || bounds.Dy() < 600 {
		t.Errorf("screenshot %s is %v, want at least 800x600", name, bounds.Size())
	}
	colours := map[[3]uint32]bool{}
	for y := bounds.Min.Y; y < bounds.Max.Y && len(colours) < 64; y += 7 {
		for x := bounds.Min.X; x < bounds.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	if len(colours) < 16 {
		t.Errorf("screenshot %s has %d colours: a blank or broken page", name, len(colours))
	}
	if dir := os.Getenv("UI_SCREENSHOTS"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	}
}

func textOf(t *testing.T, b *browser, sel string) string {
	t.Helper()
	return eval[string](t, b, fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel))
}

// waitText waits until the element's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(document.querySelector(%q)||{}).textContent?.includes(%q)`, sel, want),
		chromedp.WithPollingInterval(200*time.Millisecond))
}

func current(t *testing.T, c *console) *config.Snapshot {
	t.Helper()
	cur, _, err := c.ctl.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cur
}

// The console in a real browser: the views, the read-only page, then each
// action with the token.
func TestConsoleInChromium(t *testing.T) {
	b := startBrowser(t)
	c := startConsole(t)
	tctx, stopTraffic := context.WithCancel(context.Background())
	defer stopTraffic()
	go c.traffic(tctx)
	storetest.Eventually(t, 60*time.Second, "charts have requests, hit ratio, origin latency and DNS rates", func() bool {
		ch, ok := c.ctl.Series(context.Background())
		if !ok {
			return false
		}
		got := map[string]bool{}
		for _, chart := range ch.Charts {
			got[chart.ID] = len(chart.Series) > 0
		}
		return got["requests"] && got["hitratio"] && got["dnsqps"] && got["latency"]
	})

	// The views.
	b.do(t, "open /ui", chromedp.Navigate(c.url+"/ui"), chromedp.WaitVisible(chromedp.CSS(`#node-seoul-edge-1`)))
	// Every refresh of the page from here on is counted: one request of
	// fragments at a time, whatever the timer and the actions ask.
	eval[bool](t, b, `(() => {
		const f = window.fetch, c = window.fragmentFetches = {now: 0, most: 0, n: 0};
		window.fetch = async (...a) => {
			if (!String(a[0]).startsWith("/ui/fragments")) return f(...a);
			c.n++; c.most = Math.max(c.most, ++c.now);
			try { return await f(...a); } finally { c.now--; }
		};
		return true;
	})()`)
	for sel, want := range map[string]int{
		`svg.topology #cloud-seoul`:     1,
		`svg.topology #cloud-tokyo`:     1,
		`#node-seoul-gw`:                1,
		`#node-tokyo-gw .badge.drifted`: 1,
		`#link-dx.down`:                 1,
		`#link-vpn.up`:                  1,
		`#dist-shop`:                    1,
		`#origin-shop-blue`:             1,
		`#chart-requests path.series`:   1,
		`#chart-hitratio path.series`:   1,
		`#chart-dnsqps path.series`:     1,
		`#chart-5xx`:                    1,
		`#chart-latency path.series`:    1,
		`#chart-bgp`:                    1,
		`#revisions tbody tr`:           1,
		`button.action:disabled`:        3, // promote, invalidate, rollback; revision 1 is current: no row button
		`button.action:not(:disabled)`:  0,
		`[src]:not([src^="data:"]), link[href]:not([href^="data:"])`: 0,
	} {
		n := eval[int](t, b, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
		if n != want {
			t.Errorf("%s: %d elements, want %d", sel, n, want)
		}
	}
	for _, c := range [][2]string{
		{`#node-seoul-edge-1 .detail`, "hit "},
		{`#link-vpn`, "handshake 3"}, // 30s and more ago
		{`#link-vpn`, "carries traffic"},
		{`#token-state`, "read-only"},
		{`#converged`, "not every node runs it yet"}, // tokyo-gw is drifted
	} {
		sel, want := c[0], c[1]
		if got := textOf(t, b, sel); !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q in it", sel, got, want)
		}
	}
	b.screenshot(t, "console-read-only")
	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}

	// Without the token the page's controls are disabled, and a call made
	// from the page anyway is refused and changes nothing.
	before := current(t, c)
	for path, body := range map[string]string{
		"/v1/promote":       `{distribution: "shop", group: "web", origin: "green", weight: 100}`,
		"/v1/rollback":      `{revision: 0}`,
		"/v1/invalidations": `{distribution: "shop", paths: ["/*"]}`,
	} {
		code := eval[int](t, b, fmt.Sprintf(`fetch(%q, {method: "POST", headers: {"Content-Type": "application/json"},
			body: JSON.stringify(%s)}).then(r => r.status)`, path, body), chromedp.EvalAwaitPromise)
		if code != http.StatusUnauthorized {
			t.Errorf("POST %s from the page without a token: %d, want 401", path, code)
		}
	}
	b.do(t, "click the disabled controls", chromedp.Click(chromedp.CSS(`#promote`)), chromedp.Click(chromedp.CSS(`#rollback`)),
		chromedp.Click(chromedp.CSS(`#invalidate`))) // nothing happens
	if after := current(t, c); after.Revision != before.Revision || after.Hash != before.Hash {
		t.Errorf("an action without a token changed the store: revision %d -> %d", before.Revision, after.Revision)
	}
	if invs, err := c.ctl.Invalidations(context.Background()); err != nil || len(invs) != 0 {
		t.Errorf("an invalidation without a token reached the store: %+v %v", invs, err)
	}
	if got := textOf(t, b, `#result`); got != "" {
		t.Errorf("a disabled control did something: %q", got)
	}
	for _, e := range b.errors() {
		if !strings.Contains(e, "401") {
			t.Errorf("unexpected page error: %s", e)
		}
	}
	// A wrong token is refused and keeps the page read-only.
	b.do(t, "wrong token", chromedp.SendKeys(chromedp.CSS(`#token`), "wrong"), chromedp.Click(chromedp.CSS(`#unlock`)),
		waitText(`#result`, "token refused"))
	if got := textOf(t, b, `#token-state`); got != "read-only" {
		t.Errorf("after a wrong token: %q", got)
	}
	b.errors() // the refused check is a 401 in the log

	// With the token: canary, promote, diff, rollback, invalidate.
	b.do(t, "token", chromedp.SendKeys(chromedp.CSS(`#token`), token), chromedp.Click(chromedp.CSS(`#unlock`)),
		chromedp.WaitVisible(chromedp.CSS(`#token-state.unlocked`)), chromedp.WaitEnabled(chromedp.CSS(`#promote`)))
	b.do(t, "canary", chromedp.SetValue(chromedp.CSS(`#promote-target`), "shop/web/green"),
		chromedp.SetValue(chromedp.CSS(`#promote-weight`), "10"), chromedp.Click(chromedp.CSS(`#promote`)),
		waitText(`#result`, "revision 2 committed"))
	if g := current(t, c).Distribution("shop").Spec.OriginGroups["web"]; g.Active != "blue" || g.Canary == nil || g.Canary.Member != "green" || g.Canary.Weight != 10 {
		t.Errorf("after the canary: %+v", g)
	}
	b.do(t, "promote", chromedp.WaitVisible(chromedp.CSS(`#rev-2`)), chromedp.SetValue(chromedp.CSS(`#promote-target`), "shop/web/green"),
		chromedp.SetValue(chromedp.CSS(`#promote-weight`), "100"), chromedp.Click(chromedp.CSS(`#promote`)),
		waitText(`#result`, "revision 3 committed"))
	if g := current(t, c).Distribution("shop").Spec.OriginGroups["web"]; g.Active != "green" || g.Canary != nil {
		t.Errorf("after the promote: %+v", g)
	}
	b.do(t, "diff of revision 3", chromedp.WaitVisible(chromedp.CSS(`#rev-3`)),
		chromedp.Click(chromedp.CSS(`#rev-3 details.diff summary`)), waitText(`#rev-3 pre.diff`, "active: blue -> green"))
	b.screenshot(t, "console-diff")
	b.do(t, "rollback", chromedp.WaitEnabled(chromedp.CSS(`#rollback`)), chromedp.Click(chromedp.CSS(`#rollback`)),
		waitText(`#result`, "revision 4 committed"))
	if cur := current(t, c); cur.Reason != "rollback to revision 2" || cur.Distribution("shop").Spec.OriginGroups["web"].Active != "blue" {
		t.Errorf("after the rollback: revision %d %q", cur.Revision, cur.Reason)
	}
	b.do(t, "rollback to revision 1 from its row", chromedp.WaitEnabled(chromedp.CSS(`#rev-1 button.rollback-to`)),
		chromedp.Click(chromedp.CSS(`#rev-1 button.rollback-to`)), waitText(`#result`, "revision 5 committed"))
	if cur := current(t, c); cur.Reason != "rollback to revision 1" {
		t.Errorf("after the rollback from the row: %q", cur.Reason)
	}
	// A revision landing re-renders the controls: what the operator typed
	// into them stays.
	b.do(t, "type the paths", chromedp.WaitVisible(chromedp.CSS(`#rev-5`)), chromedp.SetValue(chromedp.CSS(`#invalidate-paths`), "/p1 /p2"))
	if _, err := c.ctl.Rollback(context.Background(), 4, false); err != nil {
		t.Fatal(err)
	}
	b.do(t, "revision 6 lands on the page", chromedp.WaitVisible(chromedp.CSS(`#rev-6`)))
	if got := eval[string](t, b, `document.getElementById("invalidate-paths").value`); got != "/p1 /p2" {
		t.Errorf("the typed paths after the controls were re-rendered: %q", got)
	}
	b.do(t, "invalidate", chromedp.Click(chromedp.CSS(`#invalidate`)), waitText(`#inv-text`, "Completed · 2/2 edges"))
	invs, err := c.ctl.Invalidations(context.Background())
	if err != nil || len(invs) != 1 || invs[0].Status != "Completed" || strings.Join(invs[0].Paths, " ") != "/p1 /p2" {
		t.Errorf("invalidations: %+v %v", invs, err)
	}
	if eval[bool](t, b, `[...document.querySelectorAll("button.action")].some(b => b.disabled)`) {
		t.Errorf("with the token some action control stays disabled")
	}
	b.screenshot(t, "console-actions")
	type fetches struct{ Most, N int }
	if f := eval[fetches](t, b, `window.fragmentFetches`); f.N == 0 || f.Most != 1 {
		t.Errorf("fragment requests: %d, at most %d at once; want some, one at a time", f.N, f.Most)
	}
	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}
}
