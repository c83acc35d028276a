package controlplane

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/bench/internal/dnspeer"
	"github.com/intercloud/intercloud/bench/internal/nodeproc"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/dns"
	"github.com/intercloud/intercloud/dns/dnstest"
	"github.com/intercloud/intercloud/edge"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/test/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// heap is the live heap after two collections.
func heap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkRoleMemory: the heap a role keeps for 10,000 distributions
// (the files of BenchmarkControlPlane, loaded and rendered) beyond what
// it keeps for none, per distribution, for the edge and the DNS server.
// The rendered snapshot itself is alive in both measurements (an agent
// keeps it as its running revision); its own size per distribution is
// reported apart (snapshot-B/dist), so a node's memory per distribution
// is about the sum of the three.
func BenchmarkRoleMemory(b *testing.B) {
	n := envInt("CPBENCH_DISTRIBUTIONS", 10000)
	dir := b.TempDir()
	node := nodeSpec{name: "n000", http: storetest.FreeAddr(b), dns: storetest.FreeAddr(b)}
	writeConfig(b, dir, siteYAML([]string{"http://127.0.0.1:2379"}, []nodeSpec{node}), n, "http://127.0.0.1:9")
	once(b, func() []metric {
		h0 := heap()
		full, err := load(dir)
		if err != nil {
			b.Fatal(err)
		}
		empty := *full
		empty.Distributions, empty.Outputs = nil, nil
		h1 := heap()
		perDist := func(x int64) float64 { return float64(x) / float64(n) }

		e, err := edge.New(edge.Options{Node: node.name, Logger: quiet, Registry: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		defer e.Close(context.Background())
		if err := role.Apply(context.Background(), e, &empty); err != nil {
			b.Fatal(err)
		}
		e0 := heap()
		if err := role.Apply(context.Background(), e, full); err != nil {
			b.Fatal(err)
		}
		e1 := heap()

		d, err := dns.New(dns.Options{Node: node.name, Logger: quiet, Registry: prometheus.NewRegistry()})
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close(context.Background())
		d.SetNodes(map[string]status.NodeStatus{node.name: {Name: node.name, Roles: []config.Role{config.RoleEdge, config.RoleDNS}, Healthy: true}})
		if err := role.Apply(context.Background(), d, &empty); err != nil {
			b.Fatal(err)
		}
		d0 := heap()
		if err := role.Apply(context.Background(), d, full); err != nil {
			b.Fatal(err)
		}
		d1 := heap()
		runtime.KeepAlive(full)
		b.Logf("%d distributions: rendered snapshot %.1f MiB, edge +%.1f MiB, DNS +%.1f MiB", n,
			float64(h1-h0)/(1<<20), float64(e1-e0)/(1<<20), float64(d1-d0)/(1<<20))
		return []metric{
			{perDist(e1 - e0), "edge-B/dist"},
			{perDist(d1 - d0), "dns-B/dist"},
			{perDist(h1 - h0), "snapshot-B/dist"},
		}
	})
}

// The DNS comparison follows bench/dns (read its README): our server in
// this process and gdnsd 3.8 in the foreground, the same zone from the
// same generated .mmdb, dnsperf on each in alternating rounds, ratios
// taken within a round and the median reported. Here the zone has 10,000
// names: the even distributions pinned to one edge (a static A record in
// gdnsd), the odd ones placed by geography (a DYNA geoip record in
// gdnsd); dnsperf cycles through the 5,000 names of a load.
const (
	dnsPasses  = 60000
	dnsRounds  = 7
	dnsClients = 4
)

func dnsSnapshot(mmdb string, n int) (*config.Snapshot, map[string]status.NodeStatus) {
	s := &config.Snapshot{Revision: 42, Site: config.Site{
		DNS:   config.DNS{Zone: zone, TTL: config.Duration(30 * time.Second), NegativeTTL: config.Duration(5 * time.Second), GeoIP: mmdb},
		Nodes: []config.Node{{Name: "ns", Roles: []config.Role{config.RoleDNS}, Address: "127.0.0.53"}},
	}}
	live := map[string]status.NodeStatus{}
	for _, c := range dnspeer.Clouds {
		for i, a := range c.Addrs {
			name := fmt.Sprintf("%s-%d", c.Name, i)
			s.Site.Nodes = append(s.Site.Nodes, config.Node{Name: name, Cloud: c.Name,
				Roles: []config.Role{config.RoleEdge}, Address: a, Location: config.Location{Lat: c.Lat, Lon: c.Lon}})
			live[name] = status.NodeStatus{Name: name, Roles: []config.Role{config.RoleEdge}, Healthy: true}
		}
	}
	for i := range n {
		d := config.Distribution{Name: distName(i)}
		if i%2 == 0 {
			d.Spec.Edges = []string{"seoul-0"}
		}
		s.Distributions = append(s.Distributions, d)
	}
	s.SetDefaults()
	return s, live
}

// gdnsdConfig is the 10,000-name zone for gdnsd: every other name a
// static record, the rest a geoip resource, as dnsSnapshot pins them.
func gdnsdConfig(dir, mmdb string, port, n int) error {
	var z strings.Builder
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&z, "%s A 127.0.1.1\n", distName(i))
		} else {
			fmt.Fprintf(&z, "%s DYNA geoip!edges\n", distName(i))
		}
	}
	return dnspeer.WriteGdnsdConfig(dir, mmdb, port, "edges", zone, z.String())
}

// BenchmarkDNSVsGdnsd10k: queries per second of our DNS server and of
// gdnsd, each serving the 10,000-name zone, in the same run.
func BenchmarkDNSVsGdnsd10k(b *testing.B) {
	testenv.NeedTool(b, "gdnsd", "gdnsd")
	testenv.NeedTool(b, "dnsperf", "dnsperf")
	n := envInt("CPBENCH_DISTRIBUTIONS", 10000)
	dir := b.TempDir()
	mmdb := filepath.Join(dir, "city.mmdb")
	if err := dnstest.WriteMMDB(mmdb, []dnstest.Entry{
		{CIDR: "127.0.0.0/8", Country: "KR", Continent: "AS", Lat: 37.56, Lon: 126.97},
		{CIDR: "1.0.0.0/24", Country: "JP", Continent: "AS", Lat: 35.68, Lon: 139.69},
	}); err != nil {
		b.Fatal(err)
	}
	// Our side as operators run it: an `intercloud node` with the dns role,
	// its edges registered live in the store as their agents would.
	snap, live := dnsSnapshot(mmdb, n)
	dnsAddr := nodeproc.FreeAddr(b)
	snap.Site.Nodes[0].Listen.DNS = dnsAddr
	var registered []status.NodeStatus
	for _, st := range live {
		registered = append(registered, st)
	}
	node := nodeproc.Start(b, snap, "ns", registered...)
	_, p, _ := net.SplitHostPort(dnsAddr)
	ourPort, _ := strconv.Atoi(p)
	dnspeer.WaitAnswer(b, ourPort, distName(0)+"."+zone, "127.0.1.1")
	gdir := filepath.Join(dir, "gdnsd")
	gport := dnspeer.FreePort(b)
	if err := gdnsdConfig(gdir, mmdb, gport, n); err != nil {
		b.Fatal(err)
	}
	g := dnspeer.StartGdnsd(b, gdir, gport, distName(0)+"."+zone)

	// Both must give the same answers before their speed means anything.
	for _, q := range []struct{ name, want string }{
		{distName(0), "127.0.1.1"}, {distName(n - 2), "127.0.1.1"},
		{distName(1), "127.0.1.1,127.0.1.2"}, {distName(n - 1), "127.0.1.1,127.0.1.2"},
	} {
		for _, port := range []int{ourPort, gport} {
			if got := dnspeer.Lookup(b, port, q.name+"."+zone, ""); got != q.want {
				b.Fatalf("port %d: %s = %s, want %s", port, q.name, got, q.want)
			}
		}
	}
	for _, load := range []struct {
		name string
		odd  int
	}{{"plain", 0}, {"geo", 1}} {
		b.Run(load.name, func(b *testing.B) {
			var q strings.Builder
			for i := load.odd; i < n; i += 2 {
				fmt.Fprintf(&q, "%s.%s A\n", distName(i), strings.TrimSuffix(zone, "."))
			}
			qf := filepath.Join(dir, load.name+".queries")
			if err := os.WriteFile(qf, []byte(q.String()), 0o644); err != nil {
				b.Fatal(err)
			}
			// -n counts passes through the file: as many as make dnsPasses queries.
			dl := dnspeer.Load{Passes: max(1, dnsPasses/max(strings.Count(q.String(), "\n"), 1)), Clients: dnsClients}
			once(b, func() []metric {
				var qpsOurs, qpsTheirs, ratio []float64
				var lost float64
				for round := range dnsRounds {
					var ours, theirs dnspeer.Result
					if round%2 == 0 {
						ours, theirs = dnspeer.Dnsperf(b, ourPort, qf, dl, node.Pid), dnspeer.Dnsperf(b, gport, qf, dl, g.Process.Pid)
					} else {
						theirs, ours = dnspeer.Dnsperf(b, gport, qf, dl, g.Process.Pid), dnspeer.Dnsperf(b, ourPort, qf, dl, node.Pid)
					}
					qpsOurs, qpsTheirs = append(qpsOurs, ours.QPS), append(qpsTheirs, theirs.QPS)
					ratio = append(ratio, ours.QPS/theirs.QPS)
					lost += ours.Lost + theirs.Lost
				}
				b.Logf("per-round qps ratios %.2f", ratio)
				return []metric{
					{pct(qpsOurs, 50), "qps"},
					{pct(qpsTheirs, 50), "gdnsd-qps"},
					{pct(ratio, 50), "qps-ratio"},
					{lost, "lost"},
				}
			})
		})
	}
}
