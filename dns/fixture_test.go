package dns

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/dns/dnstest"
	"github.com/intercloud/intercloud/role"
)

const zone = "cdn.example.test."

func loc(cc string, lat, lon float64) config.Location {
	return config.Location{Country: cc, Lat: lat, Lon: lon}
}

func intp(i int) *int { return &i }

var (
	seoul    = loc("KR", 37.56, 126.97)
	tokyo    = loc("JP", 35.68, 139.69)
	virginia = loc("US", 38.9, -77.0)
	frankfut = loc("DE", 50.11, 8.68)
)

func edgeNode(name, cloud, addr string, l config.Location) config.Node {
	return config.Node{Name: name, Cloud: cloud, Roles: []config.Role{config.RoleEdge}, Address: addr, Location: l}
}

// testGeoIP writes the tiny City database every test shares.
func testGeoIP(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "city.mmdb")
	err := dnstest.WriteMMDB(p, []dnstest.Entry{
		{CIDR: "1.0.0.0/24", Country: "JP", Continent: "AS", Lat: 35.68, Lon: 139.69},
		{CIDR: "2.0.0.0/16", Country: "FR", Continent: "EU", NoCoords: true},
		{CIDR: "3.0.0.0/8", Country: "US", Continent: "NA", Lat: 37.75, Lon: -97.82},
		{CIDR: "2a00::/16", Country: "DE", Continent: "EU", Lat: 51, Lon: 9},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testSnapshot is the site of the shared cases: four clouds, one drained
// edge, one IPv6 edge, in-zone and out-of-zone aliases, a pinned and a
// disabled distribution. Defaults are filled as config rendering fills
// them, so the server sees what it would in production.
func testSnapshot(geoip string) *config.Snapshot {
	fra2 := edgeNode("frankfurt-edge-2", "frankfurt", "127.0.4.2", frankfut)
	fra2.Weight = intp(0)
	s := &config.Snapshot{
		Revision: 42,
		Site: config.Site{
			Name: "test",
			DNS: config.DNS{
				Zone:        zone,
				TTL:         config.Duration(30e9),
				NegativeTTL: config.Duration(5e9),
				GeoIP:       geoip,
				Networks: []config.Network{
					{CIDR: netip.MustParsePrefix("127.0.0.0/8"), Location: seoul},
					{CIDR: netip.MustParsePrefix("10.2.0.0/16"), Location: tokyo},
					{CIDR: netip.MustParsePrefix("10.2.5.0/24"), Location: config.Location{Country: "US"}},
					{CIDR: netip.MustParsePrefix("192.168.7.0/24"), Location: config.Location{Continent: "EU"}},
				},
			},
			Clouds: []config.Cloud{{Name: "seoul"}, {Name: "tokyo"}, {Name: "virginia"}, {Name: "frankfurt"}},
			Nodes: []config.Node{
				edgeNode("seoul-edge-1", "seoul", "127.0.1.1", seoul),
				edgeNode("seoul-edge-2", "seoul", "127.0.1.2", seoul),
				edgeNode("seoul-edge-6", "seoul", "2001:db8:1::1", seoul),
				edgeNode("tokyo-edge-1", "tokyo", "127.0.2.1", tokyo),
				edgeNode("virginia-edge-1", "virginia", "127.0.3.1", virginia),
				edgeNode("frankfurt-edge-1", "frankfurt", "127.0.4.1", frankfut),
				fra2,
				{Name: "ns-a", Cloud: "seoul", Roles: []config.Role{config.RoleDNS}, Address: "127.0.0.53",
					Listen: config.Listen{DNS: "127.0.0.1:0"}},
			},
		},
		Distributions: []config.Distribution{
			{Name: "shop", Spec: config.Spec{Aliases: []string{"shop.example.test", "www.cdn.example.test", "a.b.cdn.example.test"}}},
			{Name: "tokyo-only", Spec: config.Spec{Edges: []string{"tokyo-edge-1"}}},
			{Name: "off", Spec: config.Spec{Disabled: true}},
		},
	}
	s.SetDefaults()
	return s
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startServer serves snap on 127.0.0.1 (a free port) until the test ends.
func startServer(t testing.TB, snap *config.Snapshot, mods ...func(*Options)) (*Server, string) {
	t.Helper()
	o := Options{Node: "ns-a", Addr: "127.0.0.1:0", Logger: quietLogger(), Registry: prometheus.NewRegistry()}
	for _, m := range mods {
		m(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := role.Apply(context.Background(), s, snap); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	u, _ := s.Addrs()
	return s, u.String()
}
