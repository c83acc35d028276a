package vpn

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
)

func testSite(t testing.TB, aKey, bKey Key) *config.Site {
	t.Helper()
	aPub, _ := aKey.PublicKey()
	bPub, _ := bKey.PublicKey()
	return &config.Site{
		Clouds: []config.Cloud{
			{Name: "seoul", ASN: 65001, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			{Name: "tokyo", ASN: 65002, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("10.22.0.0/16")}},
		},
		Nodes: []config.Node{
			{Name: "seoul-gw", Cloud: "seoul", Roles: []config.Role{config.RoleGateway},
				Gateway: &config.Gateway{Wireguard: &config.Wireguard{PrivateKeyFile: "a.key", ListenPort: 51820}}},
			{Name: "tokyo-gw", Cloud: "tokyo", Roles: []config.Role{config.RoleGateway},
				Gateway: &config.Gateway{Wireguard: &config.Wireguard{PrivateKeyFile: "b.key", ListenPort: 51820}}},
		},
		Links: []config.Link{
			{Name: "dx", Kind: config.LinkDedicated, A: config.LinkEnd{Node: "seoul-gw"}, B: config.LinkEnd{Node: "tokyo-gw"}},
			{Name: "vpn", Kind: config.LinkVPN, PersistentKeepalive: config.DefaultPersistentKeepalive,
				A: config.LinkEnd{Node: "seoul-gw", Endpoint: "10.9.0.1:51821", Tunnel: netip.MustParsePrefix("100.64.0.1/30"), PublicKey: aPub.String()},
				B: config.LinkEnd{Node: "tokyo-gw", Endpoint: "10.9.0.2:51822", Tunnel: netip.MustParsePrefix("100.64.0.2/30"), PublicKey: bPub.String()}},
		},
	}
}

func TestFromSite(t *testing.T) {
	aKey, _ := GenerateKey()
	bKey, _ := GenerateKey()
	bPub, _ := bKey.PublicKey()

	site := testSite(t, aKey, bKey)
	got, err := FromSite(site, "seoul-gw")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("tunnels = %d, want 1", len(got))
	}
	tu := got[0]
	if tu.Name != "ic-tokyo-gw" || tu.PeerNode != "tokyo-gw" || tu.Link != "vpn" || tu.KeyFile != "a.key" {
		t.Fatalf("tunnel = %+v", tu)
	}
	if tu.Listen != 51821 || tu.Endpoint != "10.9.0.2:51822" || tu.Peer != bPub {
		t.Fatalf("listen %d endpoint %s", tu.Listen, tu.Endpoint)
	}
	if tu.Keepalive != config.DefaultPersistentKeepalive.D() || tu.MTU != 0 {
		t.Fatalf("keepalive %s mtu %d", tu.Keepalive, tu.MTU)
	}
	want := []string{"100.64.0.2/32", "10.2.0.0/16", "10.22.0.0/16"}
	if len(tu.AllowedIPs) != len(want) {
		t.Fatalf("allowed = %v", tu.AllowedIPs)
	}
	for i, w := range want {
		if tu.AllowedIPs[i].String() != w {
			t.Fatalf("allowed = %v, want %v", tu.AllowedIPs, want)
		}
	}
	if tu.PeerAddr() != netip.MustParseAddr("100.64.0.2") {
		t.Fatalf("peer addr %v", tu.PeerAddr())
	}

	tests := []struct {
		name   string
		edit   func(s *config.Site)
		node   string
		errHas string
		check  func(t *testing.T, tu []Tunnel)
	}{
		{"other end", nil, "tokyo-gw", "", func(t *testing.T, tu []Tunnel) {
			if tu[0].Name != "ic-seoul-gw" || tu[0].Listen != 51822 {
				t.Fatalf("%+v", tu[0])
			}
		}},
		{"unknown node", nil, "nobody", "not in the site", nil},
		{"link MTU wins", func(s *config.Site) { s.Links[1].MTU = 1300; s.Nodes[0].Gateway.Wireguard.MTU = 1400 }, "seoul-gw", "", func(t *testing.T, tu []Tunnel) {
			if tu[0].MTU != 1300 {
				t.Fatalf("mtu %d", tu[0].MTU)
			}
		}},
		{"node MTU", func(s *config.Site) { s.Nodes[0].Gateway.Wireguard.MTU = 1400 }, "seoul-gw", "", func(t *testing.T, tu []Tunnel) {
			if tu[0].MTU != 1400 {
				t.Fatalf("mtu %d", tu[0].MTU)
			}
		}},
		{"MTU too small", func(s *config.Site) { s.Links[1].MTU = 500 }, "seoul-gw", "mtu", nil},
		{"no own endpoint: node listen port", func(s *config.Site) { s.Links[1].A.Endpoint = "" }, "seoul-gw", "", func(t *testing.T, tu []Tunnel) {
			if tu[0].Listen != 51820 {
				t.Fatalf("listen %d", tu[0].Listen)
			}
		}},
		{"peer without endpoint waits", func(s *config.Site) { s.Links[1].B.Endpoint = "" }, "seoul-gw", "", func(t *testing.T, tu []Tunnel) {
			if tu[0].Endpoint != "" {
				t.Fatalf("endpoint %q", tu[0].Endpoint)
			}
		}},
		{"keepalive", func(s *config.Site) { s.Links[1].PersistentKeepalive = config.Duration(2 * time.Second) }, "seoul-gw", "", func(t *testing.T, tu []Tunnel) {
			if tu[0].Keepalive != 2*time.Second {
				t.Fatalf("keepalive %s", tu[0].Keepalive)
			}
		}},
		{"no keepalive", func(s *config.Site) { s.Links[1].PersistentKeepalive = 0 }, "seoul-gw", "persistentKeepalive", nil},
		{"fractional keepalive", func(s *config.Site) { s.Links[1].PersistentKeepalive = config.Duration(1500 * time.Millisecond) }, "seoul-gw", "persistentKeepalive", nil},
		{"bad peer key", func(s *config.Site) { s.Links[1].B.PublicKey = "nope" }, "seoul-gw", "tokyo-gw.publicKey", nil},
		{"bad endpoint", func(s *config.Site) { s.Links[1].B.Endpoint = "10.9.0.2" }, "seoul-gw", "tokyo-gw.endpoint", nil},
		{"bad port", func(s *config.Site) { s.Links[1].B.Endpoint = "10.9.0.2:0" }, "seoul-gw", "port", nil},
		{"no tunnel address", func(s *config.Site) { s.Links[1].B.Tunnel = netip.Prefix{} }, "seoul-gw", "tunnel address", nil},
		{"same tunnel address", func(s *config.Site) { s.Links[1].B.Tunnel = s.Links[1].A.Tunnel }, "seoul-gw", "same tunnel address", nil},
		{"no wireguard section", func(s *config.Site) { s.Nodes[0].Gateway = nil }, "seoul-gw", "wireguard", nil},
		{"no key file", func(s *config.Site) { s.Nodes[0].Gateway.Wireguard.PrivateKeyFile = "" }, "seoul-gw", "privateKeyFile", nil},
		{"unknown peer", func(s *config.Site) { s.Links[1].B.Node = "osaka-gw" }, "seoul-gw", "osaka-gw", nil},
		{"long peer name is cut", func(s *config.Site) {
			s.Nodes[1].Name = "tokyo-gateway-primary"
			s.Links[1].B.Node = "tokyo-gateway-primary"
		}, "seoul-gw", "", func(t *testing.T, tu []Tunnel) {
			if tu[0].Name != "ic-tokyo-gatewa" || len(tu[0].Name) != 15 {
				t.Fatalf("name %q", tu[0].Name)
			}
		}},
		{"two links to one peer clash", func(s *config.Site) {
			l := s.Links[1]
			l.Name = "vpn2"
			l.A.Endpoint = "10.9.0.1:51830"
			s.Links = append(s.Links, l)
		}, "seoul-gw", "both need interface", nil},
		{"two links on one port clash", func(s *config.Site) {
			s.Nodes = append(s.Nodes, config.Node{Name: "osaka-gw", Cloud: "tokyo"})
			l := s.Links[1]
			l.Name = "vpn2"
			l.B.Node = "osaka-gw"
			s.Links = append(s.Links, l)
		}, "seoul-gw", "UDP port 51821", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSite(t, aKey, bKey)
			if tt.edit != nil {
				tt.edit(s)
			}
			got, err := FromSite(s, tt.node)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
		})
	}
}
