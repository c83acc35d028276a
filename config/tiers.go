package config

import (
	"fmt"
	"time"
)

// Tiers sends a distribution's (or a behavior's) misses through parent
// edges, as CloudFront's Origin Shield or ATS's parent selection, and
// lets the edges of one cloud share objects by rendezvous hashing, as
// Varnish's shard director: each object is fetched from the origin once
// per cloud, and once in all with parents.
type Tiers struct {
	// Parents are the edges misses go through: a cloud's edges, or named
	// edge nodes (or both).
	Parents TierParents `yaml:"parents" json:"parents"`
	// Mode is "shield" (every miss goes through the parents, the origin
	// only when no parent answers) or "fastest" (the parents are paths
	// beside the direct one; a miss takes the one measured best).
	Mode string `yaml:"mode" json:"mode,omitempty"`
	// Shard: the edges of a cloud share objects by rendezvous hashing.
	Shard *bool `yaml:"shard" json:"shard,omitempty"`
	// MaxHops bounds the edges a request may cross; one that reached it
	// is refused with 508.
	MaxHops int `yaml:"maxHops" json:"maxHops,omitempty"`
}

// TierParents names parent edges.
type TierParents struct {
	Cloud string   `yaml:"cloud" json:"cloud,omitempty"`
	Nodes []string `yaml:"nodes" json:"nodes,omitempty"`
}

// Tier modes.
const (
	TierShield  = "shield"
	TierFastest = "fastest"
)

// PathPolicy tunes how edges measure their candidate paths to an origin
// and choose one (edge/paths).
type PathPolicy struct {
	// Choose false always takes the paths in their configured order
	// (direct first), as an edge without measurements would.
	Choose *bool `yaml:"choose" json:"choose,omitempty"`
	// Probe is how often the paths not in use are probed.
	Probe Duration `yaml:"probe" json:"probe,omitempty"`
	// Margin: another path must be this much better (0.2: 20 %) to take
	// over, so that similar paths do not flap.
	Margin float64 `yaml:"margin" json:"margin,omitempty"`
	// Hold is the least time on a path before moving to a better one; a
	// failing path is left at once.
	Hold Duration `yaml:"hold" json:"hold,omitempty"`
	// StaleAfter: older measurements count as none.
	StaleAfter Duration `yaml:"staleAfter" json:"staleAfter,omitempty"`
}

// DistributionDNS is how GeoDNS picks edges for the distribution.
type DistributionDNS struct {
	// Policy is "geo" (the nearest edges) or "latency" (the edges that
	// measured the lowest latency towards the client's network, else geo).
	Policy string `yaml:"policy" json:"policy,omitempty"`
}

// DNS answer policies.
const (
	DNSPolicyGeo     = "geo"
	DNSPolicyLatency = "latency"
)

// Defaults of tiers and path choice.
const (
	DefaultTierMaxHops    = 4
	DefaultPathProbe      = Duration(time.Second)
	DefaultPathMargin     = 0.2
	DefaultPathHold       = Duration(3 * time.Second)
	DefaultPathStaleAfter = Duration(30 * time.Second)
)

// ChooseOn is the rendered Choose.
func (p *PathPolicy) ChooseOn() bool { return p == nil || p.Choose == nil || *p.Choose }

// ShardOn is the rendered Shard.
func (t *Tiers) ShardOn() bool { return t.Shard == nil || *t.Shard }

func setTiersDefaults(sp *Spec) {
	tiered := sp.Tiers != nil
	for _, t := range append([]*Tiers{sp.Tiers}, behaviorTiers(sp)...) {
		if t == nil {
			continue
		}
		tiered = true
		dflt(&t.Mode, TierShield)
		if t.Shard == nil {
			v := true
			t.Shard = &v
		}
		dflt(&t.MaxHops, DefaultTierMaxHops)
	}
	if tiered && sp.Paths == nil {
		sp.Paths = &PathPolicy{}
	}
	if p := sp.Paths; p != nil {
		if p.Choose == nil {
			v := true
			p.Choose = &v
		}
		dflt(&p.Probe, DefaultPathProbe)
		dflt(&p.Margin, DefaultPathMargin)
		dflt(&p.Hold, DefaultPathHold)
		dflt(&p.StaleAfter, max(DefaultPathStaleAfter, 5*p.Probe))
	}
	if sp.DNS != nil {
		dflt(&sp.DNS.Policy, DNSPolicyGeo)
	}
}

func behaviorTiers(sp *Spec) []*Tiers {
	var out []*Tiers
	for i := range sp.Behaviors {
		if t := sp.Behaviors[i].Tiers; t != nil {
			out = append(out, t)
		}
	}
	return out
}

// tiers checks a distribution's tiers, paths and DNS policy.
func (c *checker) tiers(o string, s *Snapshot, d *Distribution) {
	sp := &d.Spec
	c.tierSpec(o, "spec.tiers", s, sp, sp.Tiers)
	for j := range sp.Behaviors {
		c.tierSpec(o, fmt.Sprintf("spec.behaviors[%d].tiers", j), s, sp, sp.Behaviors[j].Tiers)
	}
	if p := sp.Paths; p != nil {
		if p.Margin < 0 || p.Margin >= 1 {
			c.errf(o, "spec.paths.margin", "margin %v out of range [0, 1) (0.2: another path must be 20 %% better)", p.Margin)
		}
		if p.Probe != 0 && p.Probe.D() < 100*time.Millisecond {
			c.errf(o, "spec.paths.probe", "probe interval %s is below 100ms", p.Probe)
		}
		if p.Hold < 0 {
			c.errf(o, "spec.paths.hold", "hold %s is negative", p.Hold)
		}
		if p.StaleAfter != 0 && p.StaleAfter < p.Probe {
			c.errf(o, "spec.paths.staleAfter", "staleAfter %s is shorter than the probe interval %s", p.StaleAfter, p.Probe)
		}
	}
	if sp.DNS != nil && !c.skip(sp.DNS.Policy) {
		switch sp.DNS.Policy {
		case "", DNSPolicyGeo, DNSPolicyLatency:
		default:
			c.errf(o, "spec.dns.policy", "unknown policy %q (geo or latency)", sp.DNS.Policy)
		}
	}
}

func (c *checker) tierSpec(o, p string, s *Snapshot, sp *Spec, t *Tiers) {
	if t == nil {
		return
	}
	switch {
	case c.skip(t.Mode):
	case t.Mode != "" && t.Mode != TierShield && t.Mode != TierFastest:
		c.errf(o, p+".mode", "unknown mode %q (shield or fastest)", t.Mode)
	case t.Mode == TierFastest && t.Parents.Cloud == "" && len(t.Parents.Nodes) == 0:
		c.errf(o, p+".parents", "mode fastest needs parents (a cloud or nodes) to choose from")
	}
	if t.MaxHops < 0 || t.MaxHops > 16 {
		c.errf(o, p+".maxHops", "maxHops %d out of range 1..16", t.MaxHops)
	}
	serves := func(n *Node) bool {
		if !n.HasRole(RoleEdge) {
			return false
		}
		if len(sp.Edges) == 0 {
			return true
		}
		for _, e := range sp.Edges {
			if e == n.Name {
				return true
			}
		}
		return false
	}
	if cl := t.Parents.Cloud; cl != "" && !c.skip(cl) {
		if s.Site.Cloud(cl) == nil {
			c.errf(o, p+".parents.cloud", "unknown cloud %q", cl)
		} else {
			any := false
			for i := range s.Site.Nodes {
				n := &s.Site.Nodes[i]
				any = any || n.Cloud == cl && serves(n)
			}
			if !any {
				c.errf(o, p+".parents.cloud", "cloud %q has no edge node serving this distribution", cl)
			}
		}
	}
	for j, name := range t.Parents.Nodes {
		q := fmt.Sprintf("%s.parents.nodes[%d]", p, j)
		n := s.Site.Node(name)
		switch {
		case c.skip(name):
		case n == nil:
			c.errf(o, q, "unknown node %q", name)
		case !serves(n):
			c.errf(o, q, "node %q is not an edge serving this distribution", name)
		}
	}
}
