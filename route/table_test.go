package route_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/intercloud/intercloud/route"
	"github.com/intercloud/intercloud/test/netns"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  route.Config
		ok   bool
	}{
		{"defaults", route.Config{}, true},
		{"table 100 proto 201", route.Config{Table: 100, Protocol: 201}, true},
		{"local table", route.Config{Table: 255}, false},
		{"kernel protocol", route.Config{Protocol: 2}, false},
		{"protocol too big", route.Config{Protocol: 300}, false},
		{"negative table", route.Config{Table: -1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// setup makes a namespace with a link whose connected network holds the
// next hops used below.
func setup(t *testing.T) *netns.Namespace {
	h := netns.New(t)
	a := h.Namespace("rt")
	h.Veth(a, "d0", h.Namespace("peer"), "p0")
	a.Addr("d0", "10.50.0.1/24")
	a.Addr("d0", "fd00:50::1/64")
	return a
}

func routes(t *testing.T, ns *netns.Namespace, args ...string) string {
	t.Helper()
	return ns.MustRun("ip", append([]string{"route", "show"}, args...)...)
}

func r(dst, gw string) route.Route {
	return route.Route{Dst: netip.MustParsePrefix(dst), Gw: netip.MustParseAddr(gw)}
}

func TestSyncInstallsReplacesAndWithdraws(t *testing.T) {
	ns := setup(t)
	reg := prometheus.NewRegistry()
	tbl, err := route.New(route.Config{}, route.Options{NetnsPath: ns.Path(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := []route.Route{r("10.2.0.0/16", "10.50.0.2"), r("10.3.0.0/24", "10.50.0.3"), r("fd00:2::/48", "fd00:50::2")}
	if err := tbl.Sync(ctx, want); err != nil {
		t.Fatal(err)
	}
	out := routes(t, ns, "proto", "200")
	for _, s := range []string{"10.2.0.0/16 via 10.50.0.2", "10.3.0.0/24 via 10.50.0.3"} {
		if !strings.Contains(out, s) {
			t.Errorf("kernel lacks %q:\n%s", s, out)
		}
	}
	if out6 := ns.MustRun("ip", "-6", "route", "show", "proto", "200"); !strings.Contains(out6, "fd00:2::/48 via fd00:50::2") {
		t.Errorf("kernel lacks the IPv6 route:\n%s", out6)
	}
	if got := gauge(t, reg, "intercloud_route_installed"); got != 3 {
		t.Errorf("installed gauge = %v, want 3", got)
	}

	// Next hop changes, one route is withdrawn.
	if err := tbl.Sync(ctx, []route.Route{r("10.2.0.0/16", "10.50.0.9")}); err != nil {
		t.Fatal(err)
	}
	out = routes(t, ns, "proto", "200")
	if !strings.Contains(out, "10.2.0.0/16 via 10.50.0.9") || strings.Contains(out, "10.3.0.0/24") {
		t.Fatalf("after the change the kernel has:\n%s", out)
	}
	if got := tbl.Installed(); len(got) != 1 || got[0] != r("10.2.0.0/16", "10.50.0.9") {
		t.Fatalf("Installed() = %v", got)
	}

	// Someone deletes our route behind our back: the next reconcile
	// repairs it.
	ns.MustRun("ip", "route", "del", "10.2.0.0/16", "proto", "200")
	if err := tbl.Reconcile(ctx, []route.Route{r("10.2.0.0/16", "10.50.0.9")}); err != nil {
		t.Fatal(err)
	}
	if out := routes(t, ns, "proto", "200"); !strings.Contains(out, "10.2.0.0/16 via 10.50.0.9") {
		t.Fatalf("not repaired:\n%s", out)
	}

	// A graceful stop removes our routes.
	if err := tbl.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if out := routes(t, ns, "proto", "200"); strings.TrimSpace(out) != "" {
		t.Fatalf("routes left after Close:\n%s", out)
	}
}

func TestNeverReplacesForeignRoutes(t *testing.T) {
	ns := setup(t)
	ns.MustRun("ip", "route", "add", "10.60.0.0/24", "via", "10.50.0.7", "proto", "static")
	tbl, err := route.New(route.Config{}, route.Options{NetnsPath: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tbl.Close(context.Background()) })
	// The connected 10.50.0.0/24 and the static 10.60.0.0/24 are learned
	// too; neither may be touched.
	err = tbl.Sync(context.Background(), []route.Route{
		r("10.50.0.0/24", "10.50.0.2"), r("10.60.0.0/24", "10.50.0.2"), r("10.70.0.0/24", "10.50.0.2"),
	})
	if err != nil {
		t.Fatal(err)
	}
	out := routes(t, ns)
	for _, s := range []string{
		"10.50.0.0/24 dev d0 proto kernel scope link src 10.50.0.1",
		"10.60.0.0/24 via 10.50.0.7 dev d0 proto static",
		"10.70.0.0/24 via 10.50.0.2 dev d0 proto 200",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("want %q in:\n%s", s, out)
		}
	}
	if n := strings.Count(out, "proto 200"); n != 1 {
		t.Errorf("%d routes of ours, want 1:\n%s", n, out)
	}
	if c := tbl.Conflicts(); len(c) != 2 {
		t.Errorf("Conflicts() = %v, want the connected and the static prefix", c)
	}
	// Withdrawing everything must not delete the foreign routes either.
	if err := tbl.Sync(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	out = routes(t, ns)
	if !strings.Contains(out, "10.60.0.0/24 via 10.50.0.7") || !strings.Contains(out, "10.50.0.0/24 dev d0 proto kernel") {
		t.Fatalf("foreign routes gone after a withdraw:\n%s", out)
	}
}

func TestSweepAndGracefulRestart(t *testing.T) {
	ns := setup(t)
	ctx := context.Background()
	// A crashed run left a route of ours, in table 100.
	ns.MustRun("ip", "route", "add", "10.80.0.0/24", "via", "10.50.0.2", "proto", "200", "table", "100")
	ns.MustRun("ip", "route", "add", "10.81.0.0/24", "via", "10.50.0.2", "proto", "201", "table", "100")
	tbl, err := route.New(route.Config{Table: 100}, route.Options{NetnsPath: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	out := routes(t, ns, "table", "100")
	if strings.Contains(out, "10.80.0.0/24") || !strings.Contains(out, "10.81.0.0/24") {
		t.Fatalf("sweep must remove only proto 200 routes:\n%s", out)
	}
	if err := tbl.Close(ctx); err != nil {
		t.Fatal(err)
	}

	gr := route.Config{Table: 100, GracefulRestart: true}
	tbl, err = route.New(gr, route.Options{NetnsPath: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Sync(ctx, []route.Route{r("10.90.0.0/24", "10.50.0.2")}); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if out := routes(t, ns, "table", "100"); !strings.Contains(out, "10.90.0.0/24 via 10.50.0.2") {
		t.Fatalf("graceful restart must keep routes on Close:\n%s", out)
	}
	// The next run adopts them and keeps them while BGP re-converges even
	// though nothing is learned yet.
	tbl, err = route.New(gr, route.Options{NetnsPath: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if out := routes(t, ns, "table", "100"); !strings.Contains(out, "10.90.0.0/24") {
		t.Fatalf("adopted route dropped before StaleAfter:\n%s", out)
	}
	tbl.Close(ctx)
	// Without graceful restart the adopted route is swept at start.
	tbl, err = route.New(route.Config{Table: 100}, route.Options{NetnsPath: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close(ctx)
	if out := routes(t, ns, "table", "100", "proto", "200"); strings.TrimSpace(out) != "" {
		t.Fatalf("stale routes not swept:\n%s", out)
	}
}

func TestSyncRejectsBadRoutes(t *testing.T) {
	ns := setup(t)
	tbl, err := route.New(route.Config{}, route.Options{NetnsPath: ns.Path()})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close(context.Background())
	err = tbl.Sync(context.Background(), []route.Route{
		{Dst: netip.MustParsePrefix("10.2.0.0/16"), Gw: netip.MustParseAddr("fd00:50::2")}, // family mismatch
		{Dst: netip.MustParsePrefix("10.3.0.0/16")},                                        // no next hop
		r("10.4.0.0/16", "10.50.0.2"),
	})
	if err == nil {
		t.Fatal("want an error for the bad routes")
	}
	if got := tbl.Installed(); len(got) != 1 {
		t.Fatalf("the good route must still be installed: %v", got)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestMetricNames lints every metric of the package.
func TestMetricNames(t *testing.T) {
	ns := setup(t)
	reg := prometheus.NewRegistry()
	tbl, err := route.New(route.Config{}, route.Options{NetnsPath: ns.Path(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close(context.Background())
	if err := tbl.Sync(context.Background(), []route.Route{r("10.2.0.0/16", "10.50.0.2")}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) < 4 {
		t.Fatalf("only %d metric families", len(mfs))
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}
