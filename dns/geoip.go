package dns

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/oschwald/maxminddb-golang"

	"github.com/intercloud/intercloud/config"
)

// loadTor reads a tor-geoipdb file (Debian's /usr/share/tor/geoip and
// geoip6, converted from IPFire Location): "start,end,CC" per line, where
// start and end are integers for IPv4 and addresses for IPv6. "??" means
// unknown and is left out.
func (g *geoDB) loadTor(path string, idx map[string]int32) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	byCC := map[string]int32{}
	sc := bufio.NewScanner(f)
	line := 0
	var v4, v6 []span
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' {
			continue
		}
		a, rest, ok1 := strings.Cut(t, ",")
		b, cc, ok2 := strings.Cut(rest, ",")
		if !ok1 || !ok2 {
			return fmt.Errorf("line %d: want start,end,CC", line)
		}
		if cc == "??" || cc == "" {
			continue
		}
		var s, e u128
		var is4 bool
		if strings.Contains(a, ":") {
			sa, err1 := netip.ParseAddr(a)
			ea, err2 := netip.ParseAddr(b)
			if err1 != nil || err2 != nil || !sa.Is6() || !ea.Is6() {
				return fmt.Errorf("line %d: bad IPv6 range %q", line, t)
			}
			// not key(): v4-mapped addresses must stay in the v6 table
			s, e = v6key(sa), v6key(ea)
		} else {
			si, err1 := strconv.ParseUint(a, 10, 32)
			ei, err2 := strconv.ParseUint(b, 10, 32)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("line %d: bad IPv4 range %q", line, t)
			}
			s, e, is4 = u128{0, si}, u128{0, ei}, true
		}
		if e.less(s) {
			return fmt.Errorf("line %d: range ends before it starts", line)
		}
		pi, ok := byCC[cc]
		if !ok {
			pi = g.placeFor(idx, config.Location{Country: cc})
			byCC[cc] = pi
		}
		if is4 {
			v4 = append(v4, span{s, e, pi, false})
		} else {
			v6 = append(v6, span{s, e, pi, false})
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line, err)
	}
	g.v4 = newTable(32, overlay(v4sorted(v4), g.v4)).spans
	g.v6 = newTable(128, overlay(v6sorted(v6), g.v6)).spans
	return nil
}

func v4sorted(s []span) []span { return newTable(32, s).spans }
func v6sorted(s []span) []span { return newTable(128, s).spans }

func v6key(a netip.Addr) u128 {
	b := a.As16()
	var k u128
	for i := 0; i < 8; i++ {
		k.hi = k.hi<<8 | uint64(b[i])
		k.lo = k.lo<<8 | uint64(b[8+i])
	}
	return k
}

// mmdbRecord is the part of a GeoIP2/GeoLite2 Country or City record that
// places a client.
type mmdbRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

// loadMMDB walks every network of a MaxMind DB once and turns it into
// spans, so that queries never decode the database.
func (g *geoDB) loadMMDB(path string, idx map[string]int32) error {
	r, err := maxminddb.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	var v4, v6 []span
	it := r.Networks(maxminddb.SkipAliasedNetworks)
	for it.Next() {
		var rec mmdbRecord
		n, err := it.Network(&rec)
		if err != nil {
			return err
		}
		l := config.Location{Country: rec.Country.ISOCode, Continent: rec.Continent.Code}
		if rec.Location.Latitude != nil && rec.Location.Longitude != nil {
			l.Lat, l.Lon = *rec.Location.Latitude, *rec.Location.Longitude
		}
		if l == (config.Location{}) {
			continue
		}
		p, ok := netipPrefix(n)
		if !ok {
			continue
		}
		s, e, is4 := prefixRange(p)
		sp := span{s, e, g.placeFor(idx, l), false}
		if is4 {
			v4 = append(v4, sp)
		} else {
			v6 = append(v6, sp)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	g.v4 = newTable(32, overlay(v4sorted(v4), g.v4)).spans
	g.v6 = newTable(128, overlay(v6sorted(v6), g.v6)).spans
	return nil
}

func netipPrefix(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a, ones), true
}
