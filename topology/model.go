// Package topology builds the picture of a site from what runs — node
// registrations and what their roles report, origin health, and the
// current stored revision for distributions, behaviors and origins — and
// draws it as SVG (the controller's /ui) or Graphviz DOT (intercloud
// graph). See README.md.
package topology

import (
	"fmt"
	"strings"
	"time"
)

// Graph is the site as it runs at At. Its JSON is what GET /v1/topology
// answers; every list is in a stable order so that drawings are
// reproducible.
type Graph struct {
	Site     string    `json:"site"`
	Revision int64     `json:"revision"`
	Hash     string    `json:"hash,omitempty"`
	At       time.Time `json:"at"` // ages (handshakes) are relative to it
	Clouds   []Cloud   `json:"clouds"`
	Links    []Link    `json:"links"`
	// External are BGP neighbors outside the site (on-premises routers).
	External      []External     `json:"external,omitempty"`
	Distributions []Distribution `json:"distributions"`
}

// Cloud is one cloud and the nodes in it: gateways first, then by name.
// Nodes that register but that the revision does not declare are in a
// cloud with an empty name.
type Cloud struct {
	Name  string   `json:"name"`
	ASN   uint32   `json:"asn,omitempty"`
	CIDRs []string `json:"cidrs,omitempty"`
	Nodes []Node   `json:"nodes"`
}

// Node is one node as it runs.
type Node struct {
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Live    bool     `json:"live"`
	Healthy bool     `json:"healthy"`
	// State is the controller's verdict against the current revision:
	// current, applying, behind, drifted, held, or down.
	State    string `json:"state"`
	Revision int64  `json:"revision,omitempty"`
	Message  string `json:"message,omitempty"`
	// Drifted draws the "drifted" badge: the node runs another hash than
	// the revision's (State drifted), or resources it owns were changed
	// behind its back (DriftedResources, from its drift checks).
	Drifted          bool `json:"drifted,omitempty"`
	DriftedResources int  `json:"driftedResources,omitempty"`
	// Edge.
	Requests int64   `json:"requests,omitempty"`
	HitRatio float64 `json:"hitRatio,omitempty"`
	// Gateway: routes installed in the kernel.
	Routes int `json:"routes,omitempty"`
}

// HasRole reports whether the node runs role r.
func (n *Node) HasRole(r string) bool {
	for _, x := range n.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// detail is the line under a node's roles in both drawings: its revision
// and state, an edge's hit ratio, a gateway's routes; or that it is not
// registered.
func (n *Node) detail() string {
	if !n.Live {
		return "not registered"
	}
	d := []string{fmt.Sprintf("rev %d %s", n.Revision, n.State)}
	if n.HasRole("edge") {
		d = append(d, fmt.Sprintf("hit %.1f%% of %d", n.HitRatio*100, n.Requests))
	}
	if n.HasRole("gateway") {
		d = append(d, fmt.Sprintf("%d routes", n.Routes))
	}
	return strings.Join(d, " · ")
}

// Link states.
const (
	Up      = "up"
	Down    = "down"
	Unknown = "unknown" // neither end reports it
)

// Link is a dedicated line or a VPN between two gateways, with the BGP
// session over it and, for a VPN, its WireGuard tunnel.
type Link struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // dedicated or vpn
	A    string `json:"a"`
	B    string `json:"b"`
	// State is up when an end reports its BGP session established, down
	// when the ends report it otherwise, unknown when no end reports it.
	State string `json:"state"`
	// Session is the BGP state as the ends report it ("established",
	// "active", ...; both when they differ: "established/idle").
	Session  string `json:"session,omitempty"`
	Accepted int    `json:"accepted,omitempty"` // prefixes accepted, both ends
	// Carrying: the link the pair's traffic takes — the up link of the
	// highest local preference (dedicated before vpn), as BGP chooses.
	Carrying bool `json:"carrying,omitempty"`
	// VPN: whether an end reports the tunnel up, and its latest handshake.
	TunnelUp      bool      `json:"tunnelUp,omitempty"`
	LastHandshake time.Time `json:"lastHandshake,omitzero"`
}

// External is a BGP session of a gateway with a neighbor outside the site.
type External struct {
	Name     string `json:"name"`
	Peer     string `json:"peer"` // its address
	Node     string `json:"node"` // our gateway
	State    string `json:"state"`
	Accepted int    `json:"accepted,omitempty"`
}

// Distribution is one hostname with its behaviors and origins.
type Distribution struct {
	Name      string     `json:"name"`
	Domain    string     `json:"domain"`
	Aliases   []string   `json:"aliases,omitempty"`
	Disabled  bool       `json:"disabled,omitempty"`
	Behaviors []Behavior `json:"behaviors"`
	Origins   []Origin   `json:"origins"`
}

// Behavior is a path pattern and the origins it reaches.
type Behavior struct {
	Path   string  `json:"path"`
	Target string  `json:"target"`
	Cached bool    `json:"cached"`
	Routes []Route `json:"routes"`
}

// Route is how a behavior reaches one origin.
type Route struct {
	Origin string `json:"origin"`
	// Use: "direct" (the target is the origin), "active", "canary" (with
	// Weight percent of clients), or "standby" (a group member not
	// serving now, where traffic fails over to).
	Use    string `json:"use"`
	Weight int    `json:"weight,omitempty"`
}

// Origin is one origin of a distribution and the controller's verdict.
type Origin struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Health: healthy, unhealthy, or unchecked (no health block, or not
	// probed yet).
	Health string `json:"health"`
	Reason string `json:"reason,omitempty"`
	// Groups says what the origin is in each origin group that has it:
	// "web: active", "web: canary 10%", "web: standby".
	Groups []string `json:"groups,omitempty"`
}
