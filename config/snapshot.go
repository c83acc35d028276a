package config

import (
	"net"
	"time"
)

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
	// Stacks are the Stack documents, rendered, sorted by name.
	Stacks []Stack `json:"stacks,omitempty"`
	// Delta, when set, says what changed since revision Delta.Base, so
	// that a role running Base can rebuild only that. It is not stored.
	Delta *Delta `json:"-"`
}

// Delta is what a revision changed from the one before it.
type Delta struct {
	Base    int64
	Site    bool     // the site changed: rebuild everything
	Changed []string // distributions added or changed
	Removed []string
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

// AdminURL is the base URL of the node's admin API ("http://host:port",
// no trailing slash), or "" when the node has no admin address. An admin
// address that names no host, or an unspecified one (":9180",
// "0.0.0.0:9180"), is reached on the node's address, else on 127.0.0.1.
func (n *Node) AdminURL() string {
	if n.Listen.Admin == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(n.Listen.Admin)
	if err != nil {
		// Validation refuses such an address; the URL shows what was given.
		return "http://" + n.Listen.Admin
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = n.Address
		if host == "" {
			host = "127.0.0.1"
		}
	}
	return "http://" + net.JoinHostPort(host, port)
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

// Stack returns the named stack, or nil.
func (s *Snapshot) Stack(name string) *Stack {
	for i := range s.Stacks {
		if s.Stacks[i].Name == name {
			return &s.Stacks[i]
		}
	}
	return nil
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
