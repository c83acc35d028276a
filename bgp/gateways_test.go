package bgp_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/bgp/bgptest"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
)

func twoCloudSite() *config.Site {
	d := func(s string) config.Duration { v, _ := time.ParseDuration(s); return config.Duration(v) }
	return &config.Site{
		Name: "t",
		Clouds: []config.Cloud{
			{Name: "seoul", ASN: 65001, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			{Name: "tokyo", ASN: 65002, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}},
		},
		Nodes: []config.Node{
			{Name: "seoul-gw", Cloud: "seoul", Roles: []config.Role{config.RoleGateway},
				Gateway: &config.Gateway{RouterID: netip.MustParseAddr("10.255.1.1")}},
			{Name: "tokyo-gw", Cloud: "tokyo", Roles: []config.Role{config.RoleGateway},
				Gateway: &config.Gateway{RouterID: netip.MustParseAddr("10.255.1.2")}},
		},
		Links: []config.Link{
			{Name: "dx", Kind: config.LinkDedicated, HoldTime: d("3s"), Keepalive: d("1s"),
				A: config.LinkEnd{Node: "seoul-gw", Address: netip.MustParseAddr("10.255.1.1")},
				B: config.LinkEnd{Node: "tokyo-gw", Address: netip.MustParseAddr("10.255.1.2")}},
			{Name: "vpn", Kind: config.LinkVPN, HoldTime: d("3s"), Keepalive: d("1s"),
				A: config.LinkEnd{Node: "seoul-gw", Tunnel: netip.MustParsePrefix("100.64.0.1/30")},
				B: config.LinkEnd{Node: "tokyo-gw", Tunnel: netip.MustParsePrefix("100.64.0.2/30")}},
		},
	}
}

// TestTwoGateways: two of our gateways, configured from one site, peer
// over a dedicated line and a VPN (a second veth standing in for the
// tunnel). Each installs the other's CIDR through the dedicated line, a
// host behind one pings a host behind the other, and when the line goes
// down traffic moves to the VPN and back.
func TestTwoGateways(t *testing.T) {
	testenv.NeedTool(t, "ping", "iputils-ping")
	h := netns.New(t)
	sgw, tgw := h.Namespace("sgw"), h.Namespace("tgw")
	shost, thost := h.Namespace("shost"), h.Namespace("thost")
	h.Veth(sgw, "dx0", tgw, "dx0")
	sgw.Addr("dx0", "10.255.1.1/30")
	tgw.Addr("dx0", "10.255.1.2/30")
	h.Veth(sgw, "tun0", tgw, "tun0")
	sgw.Addr("tun0", "100.64.0.1/30")
	tgw.Addr("tun0", "100.64.0.2/30")
	h.Veth(sgw, "lan0", shost, "eth0")
	sgw.Addr("lan0", "10.1.0.1/24")
	shost.Addr("eth0", "10.1.0.10/24")
	shost.Route("default", "10.1.0.1", "")
	h.Veth(tgw, "lan0", thost, "eth0")
	tgw.Addr("lan0", "10.2.0.1/24")
	thost.Addr("eth0", "10.2.0.10/24")
	thost.Route("default", "10.2.0.1", "")
	sgw.Forwarding()
	tgw.Forwarding()

	site := twoCloudSite()
	var gws []*bgptest.Gateway
	for _, x := range []struct {
		node string
		ns   *netns.Namespace
	}{{"seoul-gw", sgw}, {"tokyo-gw", tgw}} {
		cfg, err := bgp.FromSite(site, x.node)
		if err != nil {
			t.Fatal(err)
		}
		gws = append(gws, startGateway(t, x.ns, gatewayConfig{BGP: cfg}))
	}
	s, k := gws[0], gws[1]
	s.WaitEstablished("dx", "vpn")
	k.WaitEstablished("dx", "vpn")

	// Both sessions carry the prefix; the dedicated line wins (local
	// preference 200 over 100).
	eventually(t, 10*time.Second, "seoul routes tokyo via the line", func() error {
		return contains(s.Kernel(), "10.2.0.0/16 via 10.255.1.2 dev dx0")
	})
	eventually(t, 10*time.Second, "tokyo routes seoul via the line", func() error {
		return contains(k.Kernel(), "10.1.0.0/16 via 10.255.1.1 dev dx0")
	})
	ping := func() error {
		out, err := shost.Run(t.Context(), "ping", "-c1", "-W1", "10.2.0.10")
		if err != nil {
			return err
		}
		return contains(string(out), "1 received")
	}
	eventually(t, 10*time.Second, "ping across clouds", ping)

	// The line fails (no FIN: the hold timer notices): traffic moves to
	// the VPN.
	tgw.Down("dx0")
	eventually(t, 15*time.Second, "failover to the VPN", func() error {
		return contains(s.Kernel(), "10.2.0.0/16 via 100.64.0.2 dev tun0")
	})
	eventually(t, 15*time.Second, "tokyo fails over too", func() error {
		return contains(k.Kernel(), "10.1.0.0/16 via 100.64.0.1 dev tun0")
	})
	eventually(t, 10*time.Second, "ping over the VPN", ping)

	// The line is back: traffic returns to it.
	tgw.Up("dx0")
	eventually(t, 30*time.Second, "back on the line", func() error {
		return contains(s.Kernel(), "10.2.0.0/16 via 10.255.1.2 dev dx0")
	})
	eventually(t, 10*time.Second, "ping over the line again", ping)
}
