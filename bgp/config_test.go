package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v4/api"

	"github.com/intercloud/intercloud/config"
)

// site is rendered as config renders it: FromSite reads the link hold
// times and ports filled there.
func site() *config.Site {
	s := &config.Snapshot{Site: config.Site{
		Clouds: []config.Cloud{
			{Name: "seoul", ASN: 65001, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00:1::/48")}},
			{Name: "tokyo", ASN: 65002, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}},
		},
		Nodes: []config.Node{
			{Name: "seoul-gw", Cloud: "seoul", Gateway: &config.Gateway{
				RouterID: netip.MustParseAddr("198.18.0.1"), HoldTime: config.Duration(30 * time.Second),
				Neighbors: []config.ExternalNeighbor{{Name: "onprem", Address: netip.MustParseAddr("192.168.0.1"), ASN: 64512,
					Prefixes: []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")}, MaxPrefix: 100, Password: "pw"}},
			}},
			{Name: "tokyo-gw", Cloud: "tokyo", Gateway: &config.Gateway{ListenPort: 1179}},
			{Name: "edge", Cloud: "seoul"},
		},
		Links: []config.Link{
			{Name: "dx", Kind: config.LinkDedicated, Password: "md5", MaxPrefix: 10,
				A: config.LinkEnd{Node: "seoul-gw", Address: netip.MustParseAddr("198.18.1.1")},
				B: config.LinkEnd{Node: "tokyo-gw", Address: netip.MustParseAddr("198.18.1.2")}},
			{Name: "vpn", Kind: config.LinkVPN, HoldTime: config.Duration(9 * time.Second),
				A: config.LinkEnd{Node: "seoul-gw", Tunnel: netip.MustParsePrefix("100.64.0.1/30")},
				B: config.LinkEnd{Node: "tokyo-gw", Tunnel: netip.MustParsePrefix("100.64.0.2/30")}},
		},
	}}
	s.SetDefaults()
	return &s.Site
}

func TestFromSite(t *testing.T) {
	cfg, err := FromSite(site(), "seoul-gw")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ASN != 65001 || cfg.RouterID.String() != "198.18.0.1" || len(cfg.Announce) != 2 {
		t.Fatalf("global: %+v", cfg)
	}
	want := map[string]Neighbor{
		"dx": {Name: "dx", Kind: KindDedicated, Address: netip.MustParseAddr("198.18.1.2"), LocalAddress: netip.MustParseAddr("198.18.1.1"),
			// seoul's 30 s against tokyo's rendered 9 s: the smaller, as
			// BGP would settle on.
			ASN: 65002, Port: 1179, MaxPrefix: 10, Password: "md5", HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second},
		"vpn": {Name: "vpn", Kind: KindVPN, Address: netip.MustParseAddr("100.64.0.2"), LocalAddress: netip.MustParseAddr("100.64.0.1"),
			ASN: 65002, Port: 1179, HoldTime: 9 * time.Second, Keepalive: 3 * time.Second, ConnectRetry: time.Second},
		"onprem": {Name: "onprem", Kind: KindExternal, Address: netip.MustParseAddr("192.168.0.1"), ASN: 64512,
			MaxPrefix: 100, Password: "pw", HoldTime: 30 * time.Second},
	}
	if len(cfg.Neighbors) != len(want) {
		t.Fatalf("neighbors: %+v", cfg.Neighbors)
	}
	for _, n := range cfg.Neighbors {
		w := want[n.Name]
		if !sessionEqual(n, w) || n.Kind != w.Kind {
			t.Errorf("neighbor %s:\n got %+v\nwant %+v", n.Name, n, w)
		}
	}
	if a := cfg.Neighbor(netip.MustParseAddr("198.18.1.2")).Allowed; len(a) != 1 || a[0].String() != "10.2.0.0/16" {
		t.Errorf("dx allowed %v, want tokyo's CIDRs", a)
	}

	// The other side sees the mirror image.
	tk, err := FromSite(site(), "tokyo-gw")
	if err != nil {
		t.Fatal(err)
	}
	if n := tk.Neighbor(netip.MustParseAddr("198.18.1.1")); n == nil || n.ASN != 65001 || len(n.Allowed) != 2 {
		t.Errorf("tokyo's dx neighbor: %+v", n)
	}
	// Exactly one end of each link between our gateways connects.
	for _, addr := range []string{"198.18.1.1", "100.64.0.1"} {
		if n := tk.Neighbor(netip.MustParseAddr(addr)); n == nil || !n.Passive {
			t.Errorf("tokyo's neighbor %s should be passive (tokyo-gw > seoul-gw): %+v", addr, n)
		}
	}
	// tokyo has no router ID: its dedicated-link address stands in.
	if tk.RouterID.String() != "198.18.1.2" {
		t.Errorf("tokyo router ID %v", tk.RouterID)
	}
}

func TestFromSiteErrors(t *testing.T) {
	for _, tc := range []struct {
		name, node, want string
		edit             func(*config.Site)
	}{
		{"unknown node", "nope", "not in the site", nil},
		{"unknown cloud", "seoul-gw", "cloud", func(s *config.Site) { s.Nodes[0].Cloud = "mars" }},
		{"link to unknown node", "seoul-gw", "not in the site", func(s *config.Site) { s.Links[0].B.Node = "ghost" }},
		{"no router id anywhere", "edge", "routerId", nil},
		{"bad link kind", "seoul-gw", "unknown kind", func(s *config.Site) { s.Links[0].Kind = "carrier-pigeon" }},
		{"duplicate neighbor address", "seoul-gw", "already used", func(s *config.Site) {
			s.Nodes[0].Gateway.Neighbors[0].Address = netip.MustParseAddr("198.18.1.2")
		}},
		{"neighbor without ASN", "seoul-gw", "asn", func(s *config.Site) { s.Nodes[0].Gateway.Neighbors[0].ASN = 0 }},
		{"hold time too short", "seoul-gw", "holdTime", func(s *config.Site) { s.Links[1].HoldTime = config.Duration(time.Second) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := site()
			if tc.edit != nil {
				tc.edit(s)
			}
			_, err := FromSite(s, tc.node)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	cfg, err := FromSite(site(), "seoul-gw")
	if err != nil {
		t.Fatal(err)
	}
	req := policies(&cfg)
	sets := map[string]*api.DefinedSet{}
	for _, s := range req.DefinedSets {
		sets[s.Name] = s
	}
	// Export: exactly our CIDRs, split by family.
	if s := sets["own-v4"]; s == nil || len(s.Prefixes) != 1 || s.Prefixes[0].MaskLengthMax != 16 {
		t.Errorf("own-v4: %v", s)
	}
	if s := sets["own-v6"]; s == nil || s.Prefixes[0].IpPrefix != "fd00:1::/48" || s.Prefixes[0].MaskLengthMax != 48 {
		t.Errorf("own-v6: %v", s)
	}
	// Import from dx: tokyo's CIDR or longer, local preference 200.
	if s := sets["allow-198.18.1.2-v4"]; s == nil || s.Prefixes[0].MaskLengthMin != 16 || s.Prefixes[0].MaskLengthMax != 32 {
		t.Errorf("dx allow set: %v", s)
	}
	var imp *api.Policy
	for _, p := range req.Policies {
		if p.Name == importPolicy {
			imp = p
		}
	}
	prefs := map[string]uint32{}
	for _, st := range imp.Statements {
		if st.Actions.LocalPref != nil {
			prefs[st.Conditions.NeighborSet.Name] = st.Actions.LocalPref.Value
		}
	}
	if prefs["nb-198.18.1.2"] != 200 || prefs["nb-100.64.0.2"] != 100 || prefs["nb-192.168.0.1"] != 100 {
		t.Errorf("local preferences %v: dedicated must beat vpn", prefs)
	}
}

func TestValidate(t *testing.T) {
	good := func() Config {
		return Config{ASN: 1, RouterID: netip.MustParseAddr("10.0.0.1"), Neighbors: []Neighbor{
			{Name: "a", Kind: KindVPN, Address: netip.MustParseAddr("10.0.0.2"), ASN: 2},
		}}
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no asn", func(c *Config) { c.ASN = 0 }, "asn"},
		{"v6 router id", func(c *Config) { c.RouterID = netip.MustParseAddr("::1") }, "routerId"},
		{"unmasked cidr", func(c *Config) { c.Announce = []netip.Prefix{netip.MustParsePrefix("10.1.2.3/16")} }, "not a network prefix"},
		{"port", func(c *Config) { c.ListenPort = 70000 }, "out of range"},
		{"kind", func(c *Config) { c.Neighbors[0].Kind = "x" }, "kind"},
		{"family mismatch", func(c *Config) { c.Neighbors[0].LocalAddress = netip.MustParseAddr("fd00::1") }, "family"},
		{"keepalive >= hold", func(c *Config) { c.Neighbors[0].HoldTime, c.Neighbors[0].Keepalive = 3*time.Second, 3*time.Second }, "keepalive"},
		{"long password", func(c *Config) { c.Neighbors[0].Password = strings.Repeat("x", 81) }, "password"},
		{"dup name", func(c *Config) {
			c.Neighbors = append(c.Neighbors, Neighbor{Name: "a", Kind: KindVPN, Address: netip.MustParseAddr("10.0.0.3"), ASN: 2})
		}, "duplicate name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
