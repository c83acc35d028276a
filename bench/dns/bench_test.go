// Package dnsbench measures the GeoDNS server side by side with gdnsd, the
// fastest authoritative peer, serving an equivalent zone from the same
// generated .mmdb, both loaded by dnsperf in the same run.
package dnsbench

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bench/internal/dnspeer"
	"github.com/intercloud/intercloud/bench/internal/nodeproc"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/dns/dnstest"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/testenv"
)

const (
	zone    = "cdn.example.test."
	passes  = 60000 // queries per server per round (the query file has one line)
	rounds  = 7     // each round runs both servers back to back; ratios are per round, then the median
	clients = 4     // dnsperf sockets, so SO_REUSEPORT spreads the load
)

func writeMMDB(b *testing.B, dir string) string {
	p := filepath.Join(dir, "city.mmdb")
	err := dnstest.WriteMMDB(p, []dnstest.Entry{
		// dnsperf's source address: the geo-by-source queries land in Seoul
		{CIDR: "127.0.0.0/8", Country: "KR", Continent: "AS", Lat: 37.56, Lon: 126.97},
		// the ECS queries' subnet: Tokyo
		{CIDR: "1.0.0.0/24", Country: "JP", Continent: "AS", Lat: 35.68, Lon: 139.69},
		{CIDR: "3.0.0.0/8", Country: "US", Continent: "NA", Lat: 37.75, Lon: -97.82},
		{CIDR: "2.0.0.0/8", Country: "DE", Continent: "EU", Lat: 51, Lon: 9},
	})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func snapshot(mmdb string) *config.Snapshot {
	s := &config.Snapshot{Revision: 42, Site: config.Site{
		DNS:   config.DNS{Zone: zone, TTL: config.Duration(30 * time.Second), NegativeTTL: config.Duration(5 * time.Second), GeoIP: mmdb},
		Nodes: []config.Node{{Name: "ns", Roles: []config.Role{config.RoleDNS}, Address: "127.0.0.53"}},
	}}
	for _, c := range dnspeer.Clouds {
		for i, a := range c.Addrs {
			s.Site.Nodes = append(s.Site.Nodes, config.Node{Name: fmt.Sprintf("%s-%d", c.Name, i), Cloud: c.Name,
				Roles: []config.Role{config.RoleEdge}, Address: a, Location: config.Location{Lat: c.Lat, Lon: c.Lon}})
		}
	}
	s.Distributions = []config.Distribution{
		{Name: "shop"},
		{Name: "plain", Spec: config.Spec{Edges: []string{"seoul-0"}}},
	}
	s.SetDefaults()
	return s
}

// gdnsdConfig is the same zone for gdnsd: a static record for "plain",
// and a geoip resource in city auto mode (nearest datacenter by the
// record's coordinates) for "shop".
func gdnsdConfig(dir, mmdb string, port int) error {
	return dnspeer.WriteGdnsdConfig(dir, mmdb, port, "shop", zone, "plain A 127.0.1.1\nshop DYNA geoip!shop\n")
}

// TestMain removes the intercloud binary built for the package at the end.
func TestMain(m *testing.M) { nodeproc.Main(m) }

// BenchmarkVsGdnsd loads both servers with dnsperf, one after the other in
// alternating rounds, for plain A queries, geo queries placed by the
// source address, and geo queries placed by ECS. It reports both servers'
// QPS and QPS per server CPU-second, and our/gdnsd ratios of each.
func BenchmarkVsGdnsd(b *testing.B) {
	testenv.NeedTool(b, "gdnsd", "gdnsd")
	testenv.NeedTool(b, "dnsperf", "dnsperf")
	dir := b.TempDir()
	mmdb := writeMMDB(b, dir)

	// Our side as operators run it: an `intercloud node` with the dns role.
	// The edges it hands out are registered live in the store, as their
	// agents would register them, so that it answers with them.
	snap := snapshot(mmdb)
	dnsAddr := nodeproc.FreeAddr(b)
	snap.Site.Nodes[0].Listen.DNS = dnsAddr
	var live []status.NodeStatus
	for _, n := range snap.Site.Nodes[1:] {
		live = append(live, status.NodeStatus{Name: n.Name, Roles: n.Roles, Healthy: true, Revision: 1})
	}
	node := nodeproc.Start(b, snap, "ns", live...)
	_, p, _ := net.SplitHostPort(dnsAddr)
	ourPort, _ := strconv.Atoi(p)
	dnspeer.WaitAnswer(b, ourPort, "plain."+zone, "127.0.1.1")

	gdir := filepath.Join(dir, "gdnsd")
	gport := dnspeer.FreePort(b)
	if err := gdnsdConfig(gdir, mmdb, gport); err != nil {
		b.Fatal(err)
	}
	g := dnspeer.StartGdnsd(b, gdir, gport, "plain."+zone)

	// Both must give the same answers before their speed means anything.
	for _, q := range []struct {
		name, ecs string
		want      string
	}{{"plain", "", "127.0.1.1"}, {"shop", "", "127.0.1.1,127.0.1.2"}, {"shop", "1.0.0.0/24", "127.0.2.1"}} {
		for _, port := range []int{ourPort, gport} {
			if got := dnspeer.Lookup(b, port, q.name+"."+zone, q.ecs); got != q.want {
				b.Fatalf("port %d: %s ecs %q = %s, want %s", port, q.name, q.ecs, got, q.want)
			}
		}
	}

	for _, sc := range []struct {
		name  string
		qname string
		extra []string
	}{
		{"plain", "plain." + zone, nil},
		{"geo-source", "shop." + zone, nil},
		// ECS option 8: family 1, source /24, scope 0, 1.0.0
		{"geo-ecs", "shop." + zone, []string{"-E", "8:00011800010000"}},
	} {
		b.Run(sc.name, func(b *testing.B) {
			qf := filepath.Join(dir, sc.name+".queries")
			os.WriteFile(qf, []byte(strings.TrimSuffix(sc.qname, ".")+" A\n"), 0o644)
			var qpsOurs, qpsTheirs, cpuOurs, cpuTheirs, qpsRatio, cpuRatio []float64
			var lostOurs, lostTheirs float64
			perCPU := func(r dnspeer.Result) float64 { return (r.Sent - r.Lost) / r.CPU }
			for round := range rounds {
				// the machine is shared: run the pair back to back, in
				// alternating order, and compare within the pair
				var ours, theirs dnspeer.Result
				order := []int{0, 1}
				if round%2 == 1 {
					order = []int{1, 0}
				}
				for _, i := range order {
					if i == 0 {
						ours = dnspeer.Dnsperf(b, ourPort, qf, dnspeer.Load{Passes: passes, Clients: clients, Extra: sc.extra}, node.Pid)
					} else {
						theirs = dnspeer.Dnsperf(b, gport, qf, dnspeer.Load{Passes: passes, Clients: clients, Extra: sc.extra}, g.Process.Pid)
					}
				}
				qpsOurs, qpsTheirs = append(qpsOurs, ours.QPS), append(qpsTheirs, theirs.QPS)
				cpuOurs, cpuTheirs = append(cpuOurs, perCPU(ours)), append(cpuTheirs, perCPU(theirs))
				qpsRatio = append(qpsRatio, ours.QPS/theirs.QPS)
				cpuRatio = append(cpuRatio, perCPU(ours)/perCPU(theirs))
				lostOurs += ours.Lost
				lostTheirs += theirs.Lost
			}
			b.ReportMetric(median(qpsOurs), "qps")
			b.ReportMetric(median(qpsTheirs), "gdnsd-qps")
			b.ReportMetric(median(qpsRatio), "qps-ratio")
			b.ReportMetric(median(cpuOurs), "q/cpu-s")
			b.ReportMetric(median(cpuTheirs), "gdnsd-q/cpu-s")
			b.ReportMetric(median(cpuRatio), "cpu-ratio")
			b.ReportMetric(lostOurs, "lost")
			b.ReportMetric(lostTheirs, "gdnsd-lost")
			b.Logf("per-round qps ratios %.2f, cpu ratios %.2f", qpsRatio, cpuRatio)
		})
	}
}

func median(x []float64) float64 {
	y := append([]float64(nil), x...)
	for i := 1; i < len(y); i++ {
		for j := i; j > 0 && y[j] < y[j-1]; j-- {
			y[j], y[j-1] = y[j-1], y[j]
		}
	}
	return y[len(y)/2]
}
