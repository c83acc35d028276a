package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/intercloud/intercloud/config"
)

// Impact is what one change of a plan touches: the nodes that reapply,
// the DNS names whose answers change, the cached objects to invalidate or
// that become unreachable, the BGP announcements that change, the
// importers an output change reaches, and the risks of cutting traffic.
type Impact struct {
	Object string            `json:"object"`
	Kind   config.ChangeKind `json:"kind"`
	// Nodes reapply: what they run changes. It names at most
	// maxImpactNodes of them, in name order; NodeCount counts them all (a
	// plan of thousands of distributions on hundreds of edges would
	// otherwise repeat every edge for each).
	Nodes     []string `json:"nodes,omitempty"`
	NodeCount int      `json:"nodeCount,omitempty"`
	// DNS: "shop.cdn.example.test: starts answering".
	DNS []string `json:"dns,omitempty"`
	// Invalidate: path patterns whose cached copies are still served but
	// no longer what the config says ("intercloud invalidate" them).
	Invalidate []CacheImpact `json:"invalidate,omitempty"`
	// Unreachable: cached copies no request reaches any more; they age out.
	Unreachable []CacheImpact `json:"unreachable,omitempty"`
	BGP         []string      `json:"bgp,omitempty"`
	// Reaches: the stacks and distributions an output change re-renders.
	Reaches []config.Reach `json:"reaches,omitempty"`
	// Imports: the changed outputs this object imports (it is re-rendered
	// because of them).
	Imports []string `json:"imports,omitempty"`
	Risks   []string `json:"risks,omitempty"`
}

// CacheImpact names cached objects of a distribution by behavior path
// pattern, as `intercloud invalidate` takes them.
type CacheImpact struct {
	Distribution string   `json:"distribution"`
	Paths        []string `json:"paths"`
	Why          string   `json:"why"`
}

// healthView is what the controller knows at plan time: its origin health
// checks and the nodes registered live. Tests give their own.
type healthView struct {
	// origin reports the health checker's verdict on an origin of the
	// current revision; known is false when it is not probed.
	origin func(dist, origin string) (healthy, known bool)
	// live returns the live nodes; it is called at most once, and only
	// when a change needs it.
	live func() (map[string]bool, error)
}

// impactOf works out what each change touches. It reads the objects the
// changes name (by binary search: snapshots keep distributions in name
// order) and not the rest of the site, except where a site change can
// reach every distribution (an edge node's liveness for pinned
// distributions), where it reads the distributions' edge lists once.
func impactOf(cur, next *config.Snapshot, changes []config.Change, hv healthView) ([]Impact, error) {
	ix := &impacts{cur: cur, next: next, hv: hv}
	var changedDists []string
	for _, c := range changes {
		if n, ok := strings.CutPrefix(c.Object, "distribution "); ok {
			changedDists = append(changedDists, n)
		}
	}
	reaches := map[string][]config.Reach{} // exporter -> what its changed outputs reach
	imports := map[string][]string{}       // importer object -> the changed outputs it imports
	if outs := config.ChangedOutputs(cur, next, changedDists); len(outs) > 0 {
		for _, r := range config.Importers(next, outs) {
			imports[r.Object] = r.Via
			for _, v := range r.Via {
				exp, _, _ := strings.Cut(v, ".")
				reaches[exp] = appendReach(reaches[exp], r.Object, v)
			}
		}
	}
	out := make([]Impact, 0, len(changes))
	for _, c := range changes {
		im := Impact{Object: c.Object, Kind: c.Kind, Imports: imports[c.Object]}
		switch {
		case c.Object == "site":
			if err := ix.site(&im, c); err != nil {
				return nil, err
			}
		case strings.HasPrefix(c.Object, "stack "):
			im.Reaches = reaches[strings.TrimPrefix(c.Object, "stack ")]
		default:
			name := strings.TrimPrefix(c.Object, "distribution ")
			if err := ix.distribution(&im, name); err != nil {
				return nil, err
			}
			im.Reaches = reaches[name]
		}
		im.NodeCount = len(im.Nodes)
		im.Nodes = im.Nodes[:min(len(im.Nodes), maxImpactNodes):min(len(im.Nodes), maxImpactNodes)]
		out = append(out, im)
	}
	return out, nil
}

// maxImpactNodes bounds the node names of one change's impact.
const maxImpactNodes = 20

func appendReach(rs []config.Reach, object, via string) []config.Reach {
	for i := range rs {
		if rs[i].Object == object {
			if !slices.Contains(rs[i].Via, via) {
				rs[i].Via = append(rs[i].Via, via)
			}
			return rs
		}
	}
	return append(rs, config.Reach{Object: object, Via: []string{via}})
}

type impacts struct {
	cur, next *config.Snapshot
	hv        healthView
	liveNodes map[string]bool
	serving   map[*config.Site][]string
}

// servingNodes are the nodes a distribution change makes reapply: every
// edge (they serve every distribution) and every DNS server.
func (ix *impacts) servingNodes(site *config.Site) []string {
	if out, ok := ix.serving[site]; ok {
		return out
	}
	var out []string
	for _, n := range site.Nodes {
		if n.HasRole(config.RoleEdge) || n.HasRole(config.RoleDNS) {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	if ix.serving == nil {
		ix.serving = map[*config.Site][]string{}
	}
	ix.serving[site] = out
	return out
}

func (ix *impacts) live() (map[string]bool, error) {
	if ix.liveNodes == nil {
		l, err := ix.hv.live()
		if err != nil {
			return nil, fmt.Errorf("plan: live nodes: %w", err)
		}
		if l == nil {
			l = map[string]bool{}
		}
		ix.liveNodes = l
	}
	return ix.liveNodes, nil
}

// dist finds a distribution by name in a snapshot (sorted by name: see
// Plan).
func dist(s *config.Snapshot, name string) *config.Distribution {
	if i, ok := slices.BinarySearchFunc(s.Distributions, name, func(d config.Distribution, n string) int { return strings.Compare(d.Name, n) }); ok {
		return &s.Distributions[i]
	}
	return nil
}

// names are the DNS names a distribution answers for.
func names(d *config.Distribution, zone string) []string {
	if d == nil || d.Spec.Disabled {
		return nil
	}
	return append([]string{d.Domain(zone)}, d.Spec.Aliases...)
}

func (ix *impacts) distribution(im *Impact, name string) error {
	old, new := dist(ix.cur, name), dist(ix.next, name)
	var oldNames, newNames []string
	if old != nil {
		oldNames = names(old, ix.cur.Site.DNS.Zone)
	}
	if new != nil {
		newNames = names(new, ix.next.Site.DNS.Zone)
		im.Nodes = ix.servingNodes(&ix.next.Site)
	} else {
		im.Nodes = ix.servingNodes(&ix.cur.Site)
	}
	for _, n := range newNames {
		if !slices.Contains(oldNames, n) {
			im.DNS = append(im.DNS, n+": starts answering")
		}
	}
	for _, n := range oldNames {
		if !slices.Contains(newNames, n) {
			im.DNS = append(im.DNS, n+": stops answering (NXDOMAIN)")
			im.Risks = append(im.Risks, fmt.Sprintf("%s stops answering: clients of %s lose it", n, name))
		}
	}
	if old != nil && new != nil && !slices.Equal(old.Spec.Edges, new.Spec.Edges) && len(newNames) > 0 {
		im.DNS = append(im.DNS, fmt.Sprintf("%s: answers from %s instead of %s", strings.Join(newNames, ", "), edgeSet(new.Spec.Edges), edgeSet(old.Spec.Edges)))
	}
	switch {
	case new == nil:
		im.Unreachable = append(im.Unreachable, CacheImpact{Distribution: name, Paths: []string{"/*"}, Why: "the distribution is removed"})
		return nil
	case old == nil:
		return ix.edgeRisk(im, new)
	}
	ix.cache(im, old, new)
	ix.originRisk(im, old, new)
	if !slices.Equal(old.Spec.Edges, new.Spec.Edges) || old.Spec.Disabled != new.Spec.Disabled {
		return ix.edgeRisk(im, new)
	}
	return nil
}

func edgeSet(edges []string) string {
	if len(edges) == 0 {
		return "every edge"
	}
	return strings.Join(edges, ", ")
}

// behaviorsOf returns the path patterns of the behaviors that send
// requests to target or to a group holding it, as invalidation paths.
func behaviorsOf(d *config.Distribution, origin string) []string {
	var out []string
	for _, b := range d.Spec.Behaviors {
		t := b.Target
		if t == origin || slices.Contains(d.Spec.OriginGroups[t].Members, origin) {
			out = append(out, invalidationPath(b.Path))
		}
	}
	return out
}

// invalidationPath turns a behavior pattern into what invalidate takes:
// the default "*" is every path.
func invalidationPath(p string) string {
	if p == "*" {
		return "/*"
	}
	return p
}

// cache names the cached objects a distribution change leaves behind.
func (ix *impacts) cache(im *Impact, old, new *config.Distribution) {
	name := new.Name
	// An origin that now points elsewhere: copies fetched from the old
	// place are still served until stale.
	for _, o := range slices.Sorted(maps.Keys(old.Spec.Origins)) {
		a, b := old.Spec.Origins[o], new.Spec.Origins[o]
		if _, still := new.Spec.Origins[o]; still && (a.URL != b.URL || a.HostHeader != b.HostHeader) {
			if paths := behaviorsOf(new, o); len(paths) > 0 {
				im.Invalidate = append(im.Invalidate, CacheImpact{name, paths, fmt.Sprintf("origin %s is now %s; copies fetched from %s are served until stale", o, b.URL, a.URL)})
			}
		}
	}
	// A group that switches member: edges stop serving the old member's
	// copies to its clients, unless the switch keeps the cache.
	for _, g := range slices.Sorted(maps.Keys(new.Spec.OriginGroups)) {
		a, ok := old.Spec.OriginGroups[g]
		b := new.Spec.OriginGroups[g]
		if !ok || a.Active == b.Active {
			continue
		}
		paths := behaviorsTargeting(new, g)
		if len(paths) == 0 {
			continue
		}
		if b.KeepCache {
			im.Invalidate = append(im.Invalidate, CacheImpact{name, paths, fmt.Sprintf("group %s switches %s -> %s keeping the cache: %s's copies are served until stale", g, a.Active, b.Active, a.Active)})
		} else {
			im.Unreachable = append(im.Unreachable, CacheImpact{name, paths, fmt.Sprintf("group %s switches %s -> %s: %s's copies are no longer served", g, a.Active, b.Active, a.Active)})
		}
	}
	// Behaviors matched by pattern: the cache key or caching changed.
	oldB := map[string]config.Behavior{}
	for _, b := range old.Spec.Behaviors {
		oldB[b.Path] = b
	}
	ttlChanged := !sameTTL(old.Spec.TTL, new.Spec.TTL)
	for _, b := range new.Spec.Behaviors {
		a, ok := oldB[b.Path]
		if !ok {
			continue
		}
		p := []string{invalidationPath(b.Path)}
		switch {
		case isCached(a) && !isCached(b):
			im.Unreachable = append(im.Unreachable, CacheImpact{name, p, "no longer cached: stored copies are never served again"})
		case !sameForward(a.Forward, b.Forward):
			im.Unreachable = append(im.Unreachable, CacheImpact{name, p, "the cache key changed (forwarded cookies, query or headers): copies stored under the old key are never served again"})
		case a.Target != b.Target:
			im.Invalidate = append(im.Invalidate, CacheImpact{name, p, fmt.Sprintf("target %s -> %s: copies from %s are served until stale", a.Target, b.Target, a.Target)})
		case isCached(b) && (ttlChanged || !sameTTL(a.TTL, b.TTL)):
			im.Invalidate = append(im.Invalidate, CacheImpact{name, p, "the TTL changed: copies already stored keep the freshness they were stored with"})
		}
	}
	for _, b := range old.Spec.Behaviors {
		if !slices.ContainsFunc(new.Spec.Behaviors, func(x config.Behavior) bool { return x.Path == b.Path }) && isCached(b) {
			im.Unreachable = append(im.Unreachable, CacheImpact{name, []string{invalidationPath(b.Path)}, "the behavior is removed: its requests go to the next matching behavior"})
		}
	}
}

func behaviorsTargeting(d *config.Distribution, target string) []string {
	var out []string
	for _, b := range d.Spec.Behaviors {
		if b.Target == target {
			out = append(out, invalidationPath(b.Path))
		}
	}
	return out
}

func isCached(b config.Behavior) bool { return b.Cache == nil || *b.Cache }

func sameForward(a, b config.Forward) bool {
	return a.Cookies.All == b.Cookies.All && slices.Equal(a.Cookies.Names, b.Cookies.Names) &&
		a.Query.All == b.Query.All && slices.Equal(a.Query.Names, b.Query.Names) && slices.Equal(a.Headers, b.Headers)
}

func sameTTL(a, b config.TTL) bool {
	eq := func(x, y *config.Duration) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eq(a.Default, b.Default) && eq(a.Min, b.Min) && eq(a.Max, b.Max) &&
		eq(a.StaleWhileRevalidate, b.StaleWhileRevalidate) && eq(a.StaleIfError, b.StaleIfError)
}

// originRisk warns when a group that had a healthy member has none after
// the change: the members left are known unhealthy, or new (a changed URL
// is a new origin to the health checker).
func (ix *impacts) originRisk(im *Impact, old, new *config.Distribution) {
	for _, g := range slices.Sorted(maps.Keys(new.Spec.OriginGroups)) {
		a, ok := old.Spec.OriginGroups[g]
		if !ok {
			continue
		}
		b := new.Spec.OriginGroups[g]
		healthy := func(d *config.Distribution, m string, same func(string) bool) bool {
			h, known := ix.hv.origin(d.Name, m)
			return known && h && same(m)
		}
		unchanged := func(m string) bool {
			x, ok1 := old.Spec.Origins[m]
			y, ok2 := new.Spec.Origins[m]
			return ok1 && ok2 && x.URL == y.URL && x.HostHeader == y.HostHeader
		}
		had := slices.ContainsFunc(a.Members, func(m string) bool { return healthy(old, m, func(string) bool { return true }) })
		has := slices.ContainsFunc(b.Members, func(m string) bool { return healthy(new, m, unchanged) })
		if had && !has {
			im.Risks = append(im.Risks, fmt.Sprintf("origin group %s/%s loses its last healthy member: none of %s is known healthy after the change", new.Name, g, strings.Join(b.Members, ", ")))
			continue
		}
		if b.Active != a.Active || !unchanged(b.Active) {
			if h, known := ix.hv.origin(new.Name, b.Active); known && !h && unchanged(b.Active) {
				im.Risks = append(im.Risks, fmt.Sprintf("origin group %s/%s makes %s active, which is unhealthy", new.Name, g, b.Active))
			}
		}
	}
}

// edgeRisk warns when a distribution is left with no live edge to answer
// for it in DNS.
func (ix *impacts) edgeRisk(im *Impact, d *config.Distribution) error {
	if d.Spec.Disabled {
		im.Risks = append(im.Risks, fmt.Sprintf("%s is disabled: it serves nothing", d.Name))
		return nil
	}
	live, err := ix.live()
	if err != nil {
		return err
	}
	if n := liveEdges(&ix.next.Site, d.Spec.Edges, live); n == 0 {
		im.Risks = append(im.Risks, fmt.Sprintf("%s has no live edge: %s", d.Name, noEdgeWhy(d.Spec.Edges)))
	}
	return nil
}

func noEdgeWhy(pinned []string) string {
	if len(pinned) == 0 {
		return "no edge node with weight above 0 is live"
	}
	return "none of " + strings.Join(pinned, ", ") + " is a live edge with weight above 0"
}

// liveEdges counts the live edges with a weight that can answer for a
// distribution pinned to pinned (none: every edge).
func liveEdges(site *config.Site, pinned []string, live map[string]bool) int {
	n := 0
	for i := range site.Nodes {
		node := &site.Nodes[i]
		if node.HasRole(config.RoleEdge) && node.EdgeWeight() > 0 && live[node.Name] && (len(pinned) == 0 || slices.Contains(pinned, node.Name)) {
			n++
		}
	}
	return n
}

// site works out what a site change touches from its changed fields.
func (ix *impacts) site(im *Impact, c config.Change) error {
	old, new := &ix.cur.Site, &ix.next.Site
	nodes := map[string]bool{}
	all := func(s *config.Site, role config.Role) {
		for _, n := range s.Nodes {
			if role == "" || n.HasRole(role) {
				nodes[n.Name] = true
			}
		}
	}
	edgesChanged := false
	for _, f := range c.Fields {
		path, _, _ := strings.Cut(f, ":")
		top, rest, _ := strings.Cut(path, ".")
		key, idx := top, ""
		if i := strings.IndexByte(top, '['); i >= 0 {
			key, idx = top[:i], strings.TrimSuffix(top[i+1:], "]")
		}
		switch key {
		case "nodes":
			nodes[idx] = true
			on, nn := old.Node(idx), new.Node(idx)
			if (on != nil && on.HasRole(config.RoleEdge)) || (nn != nil && nn.HasRole(config.RoleEdge)) {
				if edgeAnswerField(rest) {
					edgesChanged = true
					im.DNS = appendOnce(im.DNS, fmt.Sprintf("every name: answers change (edge %s: %s)", idx, strings.TrimSpace(strings.TrimPrefix(f, top+"."))))
				}
			}
			if strings.HasPrefix(rest, "gateway.neighbors") || (rest == "" && (isGateway(on) || isGateway(nn))) {
				im.BGP = appendOnce(im.BGP, fmt.Sprintf("%s: external sessions and what they announce change (%s)", idx, f))
			}
		case "dns":
			all(new, config.RoleDNS)
			im.DNS = appendOnce(im.DNS, "every name: "+f)
		case "clouds":
			all(new, config.RoleGateway)
			all(old, config.RoleGateway)
			im.BGP = append(im.BGP, cloudBGP(old, new, idx)...)
		case "links":
			l := linkOf(new, idx)
			if l == nil {
				l = linkOf(old, idx)
			}
			if l != nil {
				nodes[l.A.Node], nodes[l.B.Node] = true, true
				im.BGP = appendOnce(im.BGP, fmt.Sprintf("link %s (%s <-> %s): the BGP session and its routes change (%s)", idx, l.A.Node, l.B.Node, f))
			}
		case "controller", "health", "rollout":
			// The controller's own settings: no node runs them.
		default: // store, name, anything new: every agent
			all(new, "")
		}
	}
	for n := range nodes {
		if n != "" && (new.Node(n) != nil || old.Node(n) != nil) {
			im.Nodes = append(im.Nodes, n)
		}
	}
	slices.Sort(im.Nodes)
	if edgesChanged {
		return ix.siteEdgeRisk(im)
	}
	return nil
}

func isGateway(n *config.Node) bool { return n != nil && n.HasRole(config.RoleGateway) }

// edgeAnswerField: a change of an edge node's that DNS answers see.
func edgeAnswerField(rest string) bool {
	for _, p := range []string{"", "address", "weight", "location", "roles", "cloud"} {
		if rest == p || strings.HasPrefix(rest, p+".") || strings.HasPrefix(rest, p+"[") {
			return true
		}
	}
	return false
}

func appendOnce(l []string, s string) []string {
	if slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

func linkOf(s *config.Site, name string) *config.Link {
	for i := range s.Links {
		if s.Links[i].Name == name {
			return &s.Links[i]
		}
	}
	return nil
}

// cloudBGP says which prefixes a cloud's gateways start and stop
// announcing.
func cloudBGP(old, new *config.Site, cloud string) []string {
	var a, b []string
	if c := old.Cloud(cloud); c != nil {
		for _, p := range c.CIDRs {
			a = append(a, p.String())
		}
	}
	if c := new.Cloud(cloud); c != nil {
		for _, p := range c.CIDRs {
			b = append(b, p.String())
		}
	}
	var gws []string
	for _, n := range new.Nodes {
		if n.Cloud == cloud && n.HasRole(config.RoleGateway) {
			gws = append(gws, n.Name)
		}
	}
	who := "gateways of " + cloud
	if len(gws) > 0 {
		who += " (" + strings.Join(gws, ", ") + ")"
	}
	var out []string
	for _, p := range b {
		if !slices.Contains(a, p) {
			out = append(out, fmt.Sprintf("%s announce %s", who, p))
		}
	}
	for _, p := range a {
		if !slices.Contains(b, p) {
			out = append(out, fmt.Sprintf("%s withdraw %s", who, p))
		}
	}
	return out
}

// siteEdgeRisk: an edge node change that leaves the site, or a
// distribution pinned to some edges, with no live edge. It reads the
// distributions' edge lists, once.
func (ix *impacts) siteEdgeRisk(im *Impact) error {
	live, err := ix.live()
	if err != nil {
		return err
	}
	before, after := liveEdges(&ix.cur.Site, nil, live), liveEdges(&ix.next.Site, nil, live)
	if before > 0 && after == 0 {
		im.Risks = append(im.Risks, "no live edge with weight above 0 is left: every distribution stops answering")
		return nil
	}
	var cut []string
	for i := range ix.next.Distributions {
		d := &ix.next.Distributions[i]
		if len(d.Spec.Edges) == 0 || d.Spec.Disabled {
			continue
		}
		if liveEdges(&ix.next.Site, d.Spec.Edges, live) == 0 && liveEdges(&ix.cur.Site, d.Spec.Edges, live) > 0 {
			cut = append(cut, d.Name)
		}
	}
	if len(cut) > 0 {
		im.Risks = append(im.Risks, fmt.Sprintf("%d distribution(s) lose their last live edge: %s", len(cut), strings.Join(cut[:min(len(cut), 20)], ", ")))
	}
	return nil
}

// healthView is the controller's: its health checker, and the nodes
// registered in the store.
func (c *Controller) healthView(ctx context.Context) healthView {
	return healthView{
		origin: func(dist, origin string) (bool, bool) {
			h, known, _ := c.healthyNow(dist, origin)
			return h, known
		},
		live: func() (map[string]bool, error) {
			regs, err := c.store.Nodes(ctx)
			if err != nil {
				return nil, err
			}
			live := make(map[string]bool, len(regs))
			for name := range regs {
				live[name] = true
			}
			return live, nil
		},
	}
}

// orEmpty stands for "nothing applied yet": every object is added.
func orEmpty(s *config.Snapshot) *config.Snapshot {
	if s == nil {
		return &config.Snapshot{}
	}
	return s
}
