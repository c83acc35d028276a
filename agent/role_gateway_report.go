package agent

import (
	"github.com/intercloud/intercloud/role"

	"context"
	"time"

	"github.com/intercloud/intercloud/config"
)

var _ role.Reporter = (*gatewayRole)(nil)

// Report publishes the gateway's BGP sessions, tunnels and installed
// routes with the node's status, for `intercloud status` and /ui.
func (g *gatewayRole) Report(into *config.RoleReport) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if ns, err := g.bgp.Neighbors(ctx); err == nil {
		for _, n := range ns {
			into.Sessions = append(into.Sessions, config.PeerState{
				Peer: n.Address.String(), Name: n.Name, Link: string(n.Kind), State: n.State, Accepted: int(n.Accepted),
			})
		}
	}
	g.vpn.report(g.o.Node, into)
	g.mu.Lock()
	t := g.table
	g.mu.Unlock()
	if t != nil {
		into.Routes += t.InstalledCount()
	}
}
