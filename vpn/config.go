package vpn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/intercloud/intercloud/config"
)

// Defaults for a vpn link that does not say are filled by config
// rendering (persistentKeepalive, wireguard.mtu); this package takes them
// as given.
const (
	// Overhead is what WireGuard adds to each packet over IPv6, the worse
	// of the two families (40 IPv6 + 8 UDP + 32 WireGuard).
	Overhead = 80
	// minMTU is the IPv6 minimum; a tunnel below it is a configuration error.
	minMTU = 1280
)

// Tunnel is the desired state of one WireGuard interface: this node's side
// of one vpn link. It holds no key material, only where to read it.
type Tunnel struct {
	Link     string // the link's name, for status and logs
	Name     string // interface name, ic-<peer node>
	PeerNode string
	KeyFile  string
	Listen   int          // UDP port; 0 picks one
	Address  netip.Prefix // our tunnel address
	MTU      int          // 0: derive from the underlay route to the peer
	Peer     Key          // the peer's public key
	Endpoint string       // the peer's host:port; "" waits for it to call
	// Keepalive is the persistent keepalive: it keeps NAT mappings open
	// and makes the peer send at least this often, so its silence for
	// deadFactor intervals is our data-plane liveness signal. Required.
	Keepalive time.Duration
	// AllowedIPs is the peer's tunnel address and its cloud's CIDRs.
	AllowedIPs []netip.Prefix
}

// PeerAddr is the peer's address inside the tunnel (the BGP neighbor).
func (t *Tunnel) PeerAddr() netip.Addr {
	if len(t.AllowedIPs) == 0 {
		return netip.Addr{}
	}
	return t.AllowedIPs[0].Addr()
}

// IfName names the interface for a peer node: ic-<peer>, cut to the kernel's
// 15-character limit. The name doubles as the UAPI socket name, which every
// namespace of a host shares, so it must be unique per host.
func IfName(peer string) string {
	n := "ic-" + peer
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// FromSite returns the tunnels node must run: one per vpn link it is an end
// of. It checks everything that can be checked without touching the system.
func FromSite(site *config.Site, node string) ([]Tunnel, error) {
	self := site.Node(node)
	if self == nil {
		return nil, fmt.Errorf("vpn: node %q is not in the site", node)
	}
	var tunnels []Tunnel
	var errs []error
	for i := range site.Links {
		l := &site.Links[i]
		if l.Kind != config.LinkVPN {
			continue
		}
		me, peer, ok := l.Ends(node)
		if !ok {
			continue
		}
		t, err := tunnelFor(site, self, l, me, peer)
		if err != nil {
			errs = append(errs, fmt.Errorf("vpn: link %q: %w", l.Name, err))
			continue
		}
		tunnels = append(tunnels, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	seenName := map[string]string{}
	seenPort := map[int]string{}
	for _, t := range tunnels {
		if other, dup := seenName[t.Name]; dup {
			errs = append(errs, fmt.Errorf("vpn: links %q and %q both need interface %s (peer names share their first 12 characters, or two vpn links join the same nodes)", other, t.Link, t.Name))
		}
		seenName[t.Name] = t.Link
		if t.Listen != 0 {
			if other, dup := seenPort[t.Listen]; dup {
				errs = append(errs, fmt.Errorf("vpn: links %q and %q both listen on UDP port %d; give each end its own endpoint port", other, t.Link, t.Listen))
			}
			seenPort[t.Listen] = t.Link
		}
	}
	return tunnels, errors.Join(errs...)
}

func tunnelFor(site *config.Site, self *config.Node, l *config.Link, me, peer config.LinkEnd) (Tunnel, error) {
	if peer.Node == self.Name {
		return Tunnel{}, errors.New("both ends are the same node")
	}
	peerNode := site.Node(peer.Node)
	if peerNode == nil {
		return Tunnel{}, fmt.Errorf("peer node %q is not in the site", peer.Node)
	}
	if self.Gateway == nil || self.Gateway.Wireguard == nil {
		return Tunnel{}, fmt.Errorf("node %q has no gateway.wireguard section", self.Name)
	}
	wg := self.Gateway.Wireguard
	t := Tunnel{
		Link:      l.Name,
		Name:      IfName(peer.Node),
		PeerNode:  peer.Node,
		KeyFile:   wg.PrivateKeyFile,
		Address:   me.Tunnel,
		Keepalive: l.PersistentKeepalive.D(),
	}
	if t.KeyFile == "" {
		return Tunnel{}, fmt.Errorf("node %q: gateway.wireguard.privateKeyFile is empty", self.Name)
	}
	if !me.Tunnel.IsValid() || !peer.Tunnel.IsValid() {
		return Tunnel{}, errors.New("both ends need a tunnel address (e.g. 100.64.0.1/30)")
	}
	if me.Tunnel.Addr() == peer.Tunnel.Addr() {
		return Tunnel{}, errors.New("both ends have the same tunnel address")
	}
	if me.Tunnel.Addr().Is4() != peer.Tunnel.Addr().Is4() {
		return Tunnel{}, errors.New("tunnel addresses of the two ends are of different families")
	}
	pk, err := ParseKey(peer.PublicKey)
	if err != nil {
		return Tunnel{}, fmt.Errorf("%s.publicKey: %w", peer.Node, err)
	}
	t.Peer = pk
	if peer.Endpoint != "" {
		if _, _, err := splitEndpoint(peer.Endpoint); err != nil {
			return Tunnel{}, fmt.Errorf("%s.endpoint: %w", peer.Node, err)
		}
		t.Endpoint = peer.Endpoint
	}
	// Our own endpoint's port is where the peer sends to, so we listen there;
	// without one (behind NAT) the node-wide listenPort applies.
	t.Listen = wg.ListenPort
	if me.Endpoint != "" {
		_, port, err := splitEndpoint(me.Endpoint)
		if err != nil {
			return Tunnel{}, fmt.Errorf("%s.endpoint: %w", me.Node, err)
		}
		t.Listen = port
	}
	if t.Listen < 0 || t.Listen > 65535 {
		return Tunnel{}, fmt.Errorf("listen port %d out of range", t.Listen)
	}
	switch {
	case l.MTU != 0:
		t.MTU = l.MTU
	case wg.MTU != 0:
		t.MTU = wg.MTU
	}
	if t.MTU != 0 && (t.MTU < minMTU || t.MTU > 65535-Overhead) {
		return Tunnel{}, fmt.Errorf("mtu %d out of range [%d, %d]", t.MTU, minMTU, 65535-Overhead)
	}
	if t.Keepalive < time.Second || t.Keepalive > 65535*time.Second || t.Keepalive%time.Second != 0 {
		return Tunnel{}, fmt.Errorf("persistentKeepalive %s: want whole seconds between 1s and 65535s", t.Keepalive)
	}
	t.AllowedIPs = append(t.AllowedIPs, netip.PrefixFrom(peer.Tunnel.Addr(), peer.Tunnel.Addr().BitLen()))
	if c := site.Cloud(peerNode.Cloud); c != nil {
		for _, p := range c.CIDRs {
			p = p.Masked()
			if !slices.Contains(t.AllowedIPs, p) {
				t.AllowedIPs = append(t.AllowedIPs, p)
			}
		}
	}
	return t, nil
}

// splitEndpoint checks host:port. The host may be a name, resolved when the
// tunnel is configured.
func splitEndpoint(ep string) (string, int, error) {
	host, ps, err := net.SplitHostPort(ep)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", ep)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q has no host", ep)
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port must be 1-65535", ep)
	}
	return host, port, nil
}
