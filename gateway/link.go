package gateway

import (
	"context"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/intercloud/intercloud/bgp"
)

// Link-state detection for dedicated lines: the kernel says at once when a
// link loses carrier, long before a BGP hold timer runs out. The watcher
// only reports; the loop decides (paths.go).

// neighborLinks finds the interface each dedicated neighbor is reached
// through, while the routes to them exist (at commit).
func neighborLinks(cfg bgp.Config) map[netip.Addr]int {
	out := map[netip.Addr]int{}
	for _, n := range cfg.Neighbors {
		if n.Kind != bgp.KindDedicated {
			continue
		}
		rs, err := netlink.RouteGet(n.Address.AsSlice())
		if err != nil || len(rs) == 0 || rs[0].LinkIndex == 0 {
			continue
		}
		out[n.Address] = rs[0].LinkIndex
	}
	return out
}

// linkUp is the kernel's verdict on a link: administratively up and with
// carrier (veths report unknown when they have no operational state).
func linkUp(a *netlink.LinkAttrs) bool {
	return a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown)
}

// watchLinks hands the kernel's link changes to the loop until ctx ends.
func (g *Gateway) watchLinks(ctx context.Context) {
	updates := make(chan netlink.LinkUpdate, 64)
	err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				g.log.Warn("gateway: link watch", "error", err)
			}
		},
	})
	if err != nil {
		g.log.Warn("gateway: no link-state detection; dedicated lines fail over on the BGP hold timer", "error", err)
		return
	}
	// updates is closed once the subscription's socket is, after ctx ends.
	for u := range updates {
		ev := linkEvent{index: u.Attrs().Index, name: u.Attrs().Name, up: linkUp(u.Attrs())}
		select {
		case g.links <- ev:
		case <-ctx.Done():
		}
	}
}
