package agent

import (
	"context"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/intercloud/intercloud/bgp"
)

// Link-state detection for dedicated lines: a BGP session over a line whose
// interface went down would otherwise live until its hold timer ran out
// (seconds during which traffic is black-holed). The kernel says at once
// when a link loses carrier; the neighbors reached over it are then taken
// out of the BGP config like the neighbors of a dead tunnel, so their
// routes are withdrawn and traffic moves to the VPN, and put back when the
// link is up again.

// neighborLinks finds the interface each dedicated neighbor is reached
// through, while the routes to them exist (at apply time).
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

// watchLinks follows link state until ctx ends.
func (v *gatewayVPN) watchLinks(ctx context.Context) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) { v.logger().Warn("gateway: link watch", "error", err) },
	})
	if err != nil {
		v.logger().Warn("gateway: no link-state detection; dedicated lines fail over on the BGP hold timer", "error", err)
		return
	}
	go func() {
		<-ctx.Done()
		close(done)
	}()
	for u := range updates {
		v.linkChanged(u.Attrs().Index, u.Attrs().Name, linkUp(u.Attrs()))
	}
}

// linkChanged marks the dedicated neighbors behind link index as down or
// up and re-applies BGP when that changes anything.
func (v *gatewayVPN) linkChanged(index int, name string, up bool) {
	v.mu.Lock()
	changed := false
	for addr, idx := range v.links {
		if idx != index || v.linkDown[addr] == !up {
			continue
		}
		if v.linkDown == nil {
			v.linkDown = map[netip.Addr]bool{}
		}
		if up {
			delete(v.linkDown, addr)
		} else {
			v.linkDown[addr] = true
		}
		changed = true
	}
	v.mu.Unlock()
	if !changed {
		return
	}
	v.logger().Info("gateway: dedicated line changed state", "link", name, "up", up)
	v.reapply("link " + name)
}
