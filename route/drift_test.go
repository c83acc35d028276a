package route_test

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/route"
)

// Routes of ours changed by hand with ip(8) in the table's namespace are
// found by Drift and put back by Heal; a prefix someone took with a route
// of another protocol is reported and left to them.
func TestDriftAndHeal(t *testing.T) {
	ns := setup(t)
	tbl, err := route.New(route.Config{}, route.Options{NetnsPath: ns.Path(), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close(context.Background())
	want := []route.Route{r("10.2.0.0/16", "10.50.0.2"), r("10.3.0.0/24", "10.50.0.3"), r("fd00:2::/48", "fd00:50::2")}
	if err := tbl.Sync(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if d, err := tbl.Drift(); err != nil || len(d) != 0 {
		t.Fatalf("after sync: drift %v, %v", d, err)
	}
	ns.MustRun("ip", "route", "del", "10.2.0.0/16", "proto", "200")
	ns.MustRun("ip", "route", "replace", "10.3.0.0/24", "via", "10.50.0.9", "proto", "200")
	ns.MustRun("ip", "route", "add", "10.7.0.0/16", "via", "10.50.0.2", "proto", "200")
	ns.MustRun("ip", "-6", "route", "del", "fd00:2::/48", "proto", "200")
	d, err := tbl.Drift()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, x := range d {
		got = append(got, x.Dst.String()+": "+x.Expected()+" / "+x.Actual())
	}
	wantDiffs := []string{
		"10.2.0.0/16: 10.2.0.0/16 via 10.50.0.2 / absent",
		"10.3.0.0/24: 10.3.0.0/24 via 10.50.0.3 / 10.3.0.0/24 via 10.50.0.9",
		"10.7.0.0/16: absent / 10.7.0.0/16 via 10.50.0.2",
		"fd00:2::/48: fd00:2::/48 via fd00:50::2 / absent",
	}
	if !slices.Equal(got, wantDiffs) {
		t.Fatalf("drift:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantDiffs, "\n"))
	}
	for _, x := range d {
		if err := tbl.Heal(x.Dst); err != nil {
			t.Fatalf("heal %v: %v", x.Dst, err)
		}
	}
	if d, err := tbl.Drift(); err != nil || len(d) != 0 {
		t.Fatalf("after heal: drift %v, %v", d, err)
	}
	out := routes(t, ns, "proto", "200")
	for _, s := range []string{"10.2.0.0/16 via 10.50.0.2", "10.3.0.0/24 via 10.50.0.3"} {
		if !strings.Contains(out, s) {
			t.Errorf("kernel lacks %q after heal:\n%s", s, out)
		}
	}
	if strings.Contains(out, "10.7.0.0") {
		t.Errorf("the route added by hand with our protocol is still there:\n%s", out)
	}
	if out6 := ns.MustRun("ip", "-6", "route", "show", "proto", "200"); !strings.Contains(out6, "fd00:2::/48 via fd00:50::2") {
		t.Errorf("kernel lacks the IPv6 route after heal:\n%s", out6)
	}

	// A link going down takes its routes with it: the path failed, nobody
	// deleted them. Once the link is back they are missing.
	ns.MustRun("ip", "link", "set", "d0", "down")
	if out := routes(t, ns, "proto", "200"); strings.Contains(out, "10.2.0.0/16") {
		t.Fatalf("the kernel kept the routes through a downed link:\n%s", out)
	}
	if d, err := tbl.Drift(); err != nil || len(d) != 0 {
		t.Fatalf("link down: drift %v, %v", d, err)
	}
	ns.MustRun("ip", "link", "set", "d0", "up")
	// IPv4 addresses stay over a link down, so its next hops are on a
	// connected network again; the IPv6 address goes with the link
	// unless keep_addr_on_down is set, and without it the IPv6 route is
	// no one's to put back.
	missing := []string{"10.2.0.0/16", "10.3.0.0/24"}
	if strings.Contains(ns.MustRun("ip", "-6", "addr", "show", "dev", "d0"), "fd00:50::1") {
		missing = append(missing, "fd00:2::/48")
	}
	d, err = tbl.Drift()
	var gone []string
	for _, x := range d {
		if x.Got.IsValid() {
			t.Fatalf("link back up: %v is not a missing route", x)
		}
		gone = append(gone, x.Dst.String())
	}
	if err != nil || !slices.Equal(gone, missing) {
		t.Fatalf("link back up: drift %v, %v; want %v missing", d, err, missing)
	}
	for _, x := range d {
		if err := tbl.Heal(x.Dst); err != nil {
			t.Fatal(err)
		}
	}

	// An operator's static route for our prefix is theirs.
	ns.MustRun("ip", "route", "del", "10.2.0.0/16", "proto", "200")
	ns.MustRun("ip", "route", "add", "10.2.0.0/16", "via", "10.50.0.5", "proto", "static")
	d, err = tbl.Drift()
	if err != nil || len(d) != 1 || d[0].Dst != netip.MustParsePrefix("10.2.0.0/16") || d[0].Got.IsValid() {
		t.Fatalf("drift with a static route in the way: %v, %v", d, err)
	}
	if err := tbl.Heal(d[0].Dst); err == nil || !strings.Contains(err.Error(), "held by another route") {
		t.Fatalf("heal over a static route: %v", err)
	}
	if out := routes(t, ns, "10.2.0.0/16"); !strings.Contains(out, "via 10.50.0.5") || !strings.Contains(out, "proto static") {
		t.Fatalf("the static route was touched:\n%s", out)
	}
}
