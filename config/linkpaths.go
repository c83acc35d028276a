package config

import "fmt"

// Gateway links as candidate paths of edges. Where two clouds are joined
// by several links (a dedicated line and a VPN), an edge may send a fetch
// over a link of its choosing although the link ends on a gateway, not on
// the edge: the edge marks the connection's packets with the link's DSCP,
// and every gateway looks up the routes learned over that link in a table
// of the link's own, selected by an `ip rule` on the DSCP (the forward
// way) and by a connection mark the gateway sets when it first sees the
// DSCP (the way back: the origin's replies carry no DSCP). Unmarked
// traffic keeps the main table: the path BGP prefers.
//
// Both values derive from the site alone, so that edges and gateways
// agree without talking to each other.

const (
	// LinkDSCPFirst and LinkDSCPLast bound the DSCP values links use. The
	// kernel's `ip rule tos` selector compares only the TOS bits 0x1c of
	// the old RFC 1349 field, that is DSCP 1..7; 1 is Lower Effort
	// (RFC 8622), which networks may deprioritise, so links take 2..7.
	LinkDSCPFirst = 2
	LinkDSCPLast  = 7
	// MaxLinksPerCloudPair is how many links may join one pair of clouds
	// as candidate paths: one DSCP value each.
	MaxLinksPerCloudPair = LinkDSCPLast - LinkDSCPFirst + 1
	// LinkTableBase: link i of the site (0-based, in site order) keeps
	// its learned routes in kernel table LinkTableBase+i, far from the
	// main (254), default (253), local (255) tables and the small numbers
	// operators use by hand.
	LinkTableBase = 25000
	// LinkRulePriority is the priority of the link rules (`ip rule`):
	// before the main table's 32766.
	LinkRulePriority = 9000
	// LinkMarkBase is the connection mark (and packet mark) of a link's
	// connections: LinkMarkBase|DSCP<<8, all of it under LinkMarkMask (the
	// low byte and high byte of the mark are left to others).
	LinkMarkBase = 0x1c0000
	LinkMarkMask = 0xffff00
)

// LinkPath is one link as a candidate path between two clouds.
type LinkPath struct {
	Link string   `json:"link"`
	Kind LinkKind `json:"kind"`
	// DSCP marks the path's packets: its index among the links joining
	// the same two clouds, from LinkDSCPFirst. Links of other cloud pairs
	// reuse the values: their tables hold other clouds' routes, and a
	// rule whose table has no route for a packet passes it on.
	DSCP int `json:"dscp"`
	// Table is the kernel routing table of the routes learned over it.
	Table int `json:"table"`
}

// TOS is the IPv4 TOS (IPv6 traffic class) byte of the path: the DSCP
// in its upper six bits.
func (p LinkPath) TOS() int { return p.DSCP << 2 }

// Mark is the connection and packet mark of the path's connections.
func (p LinkPath) Mark() uint32 { return LinkMarkBase | uint32(p.DSCP)<<8 }

// LinkPaths are the links joining clouds a and b, in site order, as
// candidate paths; nil unless there are several (one link is the only
// way: nothing to choose). Links to unknown nodes and links beyond
// MaxLinksPerCloudPair (which validation refuses) are left out.
func (s *Site) LinkPaths(a, b string) []LinkPath {
	if a == b {
		return nil
	}
	var out []LinkPath
	for i := range s.Links {
		l := &s.Links[i]
		ca, cb := s.nodeCloud(l.A.Node), s.nodeCloud(l.B.Node)
		if !(ca == a && cb == b || ca == b && cb == a) {
			continue
		}
		if len(out) == MaxLinksPerCloudPair {
			break
		}
		out = append(out, LinkPath{Link: l.Name, Kind: l.Kind, DSCP: LinkDSCPFirst + len(out), Table: LinkTableBase + i})
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

// LinkPathsOf are the candidate paths of the links node ends, each
// with the DSCP and table of LinkPaths: what a gateway installs.
func (s *Site) LinkPathsOf(node string) []LinkPath {
	me := s.Node(node)
	if me == nil {
		return nil
	}
	var out []LinkPath
	seen := map[string]bool{}
	for i := range s.Links {
		l := &s.Links[i]
		_, peer, ok := l.Ends(node)
		if !ok {
			continue
		}
		pc := s.nodeCloud(peer.Node)
		if pc == "" || seen[pc] {
			continue
		}
		seen[pc] = true
		for _, p := range s.LinkPaths(me.Cloud, pc) {
			if ll := s.link(p.Link); ll != nil {
				if _, _, mine := ll.Ends(node); mine {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

func (s *Site) nodeCloud(node string) string {
	if n := s.Node(node); n != nil {
		return n.Cloud
	}
	return ""
}

func (s *Site) link(name string) *Link {
	for i := range s.Links {
		if s.Links[i].Name == name {
			return &s.Links[i]
		}
	}
	return nil
}

// linkPaths checks that no pair of clouds has more links than DSCP
// values, and that no gateway's learned-route table is a link's table.
func (c *checker) linkPaths(s *Site) {
	const o = "site"
	pairs := map[[2]string][]int{}
	for i := range s.Links {
		l := &s.Links[i]
		a, b := s.nodeCloud(l.A.Node), s.nodeCloud(l.B.Node)
		if a == "" || b == "" || a == b {
			continue
		}
		if b < a {
			a, b = b, a
		}
		k := [2]string{a, b}
		pairs[k] = append(pairs[k], i)
		if n := len(pairs[k]); n == MaxLinksPerCloudPair+1 {
			c.errf(o, fmt.Sprintf("links[%d]", i), "more than %d links join clouds %q and %q: each needs a DSCP value of %d..%d to be a path edges can choose",
				MaxLinksPerCloudPair, a, b, LinkDSCPFirst, LinkDSCPLast)
		}
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.Gateway == nil || n.Gateway.Table == 0 {
			continue
		}
		if t := n.Gateway.Table - LinkTableBase; t >= 0 && t < len(s.Links) {
			c.errf(o, fmt.Sprintf("nodes[%d].gateway.table", i), "table %d is link %q's (links use tables %d..%d)",
				n.Gateway.Table, s.Links[t].Name, LinkTableBase, LinkTableBase+len(s.Links)-1)
		}
	}
}
