package gateway

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/vpn"
)

// A BGP session over a dead path would stay up until its hold timer ran
// out (seconds of black-holed traffic): a tunnel interface stays UP when
// its peer is gone, and a session over a dedicated line whose interface
// lost carrier learns it late. So the neighbors behind a dead path are
// taken out of the BGP config at once (their routes are withdrawn and
// traffic moves to the other path) and put back when the path is up.

// deadPaths is what the loop knows of the paths' health.
type deadPaths struct {
	tunnelDown map[netip.Addr]bool // tunnel peer addresses whose path is dead
	// links maps dedicated neighbors to the interface they are reached
	// through; linkDown holds those whose interface is down (link.go).
	links    map[netip.Addr]int
	linkDown map[netip.Addr]bool
}

// filter is cfg without the neighbors behind a dead path.
func (d *deadPaths) filter(cfg bgp.Config) bgp.Config {
	return withoutDeadPaths(cfg, d.tunnelDown, d.linkDown)
}

// withoutDeadPaths drops the neighbors over a dead tunnel or a dedicated
// line whose link is down; cfg is not modified.
func withoutDeadPaths(cfg bgp.Config, tunnelDown, linkDown map[netip.Addr]bool) bgp.Config {
	if len(tunnelDown) == 0 && len(linkDown) == 0 {
		return cfg
	}
	cfg.Neighbors = slices.DeleteFunc(slices.Clone(cfg.Neighbors), func(n bgp.Neighbor) bool {
		return (n.Kind == bgp.KindVPN && tunnelDown[n.Address]) || (n.Kind == bgp.KindDedicated && linkDown[n.Address])
	})
	return cfg
}

// tunnel records a peer verdict from vpn; true if it changed anything.
func (d *deadPaths) tunnel(st vpn.PeerState) bool {
	if d.tunnelDown[st.Address] == !st.Up {
		return false
	}
	if st.Up {
		delete(d.tunnelDown, st.Address)
	} else {
		if d.tunnelDown == nil {
			d.tunnelDown = map[netip.Addr]bool{}
		}
		d.tunnelDown[st.Address] = true
	}
	return true
}

// link marks the dedicated neighbors behind ev's interface as down or up;
// true if that changed anything.
func (d *deadPaths) link(ev linkEvent) bool {
	changed := false
	for addr, idx := range d.links {
		if idx != ev.index || d.linkDown[addr] == !ev.up {
			continue
		}
		if ev.up {
			delete(d.linkDown, addr)
		} else {
			if d.linkDown == nil {
				d.linkDown = map[netip.Addr]bool{}
			}
			d.linkDown[addr] = true
		}
		changed = true
	}
	return changed
}

// relearnLinks finds again which interface each dedicated neighbor of cfg
// is reached through. A neighbor whose link is down has lost its route:
// it keeps the interface learned before.
func (d *deadPaths) relearnLinks(cfg bgp.Config) {
	links := neighborLinks(cfg)
	for addr, idx := range d.links {
		if _, ok := links[addr]; !ok && d.linkDown[addr] {
			links[addr] = idx
		}
	}
	d.links = links
}

// peerQueue carries vpn's peer verdicts to the loop. vpn calls push from
// its monitor and from inside Commit, which the loop itself runs, so push
// must never wait for the loop.
type peerQueue struct {
	mu   sync.Mutex
	q    []vpn.PeerState
	kick chan struct{} // capacity 1
}

func (p *peerQueue) push(st vpn.PeerState) {
	p.mu.Lock()
	p.q = append(p.q, st)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *peerQueue) drain() []vpn.PeerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.q
	p.q = nil
	return q
}
