package dns

import (
	"context"
	"github.com/intercloud/intercloud/dns/dnstest"
	mdns "github.com/miekg/dns"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/test/testenv"
)

func TestLocateScopes(t *testing.T) {
	g := &geoDB{}
	nets := []config.Network{
		{CIDR: netip.MustParsePrefix("10.0.0.0/8"), Location: config.Location{Country: "US"}},
		{CIDR: netip.MustParsePrefix("10.1.2.0/24"), Location: config.Location{Country: "JP"}},
		{CIDR: netip.MustParsePrefix("10.1.2.128/25"), Location: config.Location{Country: "KR"}},
		{CIDR: netip.MustParsePrefix("2001:db8::/32"), Location: config.Location{Country: "DE"}},
	}
	l, err := newLocator(g, nets)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr    string
		country string
		scope   uint8
	}{
		{"10.200.0.1", "US", 9},  // 10.128/9 holds nothing more specific
		{"10.1.0.1", "US", 23},   // 10.1.0/23 stops short of 10.1.2/24
		{"10.1.2.1", "JP", 25},   // the lower half of the /24
		{"10.1.2.200", "KR", 25}, // the /25 inside it
		{"11.0.0.1", "", 8},      // a gap: 11/8 is all unknown
		{"0.0.0.1", "", 5},       // 0/5 is below 10/8
		{"2001:db8:1::1", "DE", 32},
		{"2001:db9::1", "", 48},       // 2001:db9::/48 … is a gap up to the next table boundary
		{"::ffff:10.1.2.1", "JP", 25}, // v4-mapped is IPv4
	} {
		pl, configured, scope := l.locate(netip.MustParseAddr(c.addr))
		got := ""
		if pl >= 0 {
			got = l.places[pl].country
		}
		if got != c.country || (c.country != "" && !configured) {
			t.Errorf("%s: country %q configured %v, want %q", c.addr, got, configured, c.country)
		}
		if c.addr != "2001:db9::1" && scope != c.scope {
			t.Errorf("%s: scope %d, want %d", c.addr, scope, c.scope)
		}
	}
}

func TestFitBlock(t *testing.T) {
	for _, c := range []struct {
		k, first, last uint64
		want           int
	}{
		{5, 0, 7, 3},
		{5, 4, 7, 2},
		{5, 5, 5, 0},
		{5, 0, 1<<32 - 1, 32},
		{8, 1, 15, 3},
	} {
		if got := fitBlock(u128{0, c.k}, u128{0, c.first}, u128{0, c.last}, 32); got != c.want {
			t.Errorf("fitBlock(%d in [%d,%d]) = %d, want %d", c.k, c.first, c.last, got, c.want)
		}
	}
}

func TestTorGeoIPFile(t *testing.T) {
	dir := t.TempDir()
	v4 := filepath.Join(dir, "geoip")
	v6 := filepath.Join(dir, "geoip6")
	// 1.0.0.0-1.0.0.255 AU, 1.0.1.0-1.0.3.255 CN (ints as tor writes them)
	os.WriteFile(v4, []byte("# comment\n16777216,16777471,AU\n16777472,16778239,CN\n16778240,16778495,??\n"), 0o644)
	os.WriteFile(v6, []byte("2001:2::,2001:2:0:ffff:ffff:ffff:ffff:ffff,JP\n2a00:1400::,2a00:1400:ffff:ffff:ffff:ffff:ffff:ffff,NO\n"), 0o644)
	g, err := loadGeoDB(v4 + "," + v6)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := newLocator(g, nil)
	for _, c := range []struct {
		addr, cc, cont string
		scope          uint8
	}{
		{"1.0.0.7", "AU", "OC", 24},
		{"1.0.2.1", "CN", "AS", 23}, // 1.0.2.0/23 inside 1.0.1.0-1.0.3.255
		{"1.0.4.1", "", "", 22},     // "??" is unknown: 1.0.4.0/22 up to the end of the space
		{"2001:2::1", "JP", "AS", 48},
		{"2a00:1400:1::1", "NO", "EU", 32},
	} {
		pl, _, scope := l.locate(netip.MustParseAddr(c.addr))
		var cc, cont string
		if pl >= 0 {
			cc, cont = l.places[pl].country, l.places[pl].continent
			if !l.places[pl].known {
				t.Errorf("%s: %s has no coordinates", c.addr, cc)
			}
		}
		if cc != c.cc || cont != c.cont || scope != c.scope {
			t.Errorf("%s: %s/%s /%d, want %s/%s /%d", c.addr, cc, cont, scope, c.cc, c.cont, c.scope)
		}
	}
	for _, bad := range []string{"1,2\n", "x,y,US\n", "5,1,US\n", "2001::,zz,US\n"} {
		p := filepath.Join(dir, "bad")
		os.WriteFile(p, []byte(bad), 0o644)
		if _, err := loadGeoDB(p); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// TestRealTorGeoIP loads Debian's tor-geoipdb, the database a user gets
// out of the box, and places a few well-known resolvers.
func TestRealTorGeoIP(t *testing.T) {
	testenv.NeedFile(t, "/usr/share/tor/geoip", "apt-get install -y --no-install-recommends tor-geoipdb")
	testenv.NeedFile(t, "/usr/share/tor/geoip6", "apt-get install -y --no-install-recommends tor-geoipdb")
	t0 := time.Now()
	g, err := loadGeoDB("/usr/share/tor/geoip,/usr/share/tor/geoip6")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d v4 and %d v6 spans, %d places in %v", len(g.v4), len(g.v6), len(g.places), time.Since(t0))
	l, _ := newLocator(g, nil)
	for addr, cc := range map[string]string{"8.8.8.8": "US", "1.1.1.1": "AU", "2001:4860::8888": "US"} {
		pl, _, _ := l.locate(netip.MustParseAddr(addr))
		if pl < 0 || l.places[pl].country != cc || !l.places[pl].known {
			t.Errorf("%s: place %d, want %s", addr, pl, cc)
		}
	}
	// Every country the database names has a point (countries.csv).
	for _, p := range g.places {
		if !p.known && p.country != "ZZ" && p.country != "UN" { // not places
			t.Errorf("country %s has no point in countries.csv", p.country)
		}
	}
}

// TestGeoIPReload: an updated database file is picked up by the next
// Apply of the same config (SIGHUP), without a restart.
func TestGeoIPReload(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "geo.mmdb")
	write := func(lat, lon float64) {
		if err := dnstest.WriteMMDB(p, []dnstest.Entry{{CIDR: "3.0.0.0/8", Lat: lat, Lon: lon}}); err != nil {
			t.Fatal(err)
		}
	}
	write(35.68, 139.69) // Tokyo
	snap := testSnapshot(p)
	s, _ := startServer(t, snap)
	ask := func() string {
		x, err := s.Explain("shop."+zone, mdns.TypeA, netip.MustParseAddr("3.3.3.3"), netip.Prefix{})
		if err != nil {
			t.Fatal(err)
		}
		return x.Pool
	}
	if got := ask(); got != "tokyo" {
		t.Fatalf("before: %s", got)
	}
	time.Sleep(10 * time.Millisecond) // a new mtime
	write(50.11, 8.68)                // Frankfurt
	if err := role.Apply(context.Background(), s, snap); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got != "frankfurt" {
		t.Fatalf("after the file changed: %s", got)
	}
}
