package agent

import (
	"github.com/intercloud/intercloud/role"

	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/vpn"
)

// gatewayVPN is the gateway role's tunnel half: the node's WireGuard
// tunnels (package vpn) and the rule that ties BGP to their data path. A
// BGP session over a tunnel whose path is dead would stay up until its hold
// timer ran out, because the tunnel interface stays UP; instead, when vpn
// reports a peer down, the neighbor on that peer's tunnel address is taken
// out of the BGP config at once (its routes are withdrawn and traffic moves
// to the other path), and put back when the peer is up again.
//
// The zero value is ready to use; the vpn.Manager is made on the first
// apply that has tunnels for this node.
type gatewayVPN struct {
	mu   sync.Mutex // guards everything below; never held while calling out
	m    *vpn.Manager
	down map[netip.Addr]bool // tunnel peer addresses whose path is dead
	bgp  *bgp.Server
	last *bgp.Config // the unfiltered config of the last apply
	log  *slog.Logger
	// links maps dedicated neighbors to the interface they are reached
	// through; linkDown holds those whose interface is down
	// (role_gateway_link.go).
	links    map[netip.Addr]int
	linkDown map[netip.Addr]bool
}

// apply brings the tunnels to the site; it runs before BGP is applied, so
// that sessions over a tunnel find its address configured.
func (v *gatewayVPN) apply(ctx context.Context, o role.Options, b *bgp.Server, site *config.Site) error {
	v.mu.Lock()
	v.bgp, v.log = b, o.Logger
	if v.log == nil {
		v.log = slog.Default()
	}
	m := v.m
	v.mu.Unlock()
	if m == nil {
		tunnels, err := vpn.FromSite(site, o.Node)
		if err != nil {
			return err
		}
		if len(tunnels) == 0 {
			return nil
		}
		m, err = vpn.New(vpn.Options{Node: o.Node, Logger: o.Logger, Registry: o.Registry, OnPeerState: v.peerChanged})
		if err != nil {
			return err
		}
		v.mu.Lock()
		v.m = m
		v.mu.Unlock()
	}
	return m.Apply(ctx, site)
}

// bgpConfig records cfg and returns it without the neighbors whose tunnel
// is down.
func (v *gatewayVPN) bgpConfig(cfg bgp.Config) bgp.Config {
	links := neighborLinks(cfg)
	v.mu.Lock()
	defer v.mu.Unlock()
	c := cfg
	v.last = &c
	// A neighbor whose route is gone (its link down) keeps the interface
	// learned before.
	for addr, idx := range v.links {
		if _, ok := links[addr]; !ok && v.linkDown[addr] {
			links[addr] = idx
		}
	}
	v.links = links
	return withoutDeadPaths(cfg, v.down, v.linkDown)
}

// withoutDeadPaths drops the neighbors over a dead tunnel or a dedicated
// line whose link is down.
func withoutDeadPaths(cfg bgp.Config, tunnelDown, linkDown map[netip.Addr]bool) bgp.Config {
	if len(tunnelDown) == 0 && len(linkDown) == 0 {
		return cfg
	}
	cfg.Neighbors = slices.DeleteFunc(slices.Clone(cfg.Neighbors), func(n bgp.Neighbor) bool {
		return (n.Kind == bgp.KindVPN && tunnelDown[n.Address]) || (n.Kind == bgp.KindDedicated && linkDown[n.Address])
	})
	return cfg
}

func (v *gatewayVPN) logger() *slog.Logger {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.log == nil {
		return slog.Default()
	}
	return v.log
}

// reapply applies the last BGP config again, filtered by the dead paths
// known now.
func (v *gatewayVPN) reapply(why string) {
	v.mu.Lock()
	b, last, log := v.bgp, v.last, v.log
	var cfg bgp.Config
	if last != nil {
		cfg = withoutDeadPaths(*last, v.down, v.linkDown)
	}
	v.mu.Unlock()
	if b == nil || last == nil {
		return
	}
	if err := b.Apply(context.Background(), cfg); err != nil && !errors.Is(err, bgp.ErrNotRunning) {
		log.Warn("gateway: re-apply bgp after a path change", "path", why, "error", err)
	}
}

// peerChanged is vpn's OnPeerState: it re-applies the last BGP config
// filtered by the new set of dead tunnels. It runs on vpn's monitor (or
// inside Apply) and takes no lock of the role.
func (v *gatewayVPN) peerChanged(st vpn.PeerState) {
	v.mu.Lock()
	if v.down == nil {
		v.down = map[netip.Addr]bool{}
	}
	was := v.down[st.Address]
	if st.Up {
		delete(v.down, st.Address)
	} else {
		v.down[st.Address] = true
	}
	v.mu.Unlock()
	if was == !st.Up {
		return
	}
	v.reapply("tunnel to " + st.Node)
}

// ready is nil when there are no tunnels or the last apply configured them.
func (v *gatewayVPN) ready() error {
	v.mu.Lock()
	m := v.m
	v.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Ready()
}

func (v *gatewayVPN) status(node string) vpn.Status {
	v.mu.Lock()
	m := v.m
	v.mu.Unlock()
	if m == nil {
		return vpn.Status{Node: node, Interfaces: []vpn.InterfaceStatus{}}
	}
	return m.Status()
}

// report adds the tunnels to the node's published status.
func (v *gatewayVPN) report(node string, into *config.RoleReport) {
	for _, i := range v.status(node).Interfaces {
		into.Tunnels = append(into.Tunnels, config.TunnelState{
			Interface: i.Name, Peer: i.Peer.Node, Up: i.Peer.Up, LastHandshake: i.Peer.LastHandshake,
		})
	}
}

func (v *gatewayVPN) close(ctx context.Context) error {
	v.mu.Lock()
	m := v.m
	v.m, v.bgp = nil, nil
	v.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Close(ctx)
}

// mountVPNRoutes adds GET /v1/vpn to a node admin mux; it serves whichever
// gateway role is current (gatewayAPI), like the BGP endpoints.
func mountVPNRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/vpn", func(w http.ResponseWriter, r *http.Request) {
		g := gatewayAPI.Load()
		if g == nil {
			http.Error(w, "gateway role not running", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(g.vpn.status(g.o.Node))
	})
}
