package bgp_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
)

// bird is a BIRD 2 daemon with its own config and control socket.
type bird struct {
	t    *testing.T
	ns   *netns.Namespace
	sock string
	proc *netns.Proc
	conf string
}

func startBIRD(t *testing.T, ns *netns.Namespace, conf string) *bird {
	t.Helper()
	testenv.NeedTool(t, "bird", "bird2")
	testenv.NeedTool(t, "birdc", "bird2")
	dir := t.TempDir()
	b := &bird{t: t, ns: ns, sock: filepath.Join(dir, "bird.ctl"), conf: filepath.Join(dir, "bird.conf")}
	if err := os.WriteFile(b.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := ns.Run(t.Context(), "bird", "-p", "-c", b.conf); err != nil {
		t.Fatalf("bird config: %v\n%s", err, out)
	}
	b.start()
	return b
}

func (b *bird) start() {
	b.proc = b.ns.Start("bird", "-f", "-c", b.conf, "-s", b.sock)
	eventually(b.t, 10*time.Second, "bird control socket", func() error {
		_, err := b.cmd("show status")
		return err
	})
}

func (b *bird) cmd(args string) (string, error) {
	out, err := b.ns.Run(b.t.Context(), "birdc", append([]string{"-s", b.sock}, strings.Fields(args)...)...)
	return string(out), err
}

func (b *bird) must(args string) string {
	b.t.Helper()
	out, err := b.cmd(args)
	if err != nil {
		b.t.Fatalf("birdc %s: %v\n%s", args, err, out)
	}
	return out
}

const birdConf = `
router id 10.255.0.2;
log stderr all;
protocol device {}
# What the tokyo cloud announces: its CIDR, a longer prefix of it, and
# three prefixes outside it (a hijack of seoul's space, an unrelated
# network, and the prefix of a network connected on the seoul gateway).
protocol static cloudroutes {
	ipv4;
	route 10.2.0.0/16 blackhole;
	route 10.2.5.0/24 blackhole;
	route 10.1.99.0/24 blackhole;
	route 10.9.0.0/16 blackhole;
	route 10.2.200.0/24 blackhole;
}
protocol static onpremroutes {
	ipv4;
	route 10.20.1.0/24 blackhole;
	route 10.20.2.0/24 blackhole;
	route 10.20.3.0/24 blackhole;
}
protocol bgp cloud {
	local 10.255.0.2 as 65002;
	neighbor 10.255.0.1 as 65001;
	password "s3cret-md5";
	hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
	ipv4 { import all; export where proto = "cloudroutes"; };
}
# TCP MD5 keys are per remote address, so the session without a password
# uses other addresses on both sides.
protocol bgp onprem {
	local 10.255.0.3 as 65010;
	neighbor 10.255.0.11 as 65001;
	hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
	ipv4 { import all; export where proto = "onpremroutes"; };
}
`

func seoulConfig() gatewayConfig {
	return gatewayConfig{BGP: bgp.Config{
		ASN:      65001,
		RouterID: netip.MustParseAddr("10.255.0.1"),
		Announce: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
		Neighbors: []bgp.Neighbor{
			{
				Name: "cloud", Kind: bgp.KindDedicated, ASN: 65002,
				Address:      netip.MustParseAddr("10.255.0.2"),
				LocalAddress: netip.MustParseAddr("10.255.0.1"),
				Allowed:      []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")},
				Password:     "s3cret-md5",
				HoldTime:     3 * time.Second, Keepalive: time.Second, ConnectRetry: time.Second,
			},
			{
				Name: "onprem", Kind: bgp.KindExternal, ASN: 65010,
				Address:      netip.MustParseAddr("10.255.0.3"),
				LocalAddress: netip.MustParseAddr("10.255.0.11"),
				Allowed:      []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")},
				MaxPrefix:    2,
				HoldTime:     3 * time.Second, Keepalive: time.Second, ConnectRetry: time.Second,
			},
		},
	}}
}

// TestBIRDInterop runs our gateway against BIRD 2 over a veth: policies,
// MD5, max-prefix, kernel install and withdraw, a config diff that keeps
// sessions up, and a link failure.
func TestBIRDInterop(t *testing.T) {
	h := netns.New(t)
	seoul, tokyo := h.Namespace("seoul"), h.Namespace("tokyo")
	h.Veth(seoul, "eth0", tokyo, "eth0")
	seoul.Addr("eth0", "10.255.0.1/24")
	seoul.Addr("eth0", "10.255.0.11/24")
	tokyo.Addr("eth0", "10.255.0.2/24")
	tokyo.Addr("eth0", "10.255.0.3/24")
	// A network connected on the gateway inside tokyo's space: the learned
	// route for it must not replace the connected one.
	h.Veth(seoul, "lan0", h.Namespace("lan"), "eth0")
	seoul.Addr("lan0", "10.2.200.1/24")

	cfg := seoulConfig()
	g := startGateway(t, seoul, cfg)
	b := startBIRD(t, tokyo, birdConf)
	g.WaitEstablished("cloud")

	// Import policy: tokyo's CIDR and longer prefixes are installed with
	// our protocol, everything else announced by BIRD is rejected.
	eventually(t, 10*time.Second, "learned routes in the kernel", func() error {
		return contains(g.Kernel(), "10.2.0.0/16 via 10.255.0.2 dev eth0", "10.2.5.0/24 via 10.255.0.2 dev eth0")
	})
	if err := lacks(g.Kernel(), "10.1.99.0", "10.9.0.0", "10.20."); err != nil {
		t.Fatalf("out-of-policy prefix installed: %v", err)
	}
	all := seoul.MustRun("ip", "route", "show")
	if err := contains(all, "10.2.200.0/24 dev lan0 proto kernel"); err != nil {
		t.Fatal(err)
	}
	if err := lacks(all, "10.2.200.0/24 via"); err != nil {
		t.Fatalf("connected route replaced: %v", err)
	}
	ns := g.Neighbors()
	if n := ns["cloud"]; n.Received != 5 || n.Accepted != 3 || n.Advertised != 1 || n.LocalPref != 200 {
		t.Errorf("cloud neighbor: received %d accepted %d advertised %d localPref %d, want 5 3 1 200",
			n.Received, n.Accepted, n.Advertised, n.LocalPref)
	}

	// Export policy: BIRD learns our CIDR from us and nothing else (not
	// the routes learned from the other session).
	eventually(t, 10*time.Second, "BIRD learns 10.1.0.0/16", func() error {
		return contains(b.must("show route protocol cloud"), "10.1.0.0/16")
	})
	if out := b.must("show route protocol cloud"); strings.Count(out, "/") != 1 {
		t.Errorf("BIRD learned more than our CIDR:\n%s", out)
	}

	// Max-prefix: onprem sends 3 prefixes, 2 allowed: its session is shut
	// down, logged and counted, and the cloud session is unaffected.
	eventually(t, 15*time.Second, "onprem shut down by max-prefix", func() error {
		if n := g.Neighbors()["onprem"]; n.Admin != "max-prefix" {
			return fmt.Errorf("onprem admin %q state %q", n.Admin, n.State)
		}
		return nil
	})
	if err := contains(g.Metrics(), `intercloud_bgp_max_prefix_exceeded_total{neighbor="onprem"} 1`); err != nil {
		t.Error(err)
	}
	if err := contains(g.Proc.Output(), "more prefixes than its max-prefix"); err != nil {
		t.Error(err)
	}
	eventually(t, 10*time.Second, "onprem routes gone", func() error { return lacks(g.Kernel(), "10.20.") })
	before := g.Neighbors()["cloud"]
	if !before.Established() {
		t.Fatalf("cloud session went down: %+v", before)
	}

	// Withdraw: BIRD stops announcing a prefix, it leaves our kernel.
	b.must("disable cloudroutes")
	eventually(t, 10*time.Second, "withdrawn routes leave the kernel", func() error {
		return lacks(g.Kernel(), "10.2.0.0/16", "10.2.5.0/24")
	})
	b.must("enable cloudroutes")
	eventually(t, 10*time.Second, "routes back", func() error { return contains(g.Kernel(), "10.2.0.0/16", "10.2.5.0/24") })

	// A config diff: a new CIDR, a policy change for cloud (10.9.0.0/16 is
	// now allowed), a new neighbor. The cloud session stays up: same
	// establishment time, no new establishment.
	cfg.BGP.Announce = append(cfg.BGP.Announce, netip.MustParsePrefix("10.11.0.0/16"))
	cfg.BGP.Neighbors[0].Allowed = append(cfg.BGP.Neighbors[0].Allowed, netip.MustParsePrefix("10.9.0.0/16"))
	cfg.BGP.Neighbors = append(cfg.BGP.Neighbors, bgp.Neighbor{
		Name: "later", Kind: bgp.KindExternal, ASN: 65020, Address: netip.MustParseAddr("10.255.0.77"),
		Allowed: []netip.Prefix{netip.MustParsePrefix("10.30.0.0/16")}, ConnectRetry: time.Second,
	})
	if err := g.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "BIRD learns the new CIDR", func() error {
		return contains(b.must("show route protocol cloud"), "10.11.0.0/16")
	})
	eventually(t, 10*time.Second, "soft reset applies the new import policy", func() error {
		return contains(g.Kernel(), "10.9.0.0/16 via 10.255.0.2")
	})
	after := g.Neighbors()
	if !after["cloud"].Established() || !after["cloud"].Since.Equal(before.Since) {
		t.Errorf("cloud session was reset by the diff: before %v, after %+v", before.Since, after["cloud"])
	}
	if err := contains(g.Metrics(), `intercloud_bgp_sessions_established_total{neighbor="cloud"} 1`); err != nil {
		t.Error(err)
	}
	if _, ok := after["later"]; !ok {
		t.Errorf("new neighbor missing: %v", after)
	}

	// The link goes down: no FIN, the hold timer (3 s) takes the routes
	// out. It comes back: re-learned.
	tokyo.Down("eth0")
	eventually(t, 15*time.Second, "routes withdrawn after the hold time", func() error {
		return lacks(g.Kernel(), "10.2.0.0/16")
	})
	tokyo.Up("eth0")
	g.WaitEstablished("cloud")
	eventually(t, 15*time.Second, "routes re-learned", func() error { return contains(g.Kernel(), "10.2.0.0/16") })

	// BIRD is killed: routes go, it restarts: back.
	b.proc.Kill()
	eventually(t, 15*time.Second, "routes withdrawn after BIRD died", func() error {
		return lacks(g.Kernel(), "10.2.0.0/16")
	})
	b.start()
	eventually(t, 20*time.Second, "routes re-learned from the new BIRD", func() error {
		return contains(g.Kernel(), "10.2.0.0/16")
	})

	// Graceful stop removes our routes.
	g.Proc.Stop()
	if out := seoul.MustRun("ip", "route", "show", "proto", "200"); strings.TrimSpace(out) != "" {
		t.Fatalf("routes left after the gateway stopped:\n%s", out)
	}
}
