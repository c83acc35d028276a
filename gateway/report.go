package gateway

import (
	"context"
	"time"

	"github.com/intercloud/intercloud/status"
)

// Report publishes the gateway's BGP sessions, tunnels and installed
// routes with the node's status, for `intercloud status` and /ui.
func (g *Gateway) Report(into *status.RoleReport) {
	// The neighbor table walks the RIB; a stuck speaker must not hold up
	// the node's registration refresh.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if ns, err := g.bgp.Neighbors(ctx); err == nil {
		for _, n := range ns {
			into.Sessions = append(into.Sessions, status.PeerState{
				Peer: n.Address.String(), Name: n.Name, Link: string(n.Kind), State: n.State, Accepted: int(n.Accepted),
			})
		}
	}
	for _, i := range g.vpn.Status().Interfaces {
		into.Tunnels = append(into.Tunnels, status.TunnelState{
			Interface: i.Name, Peer: i.Peer.Node, Up: i.Peer.Up, LastHandshake: i.Peer.LastHandshake,
		})
	}
	if t := g.table.Load(); t != nil {
		into.Routes += t.InstalledCount()
	}
}
