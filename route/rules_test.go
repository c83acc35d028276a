package route_test

import (
	"strings"
	"testing"

	"github.com/intercloud/intercloud/route"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
)

var rulesCfg = route.RulesConfig{Priority: 9000, MarkMask: 0xffff00, NftTable: "intercloud_links"}

func TestLinkRuleValidate(t *testing.T) {
	ok := route.LinkRule{Name: "dx", TOS: 0x08, Mark: 0x1c0200, Table: 25000}
	for _, tc := range []struct {
		name string
		edit func(*route.LinkRule)
		want string // part of the error; "" for none
	}{
		{"fine", func(*route.LinkRule) {}, ""},
		{"TOS zero", func(r *route.LinkRule) { r.TOS = 0 }, "TOS 0"},
		{"TOS beyond 0x1c", func(r *route.LinkRule) { r.TOS = 0x20 }, "TOS 0x20"},
		{"ECN bit", func(r *route.LinkRule) { r.TOS = 0x09 }, "TOS 0x9"},
		{"mark outside the mask", func(r *route.LinkRule) { r.Mark = 0x1 }, "outside the mask"},
		{"no mark", func(r *route.LinkRule) { r.Mark = 0 }, "mark 0"},
		{"main table", func(r *route.LinkRule) { r.Table = 254 }, "table 254"},
		{"local table", func(r *route.LinkRule) { r.Table = 255 }, "table 255"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := rulesNS(t)
			rs, err := route.NewRules(withNS(ns))
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			lr := ok
			tc.edit(&lr)
			err = rs.Sync([]route.LinkRule{lr})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Sync: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Sync: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestRulesConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  route.RulesConfig
	}{
		{"after main", route.RulesConfig{Priority: 32766, NftTable: "x"}},
		{"no priority", route.RulesConfig{NftTable: "x"}},
		{"kernel protocol", route.RulesConfig{Priority: 9000, Protocol: 2, NftTable: "x"}},
		{"no nft table", route.RulesConfig{Priority: 9000}},
		{"nft table with a space", route.RulesConfig{Priority: 9000, NftTable: "a b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rs, err := route.NewRules(tc.cfg); err == nil {
				rs.Close()
				t.Fatalf("NewRules(%+v) took it", tc.cfg)
			}
		})
	}
}

// rulesNS is a namespace with two next hops: 10.50.0.2 (a link's) and
// 10.50.0.3 (the main table's).
func rulesNS(t *testing.T) *netns.Namespace {
	t.Helper()
	testenv.NeedTool(t, "nft", "nftables")
	testenv.NeedTool(t, "ip", "iproute2")
	ns := setup(t)
	ns.MustRun("ip", "route", "add", "10.2.0.0/16", "via", "10.50.0.3")
	return ns
}

func withNS(ns *netns.Namespace) route.RulesConfig {
	c := rulesCfg
	c.NetnsPath = ns.Path()
	return c
}

// The kernel sends what carries a link's TOS or mark to the link's
// table, and the rest (or what the link's table has no route for) to
// main; stale rules are swept, removed ones go, Close leaves nothing.
func TestRulesRouteByTOSAndMark(t *testing.T) {
	ns := rulesNS(t)
	ns.MustRun("ip", "route", "add", "10.2.0.0/16", "via", "10.50.0.2", "table", "25000", "proto", "200")
	rs, err := route.NewRules(withNS(ns))
	if err != nil {
		t.Fatal(err)
	}
	dx := route.LinkRule{Name: "dx", TOS: 0x08, Mark: 0x1c0200, Table: 25000}
	vpn := route.LinkRule{Name: "vpn", TOS: 0x0c, Mark: 0x1c0300, Table: 25001}
	if err := rs.Sync([]route.LinkRule{dx, vpn}); err != nil {
		t.Fatal(err)
	}
	rules := ns.MustRun("ip", "rule", "show")
	for _, want := range []string{
		"9000:\tfrom all tos 0x08 lookup 25000 proto 200",
		"9000:\tfrom all fwmark 0x1c0200/0xffff00 lookup 25000 proto 200",
		"9000:\tfrom all tos 0x0c lookup 25001 proto 200",
		"9000:\tfrom all fwmark 0x1c0300/0xffff00 lookup 25001 proto 200",
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("ip rule lacks %q:\n%s", want, rules)
		}
	}
	if r6 := ns.MustRun("ip", "-6", "rule", "show"); !strings.Contains(r6, "tos 0x08 lookup 25000") {
		t.Errorf("ip -6 rule lacks the dx rule:\n%s", r6)
	}
	nft := ns.MustRun("nft", "list", "table", "inet", "intercloud_links")
	for _, want := range []string{"ip dscp map { 0x02 : 0x001c0200, 0x03 : 0x001c0300 }", "ct direction reply"} {
		if !strings.Contains(nft, want) {
			t.Errorf("nft table lacks %q:\n%s", want, nft)
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		via  string
	}{
		{"unmarked: main", nil, "via 10.50.0.3"},
		{"dx's TOS: dx's table", []string{"tos", "0x08"}, "via 10.50.0.2"},
		{"dx's mark: dx's table", []string{"mark", "0x1c0200"}, "via 10.50.0.2"},
		{"vpn's TOS, its table empty: main", []string{"tos", "0x0c"}, "via 10.50.0.3"},
		{"another DSCP: main", []string{"tos", "0x10"}, "via 10.50.0.3"},
	} {
		got := ns.MustRun("ip", append([]string{"route", "get", "10.2.0.5"}, tc.args...)...)
		if !strings.Contains(got, tc.via) {
			t.Errorf("%s: ip route get 10.2.0.5 %v = %q, want %s", tc.name, tc.args, got, tc.via)
		}
	}

	// What someone changes by hand is put back by Reconcile, once.
	if changed, err := rs.Reconcile(); changed || err != nil {
		t.Fatalf("Reconcile of untouched rules: changed %v, %v", changed, err)
	}
	ns.MustRun("ip", "rule", "del", "pref", "9000", "tos", "0x08", "table", "25000")
	ns.MustRun("nft", "delete", "table", "inet", "intercloud_links")
	if changed, err := rs.Reconcile(); !changed || err != nil {
		t.Fatalf("Reconcile after a rule and the nft table were deleted: changed %v, %v", changed, err)
	}
	if rules := ns.MustRun("ip", "rule", "show"); !strings.Contains(rules, "tos 0x08 lookup 25000") {
		t.Errorf("Reconcile did not put the rule back:\n%s", rules)
	}
	ns.MustRun("nft", "list", "table", "inet", "intercloud_links")
	ns.MustRun("ip", "rule", "add", "pref", "9000", "tos", "0x10", "table", "25009", "proto", "200")
	if changed, err := rs.Reconcile(); !changed || err != nil {
		t.Fatalf("Reconcile after a rule of our protocol was added: changed %v, %v", changed, err)
	}
	if rules := ns.MustRun("ip", "rule", "show"); strings.Contains(rules, "25009") {
		t.Errorf("Reconcile left a rule added by hand:\n%s", rules)
	}
	if changed, err := rs.Reconcile(); changed || err != nil {
		t.Fatalf("second Reconcile: changed %v, %v", changed, err)
	}

	// A rule taken out goes from the kernel; the others stay.
	if err := rs.Sync([]route.LinkRule{dx}); err != nil {
		t.Fatal(err)
	}
	if rules := ns.MustRun("ip", "rule", "show"); strings.Contains(rules, "25001") || !strings.Contains(rules, "tos 0x08 lookup 25000") {
		t.Errorf("after removing vpn's rule:\n%s", rules)
	}

	// A new instance (a restart) sweeps what the last one left.
	rs2, err := route.NewRules(withNS(ns))
	if err != nil {
		t.Fatal(err)
	}
	if rules := ns.MustRun("ip", "rule", "show"); strings.Contains(rules, "proto 200") {
		t.Errorf("a restart left stale rules:\n%s", rules)
	}
	if err := rs2.Sync([]route.LinkRule{vpn}); err != nil {
		t.Fatal(err)
	}
	if err := rs2.Close(); err != nil {
		t.Fatal(err)
	}
	if rules := ns.MustRun("ip", "rule", "show"); strings.Contains(rules, "proto 200") {
		t.Errorf("Close left rules:\n%s", rules)
	}
	if out, err := ns.Run(t.Context(), "nft", "list", "table", "inet", "intercloud_links"); err == nil {
		t.Errorf("Close left the nft table:\n%s", out)
	}
	rs.Close()
}
