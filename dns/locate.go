package dns

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/intercloud/intercloud/config"
)

// place is a client location as far as it is known. Coordinates are kept
// in radians with their sine and cosine, since distance is all they serve.
type place struct {
	country, continent string
	label              string // for explanations: "network 10.1.0.0/16", "geoip KR"
	known              bool   // has coordinates
	lat, lon           float64
	sinLat, cosLat     float64
}

func newPlace(label string, l config.Location) place {
	p := place{label: label, country: strings.ToUpper(l.Country), continent: strings.ToUpper(l.Continent)}
	c, haveCountry := countries[p.country]
	if p.continent == "" && haveCountry {
		p.continent = c.continent
	}
	// The fallback chain: explicit coordinates, else the country's point,
	// else the continent's; with none of them, the client gets every edge.
	switch {
	case l.Lat != 0 || l.Lon != 0:
		p.setCoords(l.Lat, l.Lon)
	case haveCountry:
		p.setCoords(c.lat, c.lon)
	default:
		if k, ok := continents[p.continent]; ok {
			p.setCoords(k.lat, k.lon)
		}
	}
	return p
}

func (p *place) setCoords(lat, lon float64) {
	p.known = true
	p.lat, p.lon = lat*math.Pi/180, lon*math.Pi/180
	p.sinLat, p.cosLat = math.Sincos(p.lat)
}

// distance is the great-circle angle between two places (haversine-free
// spherical law of cosines, clamped; good to a few km, plenty here).
func distance(a, b *place) float64 {
	c := a.sinLat*b.sinLat + a.cosLat*b.cosLat*math.Cos(a.lon-b.lon)
	return math.Acos(max(-1, min(1, c)))
}

// locator maps a client address to a place index and the ECS scope.
type locator struct {
	v4, v6 rangeTable
	places []place
}

// locate returns the place of a (-1: unknown), whether a falls inside a
// configured network, and the prefix length the answer holds for.
func (l *locator) locate(a netip.Addr) (int32, bool, uint8) {
	k, v4 := key(a)
	if v4 {
		return l.v4.lookup(k)
	}
	return l.v6.lookup(k)
}

// geoDB is a loaded geo database: spans per family and their places. It is
// loaded once per dns.geoip value and shared by every state built from it.
type geoDB struct {
	v4, v6 []span
	places []place
}

// loadGeoDB loads a comma-separated list of .mmdb and tor-geoipdb files.
func loadGeoDB(spec string) (*geoDB, error) {
	g := &geoDB{}
	idx := map[string]int32{}
	for _, path := range strings.Split(spec, ",") {
		path = strings.TrimSpace(path)
		if path == "" {
			continue
		}
		var err error
		if strings.HasSuffix(path, ".mmdb") {
			err = g.loadMMDB(path, idx)
		} else {
			err = g.loadTor(path, idx)
		}
		if err != nil {
			return nil, fmt.Errorf("dns.geoip %s: %w", path, err)
		}
	}
	return g, nil
}

// placeFor dedups places by what they say.
func (g *geoDB) placeFor(idx map[string]int32, l config.Location) int32 {
	k := l.Country + "|" + l.Continent + "|" + strconv.FormatFloat(l.Lat, 'g', -1, 64) + "|" + strconv.FormatFloat(l.Lon, 'g', -1, 64)
	if i, ok := idx[k]; ok {
		return i
	}
	i := int32(len(g.places))
	g.places = append(g.places, newPlace("geoip "+describe(l), l))
	idx[k] = i
	return i
}

func describe(l config.Location) string {
	s := l.Country
	if s == "" {
		s = l.Continent
	}
	if l.Lat != 0 || l.Lon != 0 {
		s += fmt.Sprintf(" (%.2f,%.2f)", l.Lat, l.Lon)
	}
	if s == "" {
		s = "?"
	}
	return s
}

// newLocator lays the site's networks over the geo database.
func newLocator(g *geoDB, nets []config.Network) (*locator, error) {
	l := &locator{}
	var base4, base6 []span
	if g != nil {
		l.places = append(l.places, g.places...)
		base4, base6 = g.v4, g.v6
	}
	// More specific networks go on last so they win.
	order := make([]int, len(nets))
	for i := range order {
		order[i] = i
	}
	sortStable(order, func(a, b int) bool { return nets[a].CIDR.Bits() < nets[b].CIDR.Bits() })
	var top4, top6 []span
	for _, i := range order {
		n := nets[i]
		if !n.CIDR.IsValid() {
			return nil, fmt.Errorf("dns.networks[%d]: invalid cidr", i)
		}
		pi := int32(len(l.places))
		l.places = append(l.places, newPlace("network "+n.CIDR.String(), n.Location))
		s, e, v4 := prefixRange(n.CIDR)
		sp := []span{{s, e, pi, true}}
		if v4 {
			top4 = newTable(32, overlay(top4, sp)).spans
		} else {
			top6 = newTable(128, overlay(top6, sp)).spans
		}
	}
	l.v4 = layer(32, base4, top4)
	l.v6 = layer(128, base6, top6)
	return l, nil
}

// layer shares base (already sorted and merged, never written again) when
// there is nothing to lay over it: a country database is tens of MB.
func layer(width int, base, top []span) rangeTable {
	if len(top) == 0 {
		t := newTable(width, nil)
		t.spans = base
		return t
	}
	return newTable(width, overlay(base, top))
}

func sortStable(x []int, less func(a, b int) bool) {
	for i := 1; i < len(x); i++ {
		for j := i; j > 0 && less(x[j], x[j-1]); j-- {
			x[j], x[j-1] = x[j-1], x[j]
		}
	}
}
