// Package bgp benchmarks the gateway's routing half side by side with BIRD
// 2 in the same run: 100k prefixes announced to a BIRD receiver
// (convergence), 100k learned routes installed in a namespace's kernel, and
// the bare netlink install of 100k routes against `ip -batch`.
//
//	make bench   # or: go test -run '^$' -bench . -benchtime 1x ./bench/bgp/
package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/bgp/bgptest"
	"github.com/intercloud/intercloud/route"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
)

func TestMain(m *testing.M) {
	bgptest.Register()
	netns.Main(m)
}

// N is the table size of every benchmark.
const N = 100_000

// allowed covers every benchmark prefix.
var allowed = netip.MustParsePrefix("20.0.0.0/7")

// prefixes are N consecutive /24s from 20.0.0.0.
func prefixes() []netip.Prefix {
	out := make([]netip.Prefix, N)
	for i := range out {
		v := uint32(20<<24) + uint32(i)<<8
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
	}
	return out
}

func staticConf(ps []netip.Prefix) string {
	var b strings.Builder
	b.WriteString("protocol static bench { ipv4;\n")
	for _, p := range ps {
		fmt.Fprintf(&b, "\troute %s blackhole;\n", p)
	}
	b.WriteString("}\n")
	return b.String()
}

// birdProc is a BIRD 2 started for one measurement.
type birdProc struct {
	ns   *netns.Namespace
	sock string
	proc *netns.Proc
}

func startBIRD(b *testing.B, ns *netns.Namespace, name, conf string) *birdProc {
	b.Helper()
	dir := b.TempDir()
	file := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	bp := &birdProc{ns: ns, sock: filepath.Join(dir, name+".ctl")}
	bp.proc = ns.Start("bird", "-f", "-c", file, "-s", bp.sock)
	return bp
}

// count is BIRD's number of routes in master4 (-1 while it is not up).
func (bp *birdProc) count(ctx context.Context) int {
	out, err := bp.ns.Run(ctx, "birdc", "-s", bp.sock, "show", "route", "count")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "of" {
			n, _ := strconv.Atoi(f[0])
			return n
		}
	}
	return -1
}

func waitFor(b *testing.B, what string, limit time.Duration, poll time.Duration, f func() bool) {
	b.Helper()
	deadline := time.Now().Add(limit)
	for !f() {
		if time.Now().After(deadline) {
			b.Fatalf("%s: not reached within %v", what, limit)
		}
		time.Sleep(poll)
	}
}

// kernelCount counts the routes of a protocol in the namespace's main table.
func kernelCount(ns *netns.Namespace, proto int) int {
	n := 0
	_ = ns.Handle().RouteListFilteredIter(netlink.FAMILY_V4, &netlink.Route{Protocol: netlink.RouteProtocol(proto)},
		netlink.RT_FILTER_PROTOCOL, func(netlink.Route) bool { n++; return true })
	return n
}

func need(b *testing.B) {
	testenv.NeedTool(b, "bird", "bird2")
	testenv.NeedTool(b, "birdc", "bird2")
	testenv.NeedTool(b, "ip", "iproute2")
}

// BenchmarkConvergence100k: a sender announces 100k prefixes to a BIRD
// receiver; the time runs from the sender's start until the receiver holds
// all of them. Senders, in the same run: our gateway (embedded GoBGP v4),
// BIRD 2, and a standalone gobgpd of the same GoBGP version loaded with
// `gobgp mrt inject` (skipped if it cannot be built).
func BenchmarkConvergence100k(b *testing.B) {
	need(b)
	h := netns.New(b)
	send, recv := h.Namespace("send"), h.Namespace("recv")
	h.Veth(send, "eth0", recv, "eth0")
	send.Addr("eth0", "10.254.0.2/24")
	recv.Addr("eth0", "10.254.0.1/24")
	ctx := context.Background()
	receiver := startBIRD(b, recv, "recv", `
router id 10.254.0.1;
protocol device {}
protocol bgp sender {
	local 10.254.0.1 as 65000; neighbor 10.254.0.2 as 65001;
	passive on;
	ipv4 { import all; export none; };
}
`)
	waitFor(b, "receiver up", 10*time.Second, 20*time.Millisecond, func() bool { return receiver.count(ctx) == 0 })
	ps := prefixes()
	birdSender := "router id 10.254.0.2;\nprotocol device {}\n" + staticConf(ps) + `
protocol bgp recv {
	local 10.254.0.2 as 65001; neighbor 10.254.0.1 as 65000;
	connect delay time 0;
	ipv4 { import none; export all; };
}
`
	gwCfg := bgptest.Config{BGP: bgp.Config{
		ASN: 65001, RouterID: netip.MustParseAddr("10.254.0.2"), ListenPort: -1, Announce: ps,
		Neighbors: []bgp.Neighbor{{Name: "recv", Kind: bgp.KindDedicated, ASN: 65000, Address: netip.MustParseAddr("10.254.0.1")}},
	}}
	measure := func(start func() func()) time.Duration {
		t0 := time.Now()
		stop := start()
		waitFor(b, "receiver holds every prefix", 120*time.Second, 5*time.Millisecond, func() bool { return receiver.count(ctx) == N })
		d := time.Since(t0)
		stop()
		waitFor(b, "receiver empty", 60*time.Second, 50*time.Millisecond, func() bool { return receiver.count(ctx) == 0 })
		return d
	}
	gobgpd, cli, haveGobgpd := gobgpBinaries(b)
	mrtFile := filepath.Join(b.TempDir(), "table.mrt")
	if haveGobgpd {
		writeMRT(b, mrtFile, ps, netip.MustParseAddr("10.254.0.2"), 65001)
	}
	var ours, theirs, standalone time.Duration
	b.ResetTimer()
	for range b.N {
		ours += measure(func() func() {
			g := bgptest.Start(b, send, gwCfg)
			return g.Proc.Stop
		})
		theirs += measure(func() func() {
			return startBIRD(b, send, "send", birdSender).proc.Stop
		})
		if haveGobgpd {
			standalone += measure(func() func() {
				return startGobgpd(b, send, gobgpd, cli, mrtFile,
					netip.MustParseAddr("10.254.0.2"), netip.MustParseAddr("10.254.0.1"), 65001, 65000)
			})
		}
	}
	b.StopTimer()
	report(b, ours, theirs)
	if haveGobgpd {
		b.ReportMetric(standalone.Seconds()/float64(b.N), "gobgpd-s/op")
		b.ReportMetric(ours.Seconds()/standalone.Seconds(), "ours/gobgpd")
	}
}

// BenchmarkKernelInstall100k: a BIRD sender announces 100k prefixes; the
// time runs from the receiver's start until its namespace's kernel holds
// all of them. Receiver: our gateway (bgp + route) vs BIRD 2 with its
// kernel protocol.
func BenchmarkKernelInstall100k(b *testing.B) {
	need(b)
	h := netns.New(b)
	src, dst := h.Namespace("src"), h.Namespace("dst")
	h.Veth(src, "eth0", dst, "eth0")
	src.Addr("eth0", "10.254.1.1/24")
	dst.Addr("eth0", "10.254.1.2/24")
	ctx := context.Background()
	sender := startBIRD(b, src, "src", "router id 10.254.1.1;\nprotocol device {}\n"+staticConf(prefixes())+`
protocol bgp downstream {
	local 10.254.1.1 as 65000; neighbor 10.254.1.2 as 65001;
	passive on;
	ipv4 { import none; export all; };
}
`)
	waitFor(b, "sender up", 60*time.Second, 20*time.Millisecond, func() bool { return sender.count(ctx) == N })
	const birdProto = 12 // "bird" in /etc/iproute2/rt_protos
	gwCfg := bgptest.Config{BGP: bgp.Config{
		ASN: 65001, RouterID: netip.MustParseAddr("10.254.1.2"), ListenPort: -1,
		Neighbors: []bgp.Neighbor{{Name: "src", Kind: bgp.KindDedicated, ASN: 65000, Address: netip.MustParseAddr("10.254.1.1"),
			Allowed: []netip.Prefix{allowed}}},
	}}
	birdRecv := `
router id 10.254.1.2;
protocol device {}
protocol kernel { ipv4 { export all; }; }
protocol bgp upstream {
	local 10.254.1.2 as 65001; neighbor 10.254.1.1 as 65000;
	connect delay time 0;
	ipv4 { import all; export none; };
}
`
	measure := func(proto int, start func() func()) time.Duration {
		t0 := time.Now()
		stop := start()
		waitFor(b, "kernel holds every route", 120*time.Second, 10*time.Millisecond, func() bool { return kernelCount(dst, proto) == N })
		d := time.Since(t0)
		stop()
		// A daemon killed before it removed 100k routes leaves some.
		dst.MustRun("ip", "route", "flush", "proto", strconv.Itoa(proto))
		waitFor(b, "kernel empty", 60*time.Second, 50*time.Millisecond, func() bool { return kernelCount(dst, proto) == 0 })
		return d
	}
	var ours, theirs time.Duration
	b.ResetTimer()
	for range b.N {
		ours += measure(route.DefaultProtocol, func() func() {
			return bgptest.Start(b, dst, gwCfg).Proc.Stop
		})
		theirs += measure(birdProto, func() func() {
			return startBIRD(b, dst, "dst", birdRecv).proc.Stop
		})
	}
	b.StopTimer()
	report(b, ours, theirs)
}

// BenchmarkRouteSync100k: route.Table.Sync of 100k routes into an empty
// table (one netlink handle, no BGP) vs `ip -batch` adding the same routes.
func BenchmarkRouteSync100k(b *testing.B) {
	testenv.NeedTool(b, "ip", "iproute2")
	h := netns.New(b)
	ns := h.Namespace("rt")
	h.Veth(ns, "eth0", h.Namespace("peer"), "eth0")
	ns.Addr("eth0", "10.254.2.1/24")
	ps := prefixes()
	rs := make([]route.Route, len(ps))
	var batch strings.Builder
	gw := netip.MustParseAddr("10.254.2.2")
	for i, p := range ps {
		rs[i] = route.Route{Dst: p, Gw: gw}
		fmt.Fprintf(&batch, "route add %s via %s proto 199\n", p, gw)
	}
	file := filepath.Join(b.TempDir(), "routes.batch")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tbl, err := route.New(route.Config{}, route.Options{NetnsPath: ns.Path()})
	if err != nil {
		b.Fatal(err)
	}
	defer tbl.Close(ctx)
	var ours, theirs time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if err := tbl.Sync(ctx, rs); err != nil {
			b.Fatal(err)
		}
		ours += time.Since(t0)
		if n := kernelCount(ns, route.DefaultProtocol); n != N {
			b.Fatalf("%d routes installed, want %d", n, N)
		}
		b.StopTimer()
		if err := tbl.Sync(ctx, nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		t0 = time.Now()
		if out, err := ns.Run(ctx, "ip", "-batch", file); err != nil {
			b.Fatalf("ip -batch: %v\n%s", err, out)
		}
		theirs += time.Since(t0)
		b.StopTimer()
		ns.MustRun("ip", "route", "flush", "proto", "199")
		b.StartTimer()
	}
	b.StopTimer()
	report(b, ours, theirs)
}

// report prints both sides of the same run and their ratio (ours/theirs:
// below 1 means we are faster).
func report(b *testing.B, ours, theirs time.Duration) {
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "ours-s/op")
	b.ReportMetric(theirs.Seconds()/n, "peer-s/op")
	if theirs > 0 {
		b.ReportMetric(ours.Seconds()/theirs.Seconds(), "ours/peer")
	}
	b.ReportMetric(0, "ns/op")
}
