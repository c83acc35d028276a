package dns

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

type nameKind uint8

const (
	kindEmpty nameKind = iota // exists only as a parent of other names
	kindApex
	kindDist
	kindAlias
	kindHost // an in-zone nameserver name
)

// entry is one name of the zone.
type entry struct {
	kind  nameKind
	group *group   // kindDist
	cname []byte   // kindAlias: the packed CNAME record after its owner
	tgt   *entry   // kindAlias: the distribution it points to
	host4 *pool    // kindHost
	host6 *pool    // kindHost
	dist  string   // kindDist, kindAlias: the distribution, for explanations
	wire  []byte   // the name, lowercased wire format
	ns    [][]byte // kindApex: NS records after the owner
	glue  []*entry // kindApex: the in-zone host of each NS record, or nil

	// latency: answer by measured latency where known (latency.go).
	latency bool
}

// group is the answer table shared by distributions with the same edges.
type group struct {
	key                string
	members            []*edge // for explanations
	byPlace4, byPlace6 []*pool // indexed by place; nil: no answer
	unknown4, unknown6 *pool   // client location unknown
	failOpen           [2]bool
	clouds             map[string]*cloud // by name, for the latency policy
}

// state is one immutable, fully compiled revision. Queries load it once
// through an atomic pointer, so a swap never drops or mixes answers.
type state struct {
	rev       int64
	zone      []byte // lowercased wire format
	names     map[string]*entry
	soa       []byte // packed SOA after its owner, TTL = ttl
	soaNeg    []byte // the same with the negative TTL (RFC 2308 §3)
	loc       *locator
	groups    []*group
	labels    []string             // metric labels of pools, by pool.loc
	failOpen  []string             // distributions answered fail-open, for the log
	locs      []prometheus.Counter // answers by location, indexed by pool.loc
	rrl       *rrl                 // nil: no rate limiting
	edges     int                  // edge nodes in the site
	liveEdges int                  // of which DNS hands out
	liveKey   string               // the liveness it was built with (see liveKey)
	// lat is the server's latency table, replaced as edges report.
	lat *atomic.Pointer[latTable]
}

// buildInput is everything a state is made of.
type buildInput struct {
	snap *config.Snapshot
	live map[string]status.NodeStatus // nil: liveness not known yet, all live
	loc  *locator
}

func fqdnWire(name string) ([]byte, error) {
	name = mdns.Fqdn(strings.ToLower(strings.TrimSpace(name)))
	if _, ok := mdns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("%q is not a domain name", name)
	}
	b := make([]byte, 256)
	n, err := mdns.PackDomainName(name, b, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", name, err)
	}
	return b[:n], nil
}

// inZone reports whether wire name n is the zone or below it.
func inZone(n, zone []byte) bool {
	if len(n) < len(zone) || string(n[len(n)-len(zone):]) != string(zone) {
		return false
	}
	// the suffix must start on a label boundary
	for off := 0; off < len(n); off += int(n[off]) + 1 {
		if off == len(n)-len(zone) {
			return true
		}
	}
	return false
}

// ttlSeconds is a TTL on the wire. Config rendering fills every TTL, so a
// zero here is a snapshot that skipped it, not a wish for uncached answers.
func ttlSeconds(field string, d config.Duration) (uint32, error) {
	if d <= 0 {
		return 0, fmt.Errorf("%s %s: must be positive (config rendering fills it)", field, d)
	}
	return uint32(min(d.D()/time.Second, math.MaxInt32)), nil
}

func build(in buildInput) (*state, error) {
	site := &in.snap.Site
	cfg := site.DNS
	if cfg.Zone == "" {
		return nil, fmt.Errorf("dns.zone is empty")
	}
	zone, err := fqdnWire(cfg.Zone)
	if err != nil {
		return nil, fmt.Errorf("dns.zone: %w", err)
	}
	ttl, err := ttlSeconds("dns.ttl", cfg.TTL)
	if err != nil {
		return nil, err
	}
	negTTL, err := ttlSeconds("dns.negativeTTL", cfg.NegativeTTL)
	if err != nil {
		return nil, err
	}
	maxAnswers := cfg.MaxAnswers
	if maxAnswers < 1 || maxAnswers > 64 {
		return nil, fmt.Errorf("dns.maxAnswers %d: want 1..64 (config rendering fills it)", maxAnswers)
	}
	st := &state{rev: in.snap.Revision, zone: zone, names: map[string]*entry{}, loc: in.loc}
	zoneName := mdns.Fqdn(strings.ToLower(cfg.Zone))

	apex := &entry{kind: kindApex, wire: zone}
	st.names[string(zone)] = apex

	// Nameservers: in-zone names answer with the addresses of the site's
	// dns nodes.
	nsNames := cfg.Nameservers
	if len(nsNames) == 0 {
		return nil, fmt.Errorf("dns.nameservers: empty (config rendering fills ns1.%s)", zoneName)
	}
	var dnsNodes []*edge
	for i := range site.Nodes {
		n := &site.Nodes[i]
		if !n.HasRole(config.RoleDNS) || n.Address == "" {
			continue
		}
		a, err := netip.ParseAddr(n.Address)
		if err != nil {
			return nil, fmt.Errorf("node %s: address %q: %w", n.Name, n.Address, err)
		}
		dnsNodes = append(dnsNodes, &edge{name: n.Name, addr: a.Unmap(), weight: 1})
	}
	var mname []byte
	for i, ns := range nsNames {
		w, err := fqdnWire(ns)
		if err != nil {
			return nil, fmt.Errorf("dns.nameservers[%d]: %w", i, err)
		}
		if mname == nil {
			mname = w
		}
		apex.ns = append(apex.ns, rrTail(typeNS, ttl, w))
		var host *entry
		if inZone(w, zone) && len(w) != len(zone) {
			host = st.names[string(w)]
			if host == nil {
				host = &entry{kind: kindHost, wire: w}
				var v4, v6 []*edge
				for _, e := range dnsNodes {
					if e.addr.Is4() {
						v4 = append(v4, e)
					} else {
						v6 = append(v6, e)
					}
				}
				if len(v4) > 0 {
					host.host4 = newPool("ns", v4, typeA, ttl, len(v4), true)
				}
				if len(v6) > 0 {
					host.host6 = newPool("ns", v6, typeAAAA, ttl, len(v6), true)
				}
				st.names[string(w)] = host
			}
		}
		apex.glue = append(apex.glue, host)
	}
	st.soa, st.soaNeg = zoneSOA(mname, zoneName, ttl, negTTL, uint32(in.snap.Revision))

	// Edges.
	edges := map[string]*edge{}
	var all []*edge
	for i := range site.Nodes {
		n := &site.Nodes[i]
		if !n.HasRole(config.RoleEdge) {
			continue
		}
		if n.Address == "" {
			return nil, fmt.Errorf("node %s: an edge needs an address for DNS to hand out", n.Name)
		}
		a, err := netip.ParseAddr(n.Address)
		if err != nil {
			return nil, fmt.Errorf("node %s: address %q: %w", n.Name, n.Address, err)
		}
		e := &edge{name: n.Name, cloud: n.Cloud, addr: a.Unmap(), weight: n.EdgeWeight(),
			place: newPlace("node "+n.Name, n.Location)}
		if e.cloud == "" {
			e.cloud = n.Name
		}
		if e.weight < 0 {
			return nil, fmt.Errorf("node %s: weight %d is negative", n.Name, e.weight)
		}
		ns, ok := in.live[n.Name]
		e.eligible = e.weight > 0 && (in.live == nil || (ok && ns.Healthy))
		edges[n.Name] = e
		all = append(all, e)
		st.edges++
		if e.eligible {
			st.liveEdges++
		}
	}

	// Distributions and their aliases.
	groups := map[string]*group{}
	labels := map[string]int{}
	type alias struct {
		wire []byte
		dist *entry
		name string
	}
	var aliases []alias
	for i := range in.snap.Distributions {
		d := &in.snap.Distributions[i]
		if d.Spec.Disabled {
			continue
		}
		w, err := fqdnWire(d.Name + "." + zoneName)
		if err != nil {
			return nil, fmt.Errorf("distribution %s: %w", d.Name, err)
		}
		members := all
		gkey := "*"
		if len(d.Spec.Edges) > 0 {
			members = nil
			pins := slices.Clone(d.Spec.Edges)
			slices.Sort(pins)
			pins = slices.Compact(pins)
			for _, name := range pins {
				e := edges[name]
				if e == nil {
					return nil, fmt.Errorf("distribution %s: spec.edges: %q is not an edge node", d.Name, name)
				}
				members = append(members, e)
			}
			gkey = strings.Join(pins, ",")
		}
		g := groups[gkey]
		if g == nil {
			g = buildGroup(gkey, members, in.loc, ttl, maxAnswers, labels)
			groups[gkey] = g
			st.groups = append(st.groups, g)
		}
		if g.failOpen[0] || g.failOpen[1] {
			st.failOpen = append(st.failOpen, d.Name)
		}
		if old := st.names[string(w)]; old != nil && old.kind != kindEmpty {
			return nil, fmt.Errorf("distribution %s: name %s is already used", d.Name, d.Domain(zoneName))
		}
		de := &entry{kind: kindDist, group: g, dist: d.Name, wire: w, latency: latencyPolicy(d)}
		st.names[string(w)] = de
		for _, a := range d.Spec.Aliases {
			aw, err := fqdnWire(a)
			if err != nil {
				return nil, fmt.Errorf("distribution %s: alias: %w", d.Name, err)
			}
			// Aliases outside the zone belong to someone else's zone: they
			// get REFUSED here, like every out-of-zone name.
			if inZone(aw, zone) && len(aw) != len(zone) {
				aliases = append(aliases, alias{aw, de, d.Name})
			}
		}
	}
	for _, a := range aliases {
		if old := st.names[string(a.wire)]; old != nil && old.kind != kindEmpty {
			if old.kind == kindAlias && old.tgt == a.dist {
				continue
			}
			return nil, fmt.Errorf("distribution %s: alias %s is already used", a.name, mdnsName(a.wire))
		}
		st.names[string(a.wire)] = &entry{kind: kindAlias, tgt: a.dist, dist: a.name, wire: a.wire,
			cname: rrTail(typeCNAME, ttl, a.dist.wire)}
	}
	// Names between the zone and a deeper name exist, with no data (they
	// answer NODATA, not NXDOMAIN: RFC 8020).
	for _, e := range slices.Collect(mapValues(st.names)) {
		for off := int(e.wire[0]) + 1; off < len(e.wire)-len(zone); off += int(e.wire[off]) + 1 {
			parent := e.wire[off:]
			if _, ok := st.names[string(parent)]; !ok {
				st.names[string(parent)] = &entry{kind: kindEmpty, wire: parent}
			}
		}
	}
	st.labels = make([]string, len(labels))
	for l, i := range labels {
		st.labels[i] = l
	}
	return st, nil
}

// zoneSOA is the zone's SOA record, with the answer TTL and with the
// negative TTL; its serial is the revision.
func zoneSOA(mname []byte, zoneName string, ttl, negTTL, serial uint32) (soa, soaNeg []byte) {
	rname, _ := fqdnWire("hostmaster." + zoneName)
	return rrTail(typeSOA, ttl, soaRdata(mname, rname, serial, negTTL)), rrTail(typeSOA, negTTL, soaRdata(mname, rname, serial, negTTL))
}

func mapValues(m map[string]*entry) func(func(*entry) bool) {
	return func(yield func(*entry) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func mdnsName(w []byte) string {
	s, _, err := mdns.UnpackDomainName(w, 0)
	if err != nil {
		return fmt.Sprintf("%x", w)
	}
	return s
}

func soaRdata(mname, rname []byte, serial, minimum uint32) []byte {
	b := append(slices.Clone(mname), rname...)
	var n [20]byte
	binary.BigEndian.PutUint32(n[0:], serial)
	binary.BigEndian.PutUint32(n[4:], 3600)     // refresh
	binary.BigEndian.PutUint32(n[8:], 600)      // retry
	binary.BigEndian.PutUint32(n[12:], 86400*7) // expire
	binary.BigEndian.PutUint32(n[16:], minimum)
	return append(b, n[:]...)
}

// cloud is the edges of one cloud in a group and where they are.
type cloud struct {
	name   string
	place  place
	edges  [2][]*edge // by family: 0 v4, 1 v6
	live   [2][]*edge
	pool   [2]*pool
	hasPos bool
}

// buildGroup decides, for every place a client can be in, which pool
// answers it: the nearest cloud with live edges of that family, else (no
// coordinates) every live edge; with no live edge at all, every edge
// (fail open: a possibly dead edge beats no answer).
func buildGroup(key string, members []*edge, loc *locator, ttl uint32, maxAnswers int, labels map[string]int) *group {
	g := &group{key: key, members: members, clouds: map[string]*cloud{}}
	labelIdx := func(l string) int {
		i, ok := labels[l]
		if !ok {
			i = len(labels)
			labels[l] = i
		}
		return i
	}
	byName := map[string]*cloud{}
	var clouds []*cloud
	var allLive, every [2][]*edge
	for _, e := range members {
		c := byName[e.cloud]
		if c == nil {
			c = &cloud{name: e.cloud}
			byName[e.cloud] = c
			g.clouds[e.cloud] = c
			clouds = append(clouds, c)
		}
		f := 0
		if !e.addr.Is4() {
			f = 1
		}
		c.edges[f] = append(c.edges[f], e)
		every[f] = append(every[f], e)
		if e.eligible {
			c.live[f] = append(c.live[f], e)
			allLive[f] = append(allLive[f], e)
		}
	}
	// A cloud sits at the mean of its edges (unit vectors, so the
	// antimeridian does not bend it).
	for _, c := range clouds {
		var x, y, z float64
		n := 0
		for _, f := range c.edges {
			for _, e := range f {
				if !e.place.known {
					continue
				}
				x += e.place.cosLat * math.Cos(e.place.lon)
				y += e.place.cosLat * math.Sin(e.place.lon)
				z += e.place.sinLat
				n++
			}
		}
		if n > 0 {
			c.hasPos = true
			c.place.setCoords(math.Atan2(z, math.Hypot(x, y))*180/math.Pi, math.Atan2(y, x)*180/math.Pi)
		}
	}
	types := [2]uint16{typeA, typeAAAA}
	nplaces := 0
	if loc != nil {
		nplaces = len(loc.places)
	}
	for f := range 2 {
		var table []*pool
		var unknown *pool
		switch {
		case len(every[f]) == 0:
			// no edge of this family: NODATA everywhere
		case len(allLive[f]) == 0:
			g.failOpen[f] = true
			unknown = newPool("fail-open", every[f], types[f], ttl, maxAnswers, true)
			unknown.loc = labelIdx(unknown.label)
		default:
			unknown = newPool("all", allLive[f], types[f], ttl, maxAnswers, false)
			unknown.loc = labelIdx(unknown.label)
			for _, c := range clouds {
				if len(c.live[f]) > 0 {
					c.pool[f] = newPool(c.name, c.live[f], types[f], ttl, maxAnswers, false)
					c.pool[f].loc = labelIdx(c.name)
				}
			}
			table = make([]*pool, nplaces)
			for i := range table {
				table[i] = unknown
				p := &loc.places[i]
				if !p.known {
					continue
				}
				best := math.Inf(1)
				for _, c := range clouds {
					if c.pool[f] == nil || !c.hasPos {
						continue
					}
					if d := distance(p, &c.place); d < best {
						best, table[i] = d, c.pool[f]
					}
				}
			}
		}
		if f == 0 {
			g.byPlace4, g.unknown4 = table, unknown
		} else {
			g.byPlace6, g.unknown6 = table, unknown
		}
	}
	return g
}

// pick is the pool for a client at place pl (-1: unknown) and family f.
func (g *group) pick(pl int32, v6 bool) *pool {
	table, unknown := g.byPlace4, g.unknown4
	if v6 {
		table, unknown = g.byPlace6, g.unknown6
	}
	if pl >= 0 && int(pl) < len(table) {
		return table[pl]
	}
	return unknown
}
