package dns

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

// The latency policy (a distribution's `dns: {policy: latency}`) sends a
// client to the cloud whose edges measured the lowest round-trip time
// towards the client's network (IPv4 /24, IPv6 /48); edges report what
// their connections' handshakes took (status.RoleReport.ClientRTT, in
// the node's status in the store). A network no live edge measured is
// answered by geography, as every other distribution is.

// latTable is, for each measured client network, the clouds by the
// lowest RTT one of their live edges measured, best first.
type latTable struct {
	nets map[netip.Prefix][]cloudRTT
}

type cloudRTT struct {
	cloud string
	rtt   time.Duration
}

// latencyPolicy: the distribution asked for answers by latency.
func latencyPolicy(d *config.Distribution) bool {
	return d.Spec.DNS != nil && d.Spec.DNS.Policy == config.DNSPolicyLatency
}

func anyLatency(snap *config.Snapshot) bool {
	for i := range snap.Distributions {
		if latencyPolicy(&snap.Distributions[i]) {
			return true
		}
	}
	return false
}

// buildLatency folds the live, healthy edges' reports by network.
func buildLatency(snap *config.Snapshot, live map[string]status.NodeStatus) *latTable {
	t := &latTable{nets: map[netip.Prefix][]cloudRTT{}}
	if snap == nil {
		return t
	}
	if !anyLatency(snap) {
		return t // nothing asks for it: statuses change every few seconds
	}
	// Every status change rebuilds the table: the site's edges by name
	// once, not a search of the site's nodes per live node.
	cloudOf := make(map[string]string, len(snap.Site.Nodes))
	for i := range snap.Site.Nodes {
		if n := &snap.Site.Nodes[i]; n.HasRole(config.RoleEdge) {
			cloudOf[n.Name] = n.Cloud
		}
	}
	for name, st := range live {
		cloud, edge := cloudOf[name]
		if !edge || !st.Healthy {
			continue
		}
		for _, m := range st.Report.ClientRTT {
			if !m.Network.IsValid() || m.RTT <= 0 {
				continue
			}
			cs := t.nets[m.Network]
			i := slices.IndexFunc(cs, func(c cloudRTT) bool { return c.cloud == cloud })
			switch {
			case i < 0:
				cs = append(cs, cloudRTT{cloud, m.RTT})
			case m.RTT < cs[i].rtt:
				cs[i].rtt = m.RTT
			}
			t.nets[m.Network] = cs
		}
	}
	for _, cs := range t.nets {
		slices.SortFunc(cs, func(a, b cloudRTT) int {
			if a.rtt != b.rtt {
				return int(a.rtt - b.rtt)
			}
			if a.cloud < b.cloud {
				return -1
			}
			return 1
		})
	}
	return t
}

// clientNetwork is the network of a measured client address.
func clientNetwork(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

// latencyPool is the pool of the best measured cloud of g with live
// edges of the family for a client at addr, nil when none was measured.
func latencyPool(lat *atomic.Pointer[latTable], g *group, addr netip.Addr, v6 bool) *pool {
	if lat == nil || !addr.IsValid() {
		return nil
	}
	t := lat.Load()
	if t == nil {
		return nil
	}
	f := 0
	if v6 {
		f = 1
	}
	for _, c := range t.nets[clientNetwork(addr)] {
		if cl := g.clouds[c.cloud]; cl != nil && cl.pool[f] != nil {
			return cl.pool[f]
		}
	}
	return nil
}
