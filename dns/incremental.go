package dns

import (
	"maps"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"

	"github.com/intercloud/intercloud/config"
)

// buildFrom makes the state of in.snap from prev, the running state, when
// the snapshot says it changed only some distributions since prev's
// revision and the site (nodes, zone settings) and liveness are as prev
// was built with: the names of the other distributions are shared, and
// only the changed ones are compiled. It returns nil where a whole build
// is needed: another base, a site change, a distribution pinned to edges,
// or a name deeper than one label below the zone (whose parents would
// need recounting).
func buildFrom(prev *state, in buildInput, liveKey string) *state {
	dl := in.snap.Delta
	if prev == nil || dl == nil || dl.Site || dl.Base != prev.rev || prev.liveKey != liveKey {
		return nil
	}
	all := prev.group("*")
	if all == nil {
		return nil
	}
	cfg := in.snap.Site.DNS
	zoneName := mdns.Fqdn(strings.ToLower(cfg.Zone))
	gone := make(map[string]bool, len(dl.Changed)+len(dl.Removed))
	for _, n := range dl.Changed {
		gone[n] = true
	}
	for _, n := range dl.Removed {
		gone[n] = true
	}
	st := *prev
	st.rev = in.snap.Revision
	st.names = maps.Clone(prev.names)
	for k, e := range prev.names {
		if (e.kind == kindDist || e.kind == kindAlias) && gone[e.dist] {
			if !st.shallow(e.wire) {
				return nil
			}
			delete(st.names, k)
		}
	}
	byName := make(map[string]*config.Distribution, len(dl.Changed))
	for i := range in.snap.Distributions {
		if d := &in.snap.Distributions[i]; gone[d.Name] {
			byName[d.Name] = d
		}
	}
	ttl, err := ttlSeconds("dns.ttl", cfg.TTL)
	if err != nil {
		return nil
	}
	st.failOpen = slices.DeleteFunc(slices.Clone(prev.failOpen), func(d string) bool { return gone[d] })
	for _, name := range dl.Changed {
		d := byName[name]
		if d == nil {
			return nil // not the snapshot its delta describes
		}
		if d.Spec.Disabled {
			continue
		}
		if len(d.Spec.Edges) > 0 {
			return nil
		}
		w, err := fqdnWire(d.Name + "." + zoneName)
		if err != nil || st.names[string(w)] != nil {
			return nil // the whole build reports it
		}
		de := &entry{kind: kindDist, group: all, dist: d.Name, wire: w, latency: latencyPolicy(d)}
		st.names[string(w)] = de
		if all.failOpen[0] || all.failOpen[1] {
			st.failOpen = append(st.failOpen, d.Name)
		}
		for _, a := range d.Spec.Aliases {
			aw, err := fqdnWire(a)
			if err != nil {
				return nil
			}
			if !inZone(aw, st.zone) || len(aw) == len(st.zone) {
				continue // out of zone: REFUSED, as in a whole build
			}
			if !st.shallow(aw) {
				return nil
			}
			if old := st.names[string(aw)]; old != nil {
				if old.kind == kindAlias && old.tgt == de {
					continue
				}
				return nil
			}
			st.names[string(aw)] = &entry{kind: kindAlias, tgt: de, dist: d.Name, wire: aw, cname: rrTail(typeCNAME, ttl, w)}
		}
	}
	negTTL, err := ttlSeconds("dns.negativeTTL", cfg.NegativeTTL)
	if err != nil {
		return nil
	}
	mname, err := fqdnWire(cfg.Nameservers[0])
	if err != nil {
		return nil
	}
	st.soa, st.soaNeg = zoneSOA(mname, zoneName, ttl, negTTL, uint32(in.snap.Revision))
	return &st
}

// shallow reports whether name is one label below the zone: its only
// parent is the apex, which always exists.
func (st *state) shallow(name []byte) bool {
	return int(name[0])+1+len(st.zone) == len(name)
}

// group returns the state's group with key, or nil.
func (st *state) group(key string) *group {
	for _, g := range st.groups {
		if g.key == key {
			return g
		}
	}
	return nil
}
