// Package vpn_test measures TCP throughput (iperf3) through our WireGuard
// tunnel and, in the same run on the same namespaces, through the
// standalone wireguard-go built from the very module version we link,
// configured with `wg`; raw veth throughput is the reference. The figure
// that matters is the ratio ours/upstream (target >= 0.95).
package vpn_test

import (
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
	"github.com/intercloud/intercloud/vpn"
)

func TestMain(m *testing.M) { netns.Main(m) }

func init() { netns.RegisterHelper("ours", ours) }

// ours runs the node's tunnels from a site file (JSON) until SIGTERM, as
// the gateway role does, in a process of its own inside a namespace.
func ours(args []string) int {
	fs := flag.NewFlagSet("ours", flag.ContinueOnError)
	node := fs.String("node", "", "node")
	file := fs.String("site", "", "site JSON")
	if fs.Parse(args) != nil {
		return 2
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		return 1
	}
	var site config.Site
	if err := json.Unmarshal(b, &site); err != nil {
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	m, err := vpn.New(vpn.Options{Node: *node, Logger: log})
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	if err := m.Apply(context.Background(), &site); err != nil {
		log.Error("apply", "err", err)
		return 1
	}
	os.WriteFile(*file+"."+*node+".up", nil, 0o600)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m.Close(ctx) != nil {
		return 1
	}
	return 0
}

const (
	underA = "10.211.0.1"
	underB = "10.211.0.2"
	tunA   = "100.64.9.1"
	tunB   = "100.64.9.2"
	mtu    = 1420 // both implementations get the same tunnel MTU
)

type bench struct {
	b        *testing.B
	h        *netns.Harness
	a, nsb   *netns.Namespace
	dir      string
	wg       string
	wggo     string
	privA    string
	privB    string
	pubA     string
	pubB     string
	nodeA    string
	nodeB    string
	siteFile string
}

func setup(b *testing.B) *bench {
	testenv.NeedTool(b, "iperf3", "iperf3")
	wg := testenv.NeedTool(b, "wg", "wireguard-tools")
	testenv.NeedFile(b, "/dev/net/tun", "modprobe tun")
	h := netns.New(b)
	x := &bench{b: b, h: h, a: h.Namespace("a"), nsb: h.Namespace("b"), dir: b.TempDir(), wg: wg,
		nodeA: h.Prefix() + "-a", nodeB: h.Prefix() + "-b"}
	h.Veth(x.a, "eth0", x.nsb, "eth0")
	x.a.Addr("eth0", underA+"/24")
	x.nsb.Addr("eth0", underB+"/24")

	// The upstream yardstick: wireguard-go's own main, from the module
	// version in go.mod (Debian's package is years older).
	x.wggo = filepath.Join(x.dir, "wireguard-go")
	cmd := exec.Command("go", "build", "-o", x.wggo, "golang.zx2c4.com/wireguard")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build upstream wireguard-go: %v\n%s", err, out)
	}
	x.privA, x.privB = filepath.Join(x.dir, "a.key"), filepath.Join(x.dir, "b.key")
	x.pubA, x.pubB = key(b, x.privA), key(b, x.privB)
	site := config.Site{
		Clouds: []config.Cloud{{Name: "x"}, {Name: "y"}},
		Nodes: []config.Node{
			{Name: x.nodeA, Cloud: "x", Gateway: &config.Gateway{Wireguard: &config.Wireguard{PrivateKeyFile: x.privA}}},
			{Name: x.nodeB, Cloud: "y", Gateway: &config.Gateway{Wireguard: &config.Wireguard{PrivateKeyFile: x.privB}}},
		},
		Links: []config.Link{{Name: "vpn", Kind: config.LinkVPN, MTU: mtu, PersistentKeepalive: config.DefaultPersistentKeepalive,
			A: config.LinkEnd{Node: x.nodeA, Endpoint: underA + ":51820", Tunnel: netip.MustParsePrefix(tunA + "/30"), PublicKey: x.pubA},
			B: config.LinkEnd{Node: x.nodeB, Endpoint: underB + ":51820", Tunnel: netip.MustParsePrefix(tunB + "/30"), PublicKey: x.pubB},
		}},
	}
	js, _ := json.Marshal(site)
	x.siteFile = filepath.Join(x.dir, "site.json")
	if err := os.WriteFile(x.siteFile, js, 0o600); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, n := range []string{vpn.IfName(x.nodeA), vpn.IfName(x.nodeB), x.upName("a"), x.upName("b")} {
			os.Remove("/var/run/wireguard/" + n + ".sock")
		}
	})
	return x
}

func key(b *testing.B, path string) string {
	k, err := vpn.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	if err := vpn.WriteKeyFile(path, k, true); err != nil {
		b.Fatal(err)
	}
	p, _ := k.PublicKey()
	return p.String()
}

func (x *bench) upName(side string) string { return x.h.Name("wg" + side) }

func waitFile(b *testing.B, path string, p *netns.Proc) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-p.Done():
			b.Fatalf("process exited: %v\n%s", p.Err(), p.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not appear:\n%s", path, p.Output())
		}
	}
}

// startOurs runs our vpn on both sides and returns a stop function.
func (x *bench) startOurs() func() {
	pa := x.a.StartHelper("ours", "-node", x.nodeA, "-site", x.siteFile)
	pb := x.nsb.StartHelper("ours", "-node", x.nodeB, "-site", x.siteFile)
	waitFile(x.b, x.siteFile+"."+x.nodeA+".up", pa)
	waitFile(x.b, x.siteFile+"."+x.nodeB+".up", pb)
	return func() {
		pa.Stop()
		pb.Stop()
		os.Remove(x.siteFile + "." + x.nodeA + ".up")
		os.Remove(x.siteFile + "." + x.nodeB + ".up")
	}
}

// startUpstream runs the upstream wireguard-go on both sides, configured
// with wg and ip exactly as an operator would.
func (x *bench) startUpstream() func() {
	side := func(ns *netns.Namespace, name, priv, peerPub, peerEP, addr, peerTun string) *netns.Proc {
		p := ns.StartEnv([]string{"WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error"}, x.wggo, "-f", name)
		waitFile(x.b, "/var/run/wireguard/"+name+".sock", p)
		if out, err := exec.Command(x.wg, "set", name, "private-key", priv, "listen-port", "51820",
			"peer", peerPub, "endpoint", peerEP, "allowed-ips", peerTun+"/32", "persistent-keepalive", "5").CombinedOutput(); err != nil {
			x.b.Fatalf("wg set: %v\n%s", err, out)
		}
		ns.MustRun("ip", "address", "add", addr+"/30", "dev", name)
		ns.MustRun("ip", "link", "set", "dev", name, "mtu", strconv.Itoa(mtu), "up")
		return p
	}
	pa := side(x.a, x.upName("a"), x.privA, x.pubB, underB+":51820", tunA, tunB)
	pb := side(x.nsb, x.upName("b"), x.privB, x.pubA, underA+":51820", tunB, tunA)
	return func() { pa.Stop(); pb.Stop() }
}

// iperf measures TCP throughput from a to addr in b, in bits per second.
func (x *bench) iperf(addr string, secs int) float64 {
	srv := x.nsb.Start("iperf3", "-s", "-1", "-B", addr)
	defer srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+20)*time.Second)
	defer cancel()
	var res struct {
		Error string `json:"error"`
		End   struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	var out []byte
	for range 50 { // until the server listens
		var err error
		out, err = x.a.Run(ctx, "iperf3", "-c", addr, "-t", strconv.Itoa(secs), "-J")
		res.Error = ""
		if jerr := json.Unmarshal(out, &res); jerr != nil && err == nil {
			x.b.Fatalf("iperf3 output: %v\n%s", jerr, out)
		}
		if err == nil && res.Error == "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if res.End.SumReceived.BitsPerSecond == 0 {
		x.b.Fatalf("iperf3 to %s measured nothing:\n%s\nserver: %s", addr, out, srv.Output())
	}
	return res.End.SumReceived.BitsPerSecond
}

// BenchmarkWireGuardThroughput runs iperf3 through each implementation in
// rounds, alternating which goes first, and reports the medians: the
// machine is shared, so a pair measured back to back says more than any
// single figure.
func BenchmarkWireGuardThroughput(b *testing.B) {
	x := setup(b)
	const secs, rounds = 2, 5
	var raws, ours, ups, ratios []float64
	b.ResetTimer()
	for range b.N {
		raws = append(raws, x.iperf(underB, secs))
		for r := range rounds {
			var o, u float64
			measureUp := func() {
				stop := x.startUpstream()
				u = x.iperf(tunB, secs)
				stop()
			}
			measureOurs := func() {
				stop := x.startOurs()
				o = x.iperf(tunB, secs)
				stop()
			}
			if r%2 == 0 {
				measureUp()
				measureOurs()
			} else {
				measureOurs()
				measureUp()
			}
			ours, ups, ratios = append(ours, o), append(ups, u), append(ratios, o/u)
			b.Logf("round %d: ours %.2f Gbit/s, upstream %.2f Gbit/s, ratio %.2f", r, o/1e9, u/1e9, o/u)
		}
	}
	b.StopTimer()
	b.ReportMetric(median(ours)/1e9, "ours-Gbit/s")
	b.ReportMetric(median(ups)/1e9, "upstream-Gbit/s")
	b.ReportMetric(median(raws)/1e9, "veth-Gbit/s")
	b.ReportMetric(median(ratios), "ours/upstream")
	b.ReportMetric(0, "ns/op")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
