package config

import (
	"fmt"
	"reflect"
	"time"
)

// DriftKind is a kind of resource a node's roles own outside the process
// and check against desired state. These constants are the one list:
// status.Drift* (the kinds in drift reports) are defined from them.
type DriftKind string

const (
	DriftRoute       DriftKind = "route"       // a kernel route of our protocol
	DriftWireguard   DriftKind = "wireguard"   // a tunnel's peer, key, endpoint, AllowedIPs, port or MTU
	DriftBGP         DriftKind = "bgp"         // a neighbor, policy, defined set or assignment of the speaker
	DriftListener    DriftKind = "listener"    // a socket a role serves on
	DriftCertificate DriftKind = "certificate" // the leaf served for an SNI name
	DriftFile        DriftKind = "file"        // a file of an origin's active version
)

// DriftKinds lists every kind, in display order.
var DriftKinds = []DriftKind{DriftRoute, DriftWireguard, DriftBGP, DriftListener, DriftCertificate, DriftFile}

// DriftPolicy is how nodes watch what their roles own: kernel routes,
// tunnels, sockets, certificates served, origin files. Every kind is
// checked and reported; the kinds in Heal are also put back, at most
// MaxHeals times per resource within Window (then the node reports that
// another tool is fighting it and stops healing that resource until the
// window has passed).
type DriftPolicy struct {
	// Interval between checks (a check also runs on demand).
	Interval Duration    `yaml:"interval" json:"interval,omitempty"`
	Heal     []DriftKind `yaml:"heal" json:"heal,omitempty"`
	MaxHeals int         `yaml:"maxHeals" json:"maxHeals,omitempty"`
	Window   Duration    `yaml:"window" json:"window,omitempty"`
}

// Heals reports whether the policy puts resources of kind back.
func (p DriftPolicy) Heals(kind string) bool {
	for _, k := range p.Heal {
		if string(k) == kind {
			return true
		}
	}
	return false
}

// Drift defaults: a check every 30 s costs a netlink dump, a UAPI get, a
// stat per origin file and a loopback TLS handshake per name; three heals
// in ten minutes is more than a resource that nobody fights needs.
const (
	DefaultDriftInterval = Duration(30 * time.Second)
	DefaultDriftMaxHeals = 3
	DefaultDriftWindow   = Duration(10 * time.Minute)
)

func init() {
	kinds := make([]string, len(DriftKinds))
	for i, k := range DriftKinds {
		kinds[i] = string(k)
	}
	enums[reflect.TypeFor[DriftKind]()] = kinds
}

func setDriftDefaults(p *DriftPolicy) {
	dflt(&p.Interval, DefaultDriftInterval)
	dflt(&p.MaxHeals, DefaultDriftMaxHeals)
	dflt(&p.Window, DefaultDriftWindow)
}

func (c *checker) drift(s *Site) {
	const o = "site"
	p := &s.Drift
	if p.Interval != 0 && p.Interval.D() < time.Second {
		c.errf(o, "drift.interval", "%v: want at least 1s", p.Interval.D())
	}
	if p.MaxHeals < 0 {
		c.errf(o, "drift.maxHeals", "%d: want at least 1", p.MaxHeals)
	}
	if p.Window < 0 {
		c.errf(o, "drift.window", "negative")
	}
	seen := map[DriftKind]bool{}
	for i, k := range p.Heal {
		path := fmt.Sprintf("drift.heal[%d]", i)
		switch {
		case !validDriftKind(k):
			c.errf(o, path, "%q: not a drift kind (want one of %v)", k, DriftKinds)
		case seen[k]:
			c.errf(o, path, "%q listed twice", k)
		}
		seen[k] = true
	}
}

func validDriftKind(k DriftKind) bool {
	for _, v := range DriftKinds {
		if v == k {
			return true
		}
	}
	return false
}
