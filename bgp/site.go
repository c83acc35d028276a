package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/intercloud/intercloud/config"
)

// FromSite derives the speaker's config for one gateway node: its cloud
// gives the ASN and the CIDRs to announce; each link to another gateway
// gives a neighbor (the peer end's address on a dedicated link, its tunnel
// address on a vpn link) allowed to announce its own cloud's CIDRs; the
// node's external neighbors are added as declared.
// gatewayConnectRetry is how often the active end of a link between two
// of our gateways retries: its peer is known to be there, so a failed
// attempt (tunnel not up yet, line just back) should not cost 5 s.
const gatewayConnectRetry = time.Second

func FromSite(site *config.Site, node string) (Config, error) {
	n := site.Node(node)
	if n == nil {
		return Config{}, fmt.Errorf("node %q: not in the site", node)
	}
	cloud := site.Cloud(n.Cloud)
	if cloud == nil {
		return Config{}, fmt.Errorf("node %q: cloud %q not in the site", node, n.Cloud)
	}
	gw := n.Gateway
	if gw == nil {
		gw = &config.Gateway{}
	}
	cfg := Config{
		ASN:        cloud.ASN,
		RouterID:   gw.RouterID,
		ListenPort: gw.ListenPort,
		Announce:   append([]netip.Prefix(nil), cloud.CIDRs...),
	}
	var errs []error
	for _, l := range site.Links {
		me, peer, ok := l.Ends(node)
		if !ok {
			continue
		}
		pn := site.Node(peer.Node)
		if pn == nil {
			errs = append(errs, fmt.Errorf("link %q: node %q not in the site", l.Name, peer.Node))
			continue
		}
		pc := site.Cloud(pn.Cloud)
		if pc == nil {
			errs = append(errs, fmt.Errorf("link %q: cloud %q of node %q not in the site", l.Name, pn.Cloud, pn.Name))
			continue
		}
		nb := Neighbor{
			Name:      l.Name,
			ASN:       pc.ASN,
			Allowed:   append([]netip.Prefix(nil), pc.CIDRs...),
			MaxPrefix: l.MaxPrefix,
			Password:  l.Password,
			HoldTime:  l.HoldTime.D(),
			Keepalive: l.Keepalive.D(),
			// Both ends of a link are ours: one end (the greater node name)
			// only listens, so the two never open crossing connections at
			// the same instant (a collision once left both ends in
			// OpenConfirm for a minute); the other retries every second.
			Passive:      me.Node > peer.Node,
			ConnectRetry: gatewayConnectRetry,
		}
		if pn.Gateway != nil && pn.Gateway.ListenPort > 0 {
			nb.Port = pn.Gateway.ListenPort
		}
		switch l.Kind {
		case config.LinkDedicated:
			nb.Kind, nb.Address, nb.LocalAddress = KindDedicated, peer.Address, me.Address
		case config.LinkVPN:
			nb.Kind, nb.Address, nb.LocalAddress = KindVPN, peer.Tunnel.Addr(), me.Tunnel.Addr()
		default:
			errs = append(errs, fmt.Errorf("link %q: unknown kind %q", l.Name, l.Kind))
			continue
		}
		cfg.Neighbors = append(cfg.Neighbors, nb)
	}
	for _, x := range gw.Neighbors {
		cfg.Neighbors = append(cfg.Neighbors, Neighbor{
			Name:      x.Name,
			Kind:      KindExternal,
			Address:   x.Address,
			ASN:       x.ASN,
			Allowed:   append([]netip.Prefix(nil), x.Prefixes...),
			MaxPrefix: x.MaxPrefix,
			Password:  x.Password,
			HoldTime:  gw.HoldTime.D(),
		})
	}
	if !cfg.RouterID.IsValid() {
		// A stable IPv4 address of this node serves as router ID when none
		// is configured.
		for _, nb := range cfg.Neighbors {
			if nb.LocalAddress.Is4() {
				cfg.RouterID = nb.LocalAddress
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("node %q: %w", node, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("node %q: %w", node, err)
	}
	return cfg, nil
}
