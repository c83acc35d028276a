package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
)

var errNothingApplied = errors.New("nothing applied yet")

// ErrRefused means the controller declined an operation for a stated reason
// (an unhealthy origin, an unknown group); nothing was written.
var ErrRefused = errors.New("refused")

// PromoteRequest switches an origin group to another member.
type PromoteRequest struct {
	Distribution string `json:"distribution"`
	Group        string `json:"group"`
	Origin       string `json:"origin"`
	// Weight < 100 starts a canary: only that share of clients moves.
	Weight int `json:"weight"`
	// KeepCache lets edges serve the old member's cached copies to the new
	// member's clients until they are stale (config.OriginGroup.KeepCache).
	// Without it the new member's clients get its content at once.
	KeepCache bool `json:"keepCache,omitempty"`
}

// Promote makes req.Origin the active member of the group (or its canary),
// after checking that it is healthy.
func (c *Controller) Promote(ctx context.Context, req PromoteRequest) (*ApplyResult, error) {
	if req.Weight == 0 {
		req.Weight = 100
	}
	if req.Weight < 1 || req.Weight > 100 {
		return nil, fmt.Errorf("%w: weight %d is not between 1 and 100", ErrRefused, req.Weight)
	}
	if req.KeepCache && req.Weight < 100 {
		// Edges cache a canary's clients apart from the active member's:
		// there is no old copy for them to keep.
		return nil, fmt.Errorf("%w: --keep-cache applies to a full promote, not to a canary (weight %d): a canary's clients are cached apart", ErrRefused, req.Weight)
	}
	cur, _, err := c.store.Current(ctx)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, errNothingApplied)
	}
	d := cur.Distribution(req.Distribution)
	if d == nil {
		return nil, fmt.Errorf("%w: no distribution %q", ErrRefused, req.Distribution)
	}
	g, ok := d.Spec.OriginGroups[req.Group]
	if !ok {
		return nil, fmt.Errorf("%w: distribution %s has no origin group %q", ErrRefused, d.Name, req.Group)
	}
	if !contains(g.Members, req.Origin) {
		return nil, fmt.Errorf("%w: %q is not a member of %s/%s (members: %s)", ErrRefused, req.Origin, d.Name, req.Group, strings.Join(g.Members, ", "))
	}
	if err := c.checkHealthy(ctx, d, req.Origin); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return c.commit(ctx, throughStages, func(cur *config.Snapshot) (*config.Snapshot, string, error) {
		next := cloneSnapshot(cur)
		d := next.Distribution(req.Distribution)
		if d == nil {
			return nil, "", fmt.Errorf("%w: distribution %q removed meanwhile", ErrRefused, req.Distribution)
		}
		g := d.Spec.OriginGroups[req.Group]
		var reason string
		if req.Weight == 100 || g.Active == req.Origin {
			reason = fmt.Sprintf("promote %s/%s: %s -> %s", d.Name, req.Group, g.Active, req.Origin)
			g.Active, g.Canary = req.Origin, nil
		} else {
			reason = fmt.Sprintf("canary %s/%s: %d%% to %s (active %s)", d.Name, req.Group, req.Weight, req.Origin, g.Active)
			g.Canary = &config.Canary{Member: req.Origin, Weight: req.Weight}
		}
		// Every promote says whether its switch keeps the cache, so the
		// flag never outlives the switch it was asked for.
		g.KeepCache = req.KeepCache
		if req.KeepCache {
			reason += " (keep cache)"
		}
		d.Spec.OriginGroups[req.Group] = g
		// The group no longer holds what its files imported, if they did.
		d.Override("spec.originGroups." + req.Group + ".active")
		return next, reason, nil
	})
}

// checkHealthy uses the health checker's verdict when the origin has a
// health block, and a one-off probe of the origin's URL otherwise.
func (c *Controller) checkHealthy(ctx context.Context, d *config.Distribution, origin string) error {
	if healthy, known, reason := c.healthyNow(d.Name, origin); known {
		if !healthy {
			return fmt.Errorf("origin %s of %s is unhealthy: %s", origin, d.Name, reason)
		}
		return nil
	}
	o := d.Spec.Origins[origin]
	if o.Health != nil {
		// Configured but not probed yet (controller just started): probe now.
		if ok, reason := probe(ctx, http.DefaultClient, originTarget(d.Name, origin, o)); !ok {
			return fmt.Errorf("origin %s of %s is unhealthy: %s", origin, d.Name, reason)
		}
		return nil
	}
	// Without a health block there is no rendered timeout to read; the
	// one-off probe waits as long as a default health check would.
	ok, reason := probe(ctx, http.DefaultClient, target{url: o.URL, timeout: config.DefaultHealthTimeout.D()})
	if !ok {
		return fmt.Errorf("origin %s of %s does not answer (no health check configured): %s", origin, d.Name, reason)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Invalidate records an invalidation of paths of dist and returns its id.
func (c *Controller) Invalidate(ctx context.Context, dist string, paths []string) (string, error) {
	cur, _, err := c.store.Current(ctx)
	if err != nil {
		return "", err
	}
	if cur == nil || cur.Distribution(dist) == nil {
		return "", fmt.Errorf("%w: no distribution %q", ErrRefused, dist)
	}
	if len(paths) == 0 {
		return "", fmt.Errorf("%w: no paths given", ErrRefused)
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return "", fmt.Errorf("%w: path %q must start with /", ErrRefused, p)
		}
		if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
			return "", fmt.Errorf("%w: path %q: '*' is only allowed at the end", ErrRefused, p)
		}
	}
	inv := status.Invalidation{ID: newID(), Distribution: dist, Paths: paths, Time: time.Now().UTC()}
	if err := c.store.PutInvalidation(ctx, inv); err != nil {
		return "", err
	}
	c.log.Info("invalidation created", "id", inv.ID, "distribution", dist, "paths", len(paths))
	return inv.ID, nil
}

// newID makes a CloudFront-style id: "I" and 13 upper-case letters/digits.
func newID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 13)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "I" + string(b)
}

// InvalidationStatus is an invalidation and its progress over live edges.
type InvalidationStatus struct {
	status.Invalidation
	Status string   `json:"status"` // InProgress or Completed
	Done   []string `json:"done"`
	Edges  []string `json:"edges"` // live edges it must reach
}

// Invalidations lists invalidations, newest first, with progress.
func (c *Controller) Invalidations(ctx context.Context) ([]InvalidationStatus, error) {
	all, err := c.store.Invalidations(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := c.store.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var edges []string
	for name, n := range nodes {
		if hasRole(n.Roles, config.RoleEdge) {
			edges = append(edges, name)
		}
	}
	sort.Strings(edges)
	out := make([]InvalidationStatus, 0, len(all))
	for _, st := range all {
		out = append(out, invalidationStatus(st, edges))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, nil
}

func invalidationStatus(st *store.InvalidationState, edges []string) InvalidationStatus {
	s := InvalidationStatus{Invalidation: st.Invalidation, Edges: edges, Done: []string{}}
	complete := true
	for _, e := range edges {
		if _, ok := st.Done[e]; ok {
			s.Done = append(s.Done, e)
		} else {
			complete = false
		}
	}
	s.Status = "InProgress"
	if complete {
		s.Status = "Completed"
	}
	return s
}

func hasRole(roles []config.Role, r config.Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

// NodeState is one node as status shows it.
type NodeState struct {
	Name     string        `json:"name"`
	Cloud    string        `json:"cloud"`
	Roles    []config.Role `json:"roles"`
	Live     bool          `json:"live"`
	Healthy  bool          `json:"healthy"`
	Revision int64         `json:"revision"`
	Hash     string        `json:"hash"`
	// State: current, applying (within the grace period), behind, drifted, down.
	State       string            `json:"state"`
	Message     string            `json:"message,omitempty"`
	Updated     time.Time         `json:"updated,omitzero"`
	Unavailable []config.Role     `json:"unavailable,omitempty"`
	Report      status.RoleReport `json:"report,omitzero"`
	// Drifted counts the node's resources found changed behind its back
	// and not healed, at its last drift check (intercloud drift NODE).
	Drifted int `json:"drifted,omitempty"`
}

// Status is the site at a glance, or one page of its nodes.
type Status struct {
	Revision int64       `json:"revision"`
	Hash     string      `json:"hash"`
	Time     time.Time   `json:"time"`
	Reason   string      `json:"reason,omitempty"`
	Nodes    []NodeState `json:"nodes"`
	// Converged: every live node (of this page) runs the current
	// revision; a client that walks the pages combines them.
	Converged bool `json:"converged"`
	// Rollout is where the current revision is in its stages, if it went
	// out in stages.
	Rollout *store.Rollout `json:"rollout,omitempty"`
	// Total is the number of nodes in the site; Next, when set, is the
	// name to ask for the following page with (after=Next).
	Total int    `json:"total"`
	Next  string `json:"next,omitempty"`
}

// Status compares what every node reports with the desired revision.
func (c *Controller) Status(ctx context.Context) (*Status, error) {
	return c.StatusPage(ctx, "", 0)
}

// StatusPage is Status for up to limit nodes (0: all) whose names sort
// after after, in name order. It reads the registrations and edge health
// of those nodes only, and the desired snapshot only when the revision
// changed since the last request.
func (c *Controller) StatusPage(ctx context.Context, after string, limit int) (*Status, error) {
	ptr, _, err := c.store.Pointer(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{Converged: true}
	if ptr.Revision == 0 {
		return st, nil
	}
	cur, nodes, err := c.desired(ctx, ptr)
	if err != nil {
		return nil, err
	}
	if ptr.Revision == cur.Revision {
		st.Rollout = ptr.Rollout
	}
	st.Revision, st.Hash, st.Time, st.Reason = cur.Revision, cur.Hash, cur.Time, cur.Reason
	st.Total = len(nodes)
	i, found := slices.BinarySearchFunc(nodes, after, func(n *config.Node, name string) int { return strings.Compare(n.Name, name) })
	if found {
		i++
	}
	j := len(nodes)
	if limit > 0 && i+limit < j {
		j = i + limit
		st.Next = nodes[j-1].Name
	}
	page := nodes[i:j]
	st.Nodes = make([]NodeState, 0, len(page))
	if len(page) == 0 {
		return st, nil
	}
	last := page[len(page)-1].Name
	live, err := c.registrations(ctx, after, last, len(page))
	if err != nil {
		return nil, err
	}
	health, err := c.store.HealthRange(ctx, status.EdgeHealthDistribution, after, last)
	if err != nil {
		return nil, err
	}
	grace := cur.Site.Controller.DriftGrace.D()
	for _, n := range page {
		ns := NodeState{Name: n.Name, Cloud: n.Cloud, Roles: n.Roles, State: "down"}
		if l, ok := live[n.Name]; ok {
			ns.Live, ns.Healthy, ns.Revision, ns.Hash = true, l.Healthy, l.Revision, l.Hash
			ns.Message, ns.Updated, ns.Unavailable, ns.Report = l.Message, l.Updated, l.Unavailable, l.Report
			ns.Drifted = l.Drifted
			if h, ok := health[status.EdgeHealthDistribution+"/"+n.Name]; ok && !h.Healthy {
				ns.Healthy = false
				ns.Message = strings.TrimSpace(ns.Message + " health check: " + h.Reason)
			}
			ns.State = driftState(l, cur, grace)
			if ns.State != "current" && st.Rollout.Holds(n.Name) && l.Revision == st.Rollout.From {
				ns.State = "held" // waiting for its rollout stage
			}
			if ns.State != "current" {
				st.Converged = false
			}
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st, nil
}

// registrations reads the registrations of nodes named after after and up
// to last, batch by batch of the page's size: registered names the site
// does not declare may sit in between, and must not cut the page short.
func (c *Controller) registrations(ctx context.Context, after, last string, batch int) (map[string]status.NodeStatus, error) {
	live := make(map[string]status.NodeStatus, batch)
	for cursor := after; ; {
		regs, more, err := c.store.NodesPage(ctx, cursor, batch)
		if err != nil {
			return nil, err
		}
		c.metrics.statusRegistrations.Add(float64(len(regs)))
		for _, r := range regs {
			if r.Name > last {
				return live, nil
			}
			live[r.Name] = r
			cursor = r.Name
		}
		if !more || len(regs) == 0 || cursor == last {
			return live, nil
		}
	}
}

// desired returns the snapshot ptr points at and its nodes in name order.
// The last one is kept: status is asked for page after page (and by every
// status --wait each second), while the revision changes seldom.
func (c *Controller) desired(ctx context.Context, ptr store.RevisionInfo) (*config.Snapshot, []*config.Node, error) {
	c.statusCache.Lock()
	snap, nodes := c.statusCache.snap, c.statusCache.nodes
	c.statusCache.Unlock()
	if snap != nil && snap.Revision == ptr.Revision && snap.Hash == ptr.Hash {
		return snap, nodes, nil
	}
	snap, _, err := c.store.Current(ctx)
	if err != nil {
		return nil, nil, err
	}
	if snap == nil {
		return nil, nil, fmt.Errorf("store: revision %d is current but has no snapshot", ptr.Revision)
	}
	nodes = make([]*config.Node, len(snap.Site.Nodes))
	for i := range snap.Site.Nodes {
		nodes[i] = &snap.Site.Nodes[i]
	}
	slices.SortFunc(nodes, func(a, b *config.Node) int { return strings.Compare(a.Name, b.Name) })
	c.statusCache.Lock()
	c.statusCache.snap, c.statusCache.nodes = snap, nodes
	c.statusCache.Unlock()
	return snap, nodes, nil
}

// driftState classifies a live node against the desired revision.
func driftState(n status.NodeStatus, cur *config.Snapshot, grace time.Duration) string {
	switch {
	case n.Hash == cur.Hash:
		return "current"
	case time.Since(cur.Time) < grace:
		return "applying"
	case n.Revision < cur.Revision:
		return "behind"
	default:
		return "drifted"
	}
}
