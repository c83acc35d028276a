package vpn

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// tunnelMTU derives the tunnel MTU from the underlay: the MTU of the route
// towards the peer's endpoint (or of the default route when the peer has no
// endpoint) minus WireGuard's overhead. Packets then never exceed the path,
// which also keeps wireguard-go's batched UDP sends (GSO) within it.
func tunnelMTU(h *netlink.Handle, endpoint netip.Addr) (int, error) {
	under, err := underlayMTU(h, endpoint)
	if err != nil {
		return 0, err
	}
	return mtuFromUnderlay(under), nil
}

// mtuFromUnderlay is the tunnel MTU for an underlay MTU, never below the
// IPv6 minimum (below that the underlay fragments, which still works).
func mtuFromUnderlay(under int) int {
	m := under - Overhead
	if m < minMTU {
		m = minMTU
	}
	return m
}

func underlayMTU(h *netlink.Handle, dst netip.Addr) (int, error) {
	var routes []netlink.Route
	var err error
	if dst.IsValid() {
		// A route lookup only; nothing is sent.
		routes, err = h.RouteGet(net.IP(dst.AsSlice()))
	} else {
		routes, err = h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
		kept := routes[:0]
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				kept = append(kept, r)
			}
		}
		routes = kept
	}
	if err != nil {
		return 0, fmt.Errorf("vpn: underlay route to %v: %w", dst, err)
	}
	if len(routes) == 0 {
		return 0, fmt.Errorf("vpn: no underlay route to %v", dst)
	}
	r := routes[0]
	if r.MTU > 0 {
		return r.MTU, nil
	}
	link, err := h.LinkByIndex(r.LinkIndex)
	if err != nil {
		return 0, fmt.Errorf("vpn: underlay link %d: %w", r.LinkIndex, err)
	}
	return link.Attrs().MTU, nil
}

// resolveEndpoint turns host:port into ip:port for the UAPI, which takes no
// names.
func resolveEndpoint(ctx context.Context, ep string) (netip.AddrPort, error) {
	host, port, err := splitEndpoint(ep)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("vpn: resolve endpoint %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("vpn: endpoint %s has no address", host)
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(port)), nil
}
