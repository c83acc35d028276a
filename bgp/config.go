// Package bgp runs the gateway's BGP speaker: an embedded GoBGP v4 server
// behind a small interface. It peers with the gateways of other clouds and
// with external routers, advertises its own cloud's CIDRs and nothing else,
// accepts from each neighbor only what that neighbor may announce, and
// reports the learned best paths. It never touches the kernel: the agent
// hands the paths to package route.
package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Kind says how a neighbor is reached; it decides the local preference.
type Kind string

const (
	KindDedicated Kind = "dedicated"
	KindVPN       Kind = "vpn"
	KindExternal  Kind = "external"
)

// LocalPref is the local preference set on import. A dedicated line beats
// the VPN for the same prefix: the VPN is the cheaper backup.
func (k Kind) LocalPref() uint32 {
	if k == KindDedicated {
		return 200
	}
	return 100
}

// Config is the desired state of the speaker.
type Config struct {
	ASN      uint32
	RouterID netip.Addr
	// ListenPort is the TCP port to accept sessions on; -1 means do not
	// listen (only connect out). A site's gateway.bgpPort is rendered
	// (179); 0 is left to GoBGP, whose own default is 179 too.
	ListenPort int
	// ListenAddresses default to every address.
	ListenAddresses []netip.Addr
	// Announce are this cloud's CIDRs: the only prefixes ever exported.
	Announce  []netip.Prefix
	Neighbors []Neighbor
}

// Neighbor is one BGP peer.
type Neighbor struct {
	// Name identifies the neighbor in logs, metrics and the API (the link
	// name, or the external neighbor's name).
	Name    string
	Kind    Kind
	Address netip.Addr
	// LocalAddress binds the session's source address (optional).
	LocalAddress netip.Addr
	ASN          uint32
	// Port is the neighbor's BGP port (0: 179).
	Port int
	// Allowed is the import policy: only these prefixes or longer ones are
	// accepted from the neighbor.
	Allowed []netip.Prefix
	// MaxPrefix shuts the session down when the neighbor sends more
	// prefixes (0: no limit).
	MaxPrefix uint32
	// Password turns on TCP MD5 (RFC 2385).
	Password string
	// HoldTime and Keepalive come rendered for a site's links and
	// neighbors (FromSite). Zero is left to GoBGP, whose defaults are RFC
	// 4271's (90 s, a third of the hold time); this package keeps none.
	HoldTime  time.Duration
	Keepalive time.Duration
	// ConnectRetry is the pause between connection attempts (default 5 s).
	ConnectRetry time.Duration
	Passive      bool
}

// Validate reports every problem of the config at once.
func (c *Config) Validate() error {
	var errs []error
	if c.ASN == 0 {
		errs = append(errs, errors.New("asn: must be set"))
	}
	if !c.RouterID.Is4() {
		errs = append(errs, fmt.Errorf("routerId %v: must be an IPv4 address", c.RouterID))
	}
	if c.ListenPort < -1 || c.ListenPort > 65535 {
		errs = append(errs, fmt.Errorf("listen port %d: out of range", c.ListenPort))
	}
	for _, p := range c.Announce {
		if !p.IsValid() || p != p.Masked() {
			errs = append(errs, fmt.Errorf("cidr %v: not a network prefix", p))
		}
	}
	seen := map[netip.Addr]string{}
	names := map[string]bool{}
	for i := range c.Neighbors {
		n := &c.Neighbors[i]
		if err := n.validate(); err != nil {
			errs = append(errs, fmt.Errorf("neighbor %q: %w", n.Name, err))
			continue
		}
		if other, dup := seen[n.Address]; dup {
			errs = append(errs, fmt.Errorf("neighbor %q: address %v already used by %q", n.Name, n.Address, other))
		}
		if names[n.Name] {
			errs = append(errs, fmt.Errorf("neighbor %q: duplicate name", n.Name))
		}
		seen[n.Address], names[n.Name] = n.Name, true
	}
	return errors.Join(errs...)
}

func (n *Neighbor) validate() error {
	var errs []error
	if n.Name == "" {
		errs = append(errs, errors.New("name: must be set"))
	}
	switch n.Kind {
	case KindDedicated, KindVPN, KindExternal:
	default:
		errs = append(errs, fmt.Errorf("kind %q: want dedicated, vpn or external", n.Kind))
	}
	if !n.Address.IsValid() || n.Address.IsUnspecified() {
		errs = append(errs, fmt.Errorf("address %v: must be a unicast address", n.Address))
	}
	if n.LocalAddress.IsValid() && n.LocalAddress.Is4() != n.Address.Is4() {
		errs = append(errs, fmt.Errorf("local address %v: not the family of %v", n.LocalAddress, n.Address))
	}
	if n.ASN == 0 {
		errs = append(errs, errors.New("asn: must be set"))
	}
	if n.Port < 0 || n.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: out of range", n.Port))
	}
	for _, p := range n.Allowed {
		if !p.IsValid() || p != p.Masked() {
			errs = append(errs, fmt.Errorf("prefix %v: not a network prefix", p))
		}
	}
	if n.HoldTime != 0 && n.HoldTime < 3*time.Second {
		errs = append(errs, fmt.Errorf("holdTime %v: must be 0 or at least 3s (RFC 4271)", n.HoldTime))
	}
	if n.Keepalive != 0 && n.HoldTime != 0 && n.Keepalive >= n.HoldTime {
		errs = append(errs, fmt.Errorf("keepalive %v: must be shorter than holdTime %v", n.Keepalive, n.HoldTime))
	}
	if len(n.Password) > 80 {
		errs = append(errs, errors.New("password: longer than the 80 bytes TCP MD5 allows"))
	}
	return errors.Join(errs...)
}

// Neighbor returns the neighbor with that address, or nil.
func (c *Config) Neighbor(a netip.Addr) *Neighbor {
	for i := range c.Neighbors {
		if c.Neighbors[i].Address == a {
			return &c.Neighbors[i]
		}
	}
	return nil
}

// sessionEqual reports whether two neighbor configs need the same session:
// only Allowed and Kind (policy) may differ.
func sessionEqual(a, b Neighbor) bool {
	a.Allowed, b.Allowed = nil, nil
	a.Kind, b.Kind = "", ""
	a.Name, b.Name = "", ""
	return a.Address == b.Address && a.LocalAddress == b.LocalAddress && a.ASN == b.ASN &&
		a.Port == b.Port && a.MaxPrefix == b.MaxPrefix && a.Password == b.Password &&
		a.HoldTime == b.HoldTime && a.Keepalive == b.Keepalive &&
		a.ConnectRetry == b.ConnectRetry && a.Passive == b.Passive
}

// policyEqual reports whether the import policy for two neighbor configs
// is the same.
func policyEqual(a, b Neighbor) bool {
	return a.Kind == b.Kind && slices.Equal(a.Allowed, b.Allowed)
}
