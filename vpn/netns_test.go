package vpn_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
	"github.com/intercloud/intercloud/vpn"
)

// topo is two gateways, a (cloud seoul, 10.1.0.0/16) and b (cloud tokyo,
// 10.2.0.0/16), each in its own namespace, joined only through a third
// namespace that routes between them (the internet). Every veth has the
// given underlay MTU. A host address of each cloud sits on the gateway's
// loopback, with the route to the other cloud through the tunnel.
type topo struct {
	t            *testing.T
	h            *netns.Harness
	a, b, inet   *netns.Namespace
	nodeA, nodeB string
	keyA, keyB   string // key files
	site         *config.Site
}

const (
	underA = "10.201.1.2"
	underB = "10.201.2.2"
)

var sweepSockets sync.Once

// sweepStaleSockets removes UAPI sockets that test runs killed outright
// left in the host-wide directory: ours are ic-ic<tag>-<side>.sock, and a
// stale one refuses connections.
func sweepStaleSockets() {
	paths, _ := filepath.Glob("/var/run/wireguard/ic-ic*.sock")
	for _, p := range paths {
		if c, err := net.Dial("unix", p); err == nil {
			c.Close()
			continue
		}
		os.Remove(p)
	}
}

func newTopo(t *testing.T, mtu int) *topo {
	h := netns.New(t)
	sweepSockets.Do(sweepStaleSockets)
	testenv.NeedFile(t, "/dev/net/tun", "load the tun module: modprobe tun")
	tp := &topo{t: t, h: h,
		a: h.Namespace("a"), b: h.Namespace("b"), inet: h.Namespace("inet"),
		nodeA: h.Prefix() + "-a", nodeB: h.Prefix() + "-b",
	}
	h.Veth(tp.a, "eth0", tp.inet, "a0")
	h.Veth(tp.b, "eth0", tp.inet, "b0")
	tp.inet.Forwarding()
	for _, x := range []struct {
		ns   *netns.Namespace
		link string
	}{{tp.a, "eth0"}, {tp.b, "eth0"}, {tp.inet, "a0"}, {tp.inet, "b0"}} {
		x.ns.MustRun("ip", "link", "set", "dev", x.link, "mtu", strconv.Itoa(mtu))
	}
	tp.a.Addr("eth0", underA+"/24")
	tp.inet.Addr("a0", "10.201.1.1/24")
	tp.b.Addr("eth0", underB+"/24")
	tp.inet.Addr("b0", "10.201.2.1/24")
	tp.a.Route("default", "10.201.1.1", "")
	tp.b.Route("default", "10.201.2.1", "")
	tp.a.Addr("lo", "10.1.0.1/32")
	tp.b.Addr("lo", "10.2.0.1/32")

	dir := t.TempDir()
	tp.keyA, tp.keyB = filepath.Join(dir, "a.key"), filepath.Join(dir, "b.key")
	ka, kb := newKey(t, tp.keyA), newKey(t, tp.keyB)
	tp.site = &config.Site{
		Name: "test",
		Clouds: []config.Cloud{
			{Name: "seoul", ASN: 65001, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}},
			{Name: "tokyo", ASN: 65002, CIDRs: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}},
		},
		Nodes: []config.Node{
			{Name: tp.nodeA, Cloud: "seoul", Roles: []config.Role{config.RoleGateway},
				Gateway: &config.Gateway{Wireguard: &config.Wireguard{PrivateKeyFile: tp.keyA}}},
			{Name: tp.nodeB, Cloud: "tokyo", Roles: []config.Role{config.RoleGateway},
				Gateway: &config.Gateway{Wireguard: &config.Wireguard{PrivateKeyFile: tp.keyB}}},
		},
		Links: []config.Link{{
			Name: "vpn", Kind: config.LinkVPN, PersistentKeepalive: config.Duration(time.Second),
			A: config.LinkEnd{Node: tp.nodeA, Endpoint: underA + ":51820", Tunnel: netip.MustParsePrefix("100.64.0.1/30"), PublicKey: ka},
			B: config.LinkEnd{Node: tp.nodeB, Endpoint: underB + ":51820", Tunnel: netip.MustParsePrefix("100.64.0.2/30"), PublicKey: kb},
		}},
	}
	// Registered before any daemon starts, so it runs after they stopped: a
	// daemon killed outright leaves its UAPI socket behind in the host-wide
	// directory.
	t.Cleanup(func() {
		for _, n := range []string{tp.ifA(), tp.ifB()} {
			os.Remove("/var/run/wireguard/" + n + ".sock")
		}
	})
	return tp
}

// ifA is a's interface (named after its peer b), ifB b's.
func (tp *topo) ifA() string { return vpn.IfName(tp.nodeB) }
func (tp *topo) ifB() string { return vpn.IfName(tp.nodeA) }

// up starts a daemon in each namespace, applies the site to both and
// waits until each sees its peer.
func (tp *topo) up(t *testing.T) (da, db *daemon) {
	t.Helper()
	da = startDaemon(t, tp.a, tp.nodeA)
	db = startDaemon(t, tp.b, tp.nodeB)
	da.mustApply(tp.site)
	db.mustApply(tp.site)
	da.waitPeer(true, 10*time.Second)
	db.waitPeer(true, 10*time.Second)
	return da, db
}

// cloudRoutes sends each cloud's traffic for the other through the tunnel,
// from the host address, as BGP would install it.
func (tp *topo) cloudRoutes() {
	tp.a.MustRun("ip", "route", "add", "10.2.0.0/16", "dev", tp.ifA(), "src", "10.1.0.1")
	tp.b.MustRun("ip", "route", "add", "10.1.0.0/16", "dev", tp.ifB(), "src", "10.2.0.1")
}

func newKey(t *testing.T, path string) string {
	t.Helper()
	k, err := vpn.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := vpn.WriteKeyFile(path, k, true); err != nil {
		t.Fatal(err)
	}
	pub, _ := k.PublicKey()
	return pub.String()
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// ping pings dst from ns and returns (sent, received).
func ping(t *testing.T, ns *netns.Namespace, args ...string) (int, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := ns.Run(ctx, "ping", append([]string{"-n", "-q"}, args...)...)
	m := pingStats.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("ping %v: %s", args, out)
	}
	sent, _ := strconv.Atoi(m[1])
	recv, _ := strconv.Atoi(m[2])
	return sent, recv
}

func mustPing(t *testing.T, ns *netns.Namespace, args ...string) {
	t.Helper()
	if sent, recv := ping(t, ns, append([]string{"-c", "3", "-i", "0.2", "-W", "2"}, args...)...); recv != sent {
		t.Fatalf("ping %v from %s: %d of %d answered", args, ns.Name(), recv, sent)
	}
}

// Ours on both sides: ping across, `wg show` on our interface, AllowedIPs
// changed in place, key rotation, and a dead underlay detected.
func TestTunnel(t *testing.T) {
	testenv.NeedTool(t, "ping", "iputils-ping")
	wg := testenv.NeedTool(t, "wg", "wireguard-tools")
	tp := newTopo(t, 1380)
	da, db := tp.up(t)
	tp.cloudRoutes()

	t.Run("ping", func(t *testing.T) {
		mustPing(t, tp.a, "100.64.0.2")
		mustPing(t, tp.b, "100.64.0.1")
		mustPing(t, tp.a, "-I", "10.1.0.1", "10.2.0.1")
		// Full-size packets at the derived MTU, DF set.
		mustPing(t, tp.a, "-M", "do", "-s", strconv.Itoa(1300-28), "10.2.0.1")
	})

	t.Run("status", func(t *testing.T) {
		s := da.status()
		if len(s.Interfaces) != 1 {
			t.Fatalf("interfaces: %+v", s.Interfaces)
		}
		i := s.Interfaces[0]
		p := i.Peer
		if i.Name != tp.ifA() || i.MTU != 1300 || i.ListenPort != 51820 || i.Link != "vpn" {
			t.Fatalf("interface %+v (MTU must be the 1380 underlay minus 80)", i)
		}
		if p.Node != tp.nodeB || p.Endpoint != underB+":51820" || p.Address != netip.MustParseAddr("100.64.0.2") ||
			p.RxBytes == 0 || p.TxBytes == 0 || p.LastHandshake.IsZero() || p.Keepalive != 1 {
			t.Fatalf("peer %+v", p)
		}
		if p.PublicKey != tp.site.Links[0].B.PublicKey {
			t.Fatalf("peer key %s", p.PublicKey)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := da.metrics()
		labels := fmt.Sprintf(`{interface=%q,peer=%q}`, tp.ifA(), tp.nodeB)
		for _, want := range []string{
			"intercloud_vpn_peer_up" + labels + " 1",
			"intercloud_vpn_peer_receive_bytes_total" + labels,
			"intercloud_vpn_peer_transmit_bytes_total" + labels,
			"intercloud_vpn_peer_last_handshake_timestamp_seconds" + labels,
			fmt.Sprintf("intercloud_vpn_gso_fallbacks_total{interface=%q} 0", tp.ifA()),
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %q:\n%s", want, m)
			}
		}
		problems, err := testutil.GatherAndLint(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
			p := expfmt.NewTextParser(model.LegacyValidation)
			fams, err := p.TextToMetricFamilies(strings.NewReader(m))
			out := make([]*dto.MetricFamily, 0, len(fams))
			for _, f := range fams {
				out = append(out, f)
			}
			return out, err
		}))
		if err != nil || len(problems) > 0 {
			t.Errorf("promlint: %v %+v", err, problems)
		}
	})

	t.Run("wg show", func(t *testing.T) {
		// From the host namespace: the UAPI socket path is host-wide.
		out, err := exec.Command(wg, "show", tp.ifA()).CombinedOutput()
		if err != nil {
			t.Fatalf("wg show: %v\n%s", err, out)
		}
		for _, want := range []string{"interface: " + tp.ifA(), "peer: " + tp.site.Links[0].B.PublicKey,
			"endpoint: " + underB + ":51820", "latest handshake:", "allowed ips: 100.64.0.2/32, 10.2.0.0/16", "listening port: 51820"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("wg show lacks %q:\n%s", want, out)
			}
		}
		if k, _ := vpn.ReadKeyFile(tp.keyA); strings.Contains(string(out), k.String()) {
			t.Error("wg show printed the private key")
		}
	})

	t.Run("allowed IPs follow config without a new handshake", func(t *testing.T) {
		tp.b.Addr("lo", "10.3.0.1/32")
		tp.a.MustRun("ip", "route", "add", "10.3.0.0/16", "dev", tp.ifA(), "src", "10.1.0.1")
		if _, recv := ping(t, tp.a, "-c", "1", "-W", "1", "10.3.0.1"); recv != 0 {
			t.Fatal("10.3.0.1 answered before it was in b's cloud")
		}
		before := da.status().Interfaces[0].Peer.LastHandshake

		tp.site.Clouds[1].CIDRs = append(tp.site.Clouds[1].CIDRs, netip.MustParsePrefix("10.3.0.0/16"))
		var sent, recv int
		done := make(chan struct{})
		go func() {
			defer close(done)
			sent, recv = ping(t, tp.a, "-c", "100", "-i", "0.01", "-W", "1", "10.2.0.1")
		}()
		time.Sleep(300 * time.Millisecond)
		da.mustApply(tp.site)
		db.mustApply(tp.site)
		<-done
		if recv != sent {
			t.Errorf("ping across the change: %d of %d answered", recv, sent)
		}
		mustPing(t, tp.a, "10.3.0.1")
		p := da.status().Interfaces[0].Peer
		if !p.LastHandshake.Equal(before) {
			t.Errorf("handshake changed %v -> %v: the change tore the session down", before, p.LastHandshake)
		}
		if len(p.AllowedIPs) != 3 {
			t.Errorf("allowed IPs %v", p.AllowedIPs)
		}
	})

	// The two agents apply a rotation at about the same time, but either may
	// come first.
	for _, order := range []struct {
		name  string
		first *daemon
		gap   time.Duration
	}{{"together", nil, 0}, {"rotating side first", da, 300 * time.Millisecond}, {"peer first", db, 300 * time.Millisecond}} {
		t.Run("key rotation/"+order.name, func(t *testing.T) {
			before := db.status().Interfaces[0].Peer.LastHandshake
			var sent, recv int
			done := make(chan struct{})
			go func() {
				defer close(done)
				sent, recv = ping(t, tp.a, "-c", "200", "-i", "0.01", "-W", "1", "10.2.0.1")
			}()
			time.Sleep(300 * time.Millisecond)
			tp.site.Links[0].A.PublicKey = newKey(t, tp.keyA)
			var wgr sync.WaitGroup
			for _, d := range []*daemon{da, db} {
				wgr.Add(1)
				go func() {
					defer wgr.Done()
					if order.first != nil && d != order.first {
						time.Sleep(order.gap)
					}
					if err := d.apply(tp.site); err != nil {
						t.Errorf("apply: %v", err)
					}
				}()
			}
			wgr.Wait()
			<-done
			t.Logf("key rotation (%s): %d of %d pings answered (10 ms apart)", order.name, recv, sent)
			if lost := sent - recv; lost > 5 {
				t.Errorf("rotation lost %d packets, want at most a few", lost)
			}
			if got := da.status().Interfaces[0].PublicKey; got != tp.site.Links[0].A.PublicKey {
				t.Errorf("a's public key %s, want the new %s", got, tp.site.Links[0].A.PublicKey)
			}
			p := db.status().Interfaces[0].Peer
			if p.PublicKey != tp.site.Links[0].A.PublicKey || !p.LastHandshake.After(before) {
				t.Errorf("b's peer after rotation: %+v", p)
			}
			mustPing(t, tp.b, "-I", "10.2.0.1", "10.1.0.1")
		})
	}

	t.Run("endpoint and listen port change in place", func(t *testing.T) {
		before := da.status().Interfaces[0].Peer.LastHandshake
		tp.site.Links[0].B.Endpoint = underB + ":51830"
		db.mustApply(tp.site) // b now listens on 51830
		da.mustApply(tp.site) // a now sends there
		if got := db.status().Interfaces[0].ListenPort; got != 51830 {
			t.Fatalf("b listens on %d", got)
		}
		mustPing(t, tp.a, "100.64.0.2")
		p := da.status().Interfaces[0].Peer
		if p.Endpoint != underB+":51830" {
			t.Fatalf("a's peer endpoint %s", p.Endpoint)
		}
		if !p.LastHandshake.Equal(before) {
			t.Errorf("the change cost a handshake: %v -> %v", before, p.LastHandshake)
		}
	})

	t.Run("dead underlay", func(t *testing.T) {
		// The tunnel interface stays UP; only the data plane shows the cut.
		tp.inet.Down("a0")
		cut := time.Now()
		p := da.waitPeer(false, 10*time.Second)
		t.Logf("peer down after %s: %s", time.Since(cut).Round(100*time.Millisecond), p.Reason)
		if !strings.Contains(p.Reason, "nothing received") {
			t.Errorf("reason %q", p.Reason)
		}
		db.waitPeer(false, 10*time.Second)
		ev := da.events()
		if last := ev[len(ev)-1]; last.Up || last.Link != "vpn" || last.Address != netip.MustParseAddr("100.64.0.2") {
			t.Errorf("last event %+v, want the vpn peer going down", last)
		}
		tp.inet.Up("a0")
		da.waitPeer(true, 10*time.Second)
		db.waitPeer(true, 10*time.Second)
		mustPing(t, tp.a, "100.64.0.2")
		if ev := da.events(); !ev[len(ev)-1].Up {
			t.Errorf("no up event after the path came back: %+v", ev[len(ev)-1])
		}
	})

	t.Run("removed link closes the tunnel", func(t *testing.T) {
		site := *tp.site
		site.Links = nil
		da.mustApply(&site)
		if s := da.status(); len(s.Interfaces) != 0 {
			t.Fatalf("interfaces left: %+v", s.Interfaces)
		}
		if _, err := tp.a.Run(context.Background(), "ip", "link", "show", tp.ifA()); err == nil {
			t.Fatal("interface still exists")
		}
		if _, err := os.Stat("/var/run/wireguard/" + tp.ifA() + ".sock"); !os.IsNotExist(err) {
			t.Fatalf("UAPI socket left behind: %v", err)
		}
		if ev := da.events(); ev[len(ev)-1].Up || ev[len(ev)-1].Reason != "tunnel removed" {
			t.Fatalf("last event %+v", ev[len(ev)-1])
		}
	})
}

// A bad config or an unreadable key is refused before anything changes.
func TestApplyRefusesBadInput(t *testing.T) {
	tp := newTopo(t, 1500)
	da := startDaemon(t, tp.a, tp.nodeA)
	da.mustApply(tp.site)

	bad := *tp.site
	bad.Links = append([]config.Link(nil), tp.site.Links...)
	bad.Links[0].B.PublicKey = "garbage"
	if err := da.apply(&bad); err == nil || !strings.Contains(err.Error(), "publicKey") {
		t.Fatalf("bad peer key: %v", err)
	}
	os.WriteFile(tp.keyA, []byte("not a key"), 0o600)
	if err := da.apply(tp.site); err == nil || strings.Contains(err.Error(), "not a key") {
		t.Fatalf("bad key file: %v (must fail without echoing the file)", err)
	}
	newKey(t, tp.keyA)
	s := da.status()
	if len(s.Interfaces) != 1 || s.Interfaces[0].MTU != 1420 {
		t.Fatalf("tunnel changed by a refused apply: %+v", s.Interfaces)
	}
	// A second daemon claiming the same interface name on this host fails
	// cleanly: the UAPI socket is taken.
	other := startDaemon(t, tp.b, tp.nodeA)
	if err := other.apply(tp.site); err == nil || !strings.Contains(err.Error(), "UAPI") {
		t.Fatalf("duplicate interface name: %v", err)
	}
	if _, err := os.Stat("/var/run/wireguard/" + tp.ifA() + ".sock"); err != nil {
		t.Fatalf("the failed claim removed the live socket: %v", err)
	}
}

// The underlay fails over: the path beyond a's first uplink dies (the link
// itself stays up on a's side, as when a router upstream fails) and a's
// route to b's endpoint is moved to a second uplink, as a health check or
// BGP would. a's packets must leave by the new uplink with its address
// (wireguard-go caches a source per peer), b must roam to that address, and
// the session must carry on without a new handshake.
func TestUnderlayFailover(t *testing.T) {
	testenv.NeedTool(t, "ping", "iputils-ping")
	tp := newTopo(t, 1500)
	tp.h.Veth(tp.a, "eth1", tp.inet, "a1")
	tp.a.Addr("eth1", "10.201.3.2/24")
	tp.inet.Addr("a1", "10.201.3.1/24")
	da, db := tp.up(t)
	mustPing(t, tp.a, "100.64.0.2")
	// Both ends initiate at start, so a second handshake can complete a
	// moment after the first (a CI run saw one 0.46 s later): take the
	// reference once the handshake time has stopped moving.
	before := da.status().Interfaces[0].Peer.LastHandshake
	for settle := time.Now().Add(10 * time.Second); time.Now().Before(settle); {
		time.Sleep(1500 * time.Millisecond)
		now := da.status().Interfaces[0].Peer.LastHandshake
		if now.Equal(before) {
			break
		}
		before = now
	}

	tp.inet.Down("a0") // the far side of a's first uplink dies
	tp.a.MustRun("ip", "route", "replace", "10.201.2.0/24", "via", "10.201.3.1", "dev", "eth1")
	cut := time.Now()
	for {
		if _, recv := ping(t, tp.a, "-c", "1", "-W", "1", "100.64.0.2"); recv == 1 {
			break
		}
		if time.Since(cut) > 10*time.Second {
			t.Fatalf("the tunnel did not survive the uplink failover:\n%+v\n%+v", da.status(), db.status())
		}
	}
	t.Logf("tunnel carries traffic over the backup uplink %s after the cut", time.Since(cut).Round(10*time.Millisecond))
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ep := db.status().Interfaces[0].Peer.Endpoint
		if ep == "10.201.3.2:51820" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's endpoint for a is %s, want a's backup address", ep)
		}
	}
	if p := da.status().Interfaces[0].Peer; !p.LastHandshake.Equal(before) {
		t.Errorf("the failover cost a handshake (%v -> %v)", before, p.LastHandshake)
	}
}
