package topology

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

// Input is what runs, as the controller reads it from the store.
type Input struct {
	// Snapshot is the current stored revision (nil: nothing applied): the
	// clouds, the links that should exist, and the distributions.
	Snapshot *config.Snapshot
	// Nodes are the live registrations, by name.
	Nodes map[string]status.NodeStatus
	// States is the controller's verdict per node (current, drifted, ...);
	// a live node without one is "live", a missing one "down".
	States map[string]string
	// Health is the controller's verdict per "distribution/origin".
	Health map[string]status.OriginHealth
	At     time.Time
}

// Build assembles the graph. It does no I/O.
func Build(in Input) *Graph {
	g := &Graph{At: in.At, Clouds: []Cloud{}, Links: []Link{}, Distributions: []Distribution{}}
	snap := in.Snapshot
	if snap == nil {
		snap = &config.Snapshot{}
	}
	g.Site, g.Revision, g.Hash = snap.Site.Name, snap.Revision, snap.Hash
	declared := map[string]bool{}
	for _, cl := range snap.Site.Clouds {
		c := Cloud{Name: cl.Name, ASN: cl.ASN, Nodes: []Node{}}
		for _, p := range cl.CIDRs {
			c.CIDRs = append(c.CIDRs, p.String())
		}
		for i := range snap.Site.Nodes {
			n := &snap.Site.Nodes[i]
			if n.Cloud == cl.Name {
				declared[n.Name] = true
				c.Nodes = append(c.Nodes, node(n.Name, n.Roles, in))
			}
		}
		g.Clouds = append(g.Clouds, c)
	}
	var strays []Node
	for _, name := range slices.Sorted(maps.Keys(in.Nodes)) {
		if !declared[name] {
			strays = append(strays, node(name, in.Nodes[name].Roles, in))
		}
	}
	if len(strays) > 0 {
		g.Clouds = append(g.Clouds, Cloud{Nodes: strays})
	}
	for i := range g.Clouds {
		slices.SortStableFunc(g.Clouds[i].Nodes, func(a, b Node) int {
			ga, gb := a.HasRole(string(config.RoleGateway)), b.HasRole(string(config.RoleGateway))
			if ga != gb {
				if ga {
					return -1
				}
				return 1
			}
			return strings.Compare(a.Name, b.Name)
		})
	}
	g.Links = links(snap.Site.Links, in.Nodes)
	g.External = externals(&snap.Site, in.Nodes)
	for i := range snap.Distributions {
		g.Distributions = append(g.Distributions, distribution(&snap.Distributions[i], snap.Site.DNS.Zone, in.Health))
	}
	slices.SortFunc(g.Distributions, func(a, b Distribution) int { return strings.Compare(a.Name, b.Name) })
	return g
}

func node(name string, roles []config.Role, in Input) Node {
	n := Node{Name: name, State: "down"}
	reg, live := in.Nodes[name]
	if live {
		roles = reg.Roles
		n.Live, n.Healthy, n.Revision, n.Message = true, reg.Healthy, reg.Revision, reg.Message
		n.Requests, n.HitRatio, n.Routes = reg.Report.Requests, reg.Report.HitRatio, reg.Report.Routes
		n.DriftedResources = reg.Drifted
		n.State = "live"
		if s := in.States[name]; s != "" {
			n.State = s
		}
	}
	n.Drifted = n.State == "drifted" || n.DriftedResources > 0
	n.Roles = make([]string, 0, len(roles))
	for _, r := range config.Roles {
		if slices.Contains(roles, r) {
			n.Roles = append(n.Roles, string(r))
		}
	}
	return n
}

// links joins the site's links with what the gateways at their ends
// report. A gateway names the session of a site link after the link, and
// a tunnel after the peer node; other sessions are external neighbors.
func links(declared []config.Link, nodes map[string]status.NodeStatus) []Link {
	out := make([]Link, 0, len(declared))
	for _, dl := range declared {
		l := Link{Name: dl.Name, Kind: string(dl.Kind), A: dl.A.Node, B: dl.B.Node, State: Unknown}
		var states []string
		for _, end := range [][2]string{{dl.A.Node, dl.B.Node}, {dl.B.Node, dl.A.Node}} {
			reg, ok := nodes[end[0]]
			if !ok {
				continue
			}
			for _, s := range reg.Report.Sessions {
				if s.Name != dl.Name || s.Link == "external" {
					continue
				}
				if !slices.Contains(states, s.State) {
					states = append(states, s.State)
				}
				l.Accepted += s.Accepted
			}
			if dl.Kind == config.LinkVPN {
				for _, t := range reg.Report.Tunnels {
					if t.Peer != end[1] {
						continue
					}
					l.TunnelUp = l.TunnelUp || t.Up
					if t.LastHandshake.After(l.LastHandshake) {
						l.LastHandshake = t.LastHandshake
					}
				}
			}
		}
		switch {
		case slices.Contains(states, "established"):
			l.State = Up
		case len(states) > 0:
			l.State = Down
		}
		l.Session = strings.Join(states, "/")
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Link) int { return strings.Compare(a.Name, b.Name) })
	// BGP prefers a dedicated line (local preference 200) over a VPN
	// (100): per pair of gateways, the best up link carries the traffic.
	best := map[[2]string]int{}
	for i, l := range out {
		if l.State != Up {
			continue
		}
		pair := [2]string{min(l.A, l.B), max(l.A, l.B)}
		if j, ok := best[pair]; !ok || pref(l.Kind) > pref(out[j].Kind) {
			best[pair] = i
		}
	}
	for _, i := range best {
		out[i].Carrying = true
	}
	return out
}

// externals are the BGP sessions of gateways with neighbors outside the
// site: those the gateways report, and those the revision declares that no
// gateway reports (state unknown).
func externals(site *config.Site, nodes map[string]status.NodeStatus) []External {
	siteLinks := map[string]bool{}
	for _, l := range site.Links {
		siteLinks[l.Name] = true
	}
	var ext []External
	reported := map[[2]string]bool{}
	for _, name := range slices.Sorted(maps.Keys(nodes)) {
		for _, s := range nodes[name].Report.Sessions {
			if s.Link == "external" || !siteLinks[s.Name] {
				ext = append(ext, External{Name: s.Name, Peer: s.Peer, Node: name, State: s.State, Accepted: s.Accepted})
				reported[[2]string{name, s.Name}] = true
			}
		}
	}
	for _, n := range site.Nodes {
		if n.Gateway == nil {
			continue
		}
		for _, nb := range n.Gateway.Neighbors {
			if !reported[[2]string{n.Name, nb.Name}] {
				ext = append(ext, External{Name: nb.Name, Peer: nb.Address.String(), Node: n.Name, State: Unknown})
			}
		}
	}
	slices.SortFunc(ext, func(a, b External) int {
		return strings.Compare(a.Node+"\x00"+a.Name, b.Node+"\x00"+b.Name)
	})
	return ext
}

func pref(kind string) int {
	if kind == string(config.LinkDedicated) {
		return 2
	}
	return 1
}

func distribution(d *config.Distribution, zone string, health map[string]status.OriginHealth) Distribution {
	out := Distribution{Name: d.Name, Domain: d.Domain(zone), Aliases: d.Spec.Aliases, Disabled: d.Spec.Disabled,
		Behaviors: []Behavior{}, Origins: []Origin{}}
	for _, b := range d.Spec.Behaviors {
		bv := Behavior{Path: b.Path, Target: b.Target, Cached: b.Cache == nil || *b.Cache, Routes: []Route{}}
		if g, ok := d.Spec.OriginGroups[b.Target]; ok {
			for _, m := range g.Members {
				r := Route{Origin: m, Use: "standby"}
				switch {
				case m == g.Active:
					r.Use = "active"
				case g.Canary != nil && g.Canary.Member == m:
					r.Use, r.Weight = "canary", g.Canary.Weight
				}
				bv.Routes = append(bv.Routes, r)
			}
		} else {
			bv.Routes = append(bv.Routes, Route{Origin: b.Target, Use: "direct"})
		}
		out.Behaviors = append(out.Behaviors, bv)
	}
	for _, name := range slices.Sorted(maps.Keys(d.Spec.Origins)) {
		o := Origin{Name: name, URL: d.Spec.Origins[name].URL, Health: "unchecked"}
		if h, ok := health[d.Name+"/"+name]; ok {
			o.Health, o.Reason = "unhealthy", h.Reason
			if h.Healthy {
				o.Health, o.Reason = "healthy", ""
			}
		}
		for _, gname := range slices.Sorted(maps.Keys(d.Spec.OriginGroups)) {
			g := d.Spec.OriginGroups[gname]
			switch {
			case g.Active == name:
				o.Groups = append(o.Groups, gname+": active")
			case g.Canary != nil && g.Canary.Member == name:
				o.Groups = append(o.Groups, fmt.Sprintf("%s: canary %d%%", gname, g.Canary.Weight))
			case slices.Contains(g.Members, name):
				o.Groups = append(o.Groups, gname+": standby")
			}
		}
		out.Origins = append(out.Origins, o)
	}
	return out
}
