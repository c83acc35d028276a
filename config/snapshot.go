package config

import "time"

// Snapshot is one revision of desired state: the site and every distribution
// with parameters substituted. It is what the controller stores and what the
// agent hands to each role; it is never mutated after it is built.
type Snapshot struct {
	Revision      int64                        `json:"revision"`
	Hash          string                       `json:"hash"`
	Time          time.Time                    `json:"time"`
	Reason        string                       `json:"reason,omitempty"`
	Site          Site                         `json:"site"`
	Distributions []Distribution               `json:"distributions"`
	Outputs       map[string]map[string]string `json:"outputs,omitempty"`
}

// Node returns the named node of the site, or nil.
func (s *Site) Node(name string) *Node {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

// Cloud returns the named cloud, or nil.
func (s *Site) Cloud(name string) *Cloud {
	for i := range s.Clouds {
		if s.Clouds[i].Name == name {
			return &s.Clouds[i]
		}
	}
	return nil
}

// HasRole reports whether the node runs role r.
func (n *Node) HasRole(r Role) bool {
	for _, x := range n.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// EdgeWeight is the DNS weight of the node (default 100).
func (n *Node) EdgeWeight() int {
	if n.Weight == nil {
		return 100
	}
	return *n.Weight
}

// Domain is the distribution's name inside the zone, without trailing dot.
func (d *Distribution) Domain(zone string) string {
	z := zone
	if len(z) > 0 && z[len(z)-1] == '.' {
		z = z[:len(z)-1]
	}
	return d.Name + "." + z
}

// Distribution returns the named distribution, or nil.
func (s *Snapshot) Distribution(name string) *Distribution {
	for i := range s.Distributions {
		if s.Distributions[i].Name == name {
			return &s.Distributions[i]
		}
	}
	return nil
}

// NodeStatus is what an agent reports about itself under its lease, and what
// roles learn about other nodes (DNS uses it to leave out dead edges).
type NodeStatus struct {
	Name     string    `json:"name"`
	Roles    []Role    `json:"roles"`
	Revision int64     `json:"revision"`
	Hash     string    `json:"hash"`
	Healthy  bool      `json:"healthy"`
	Message  string    `json:"message,omitempty"`
	Since    time.Time `json:"since"`
	Updated  time.Time `json:"updated"`
	// Unavailable lists roles this build could not run.
	Unavailable []Role `json:"unavailable,omitempty"`
	// Report is what the node's roles publish about themselves.
	Report RoleReport `json:"report,omitzero"`
}

// RoleReport is a small summary of a node's roles for status and the
// topology page; it is refreshed with the node's registration.
type RoleReport struct {
	// Edge: requests served and the share answered from cache.
	Requests int64   `json:"requests,omitempty"`
	HitRatio float64 `json:"hitRatio,omitempty"`
	// Gateway: BGP sessions and WireGuard tunnels.
	Sessions []PeerState   `json:"sessions,omitempty"`
	Tunnels  []TunnelState `json:"tunnels,omitempty"`
	Routes   int           `json:"routes,omitempty"` // routes installed in the kernel
}

// PeerState is one BGP session.
type PeerState struct {
	Peer     string `json:"peer"`     // neighbor address
	Name     string `json:"name"`     // peer node or external neighbor name
	Link     string `json:"link"`     // link name, or "external"
	State    string `json:"state"`    // established, active, idle, ...
	Accepted int    `json:"accepted"` // prefixes accepted
}

// TunnelState is one WireGuard peer.
type TunnelState struct {
	Interface     string    `json:"interface"`
	Peer          string    `json:"peer"`
	Up            bool      `json:"up"`
	LastHandshake time.Time `json:"lastHandshake,omitzero"`
}

// EdgeHealthDistribution is the distribution name under which the
// controller stores its probes of edges ("_edge/<node>"); distribution
// names cannot start with '_', so it never collides with a real one.
const EdgeHealthDistribution = "_edge"

// OriginHealth is the controller's verdict on one origin of a distribution.
type OriginHealth struct {
	Distribution string    `json:"distribution"`
	Origin       string    `json:"origin"`
	Healthy      bool      `json:"healthy"`
	Reason       string    `json:"reason,omitempty"`
	Checked      time.Time `json:"checked"`
	Since        time.Time `json:"since"`
}

// Invalidation removes paths of a distribution from every edge's cache.
type Invalidation struct {
	ID           string    `json:"id"`
	Distribution string    `json:"distribution"`
	Paths        []string  `json:"paths"`
	Time         time.Time `json:"time"`
}
