package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

// target is one health-checked endpoint: an origin of a distribution or an
// edge's /healthz.
type target struct {
	dist, name string
	url        string
	interval   time.Duration
	timeout    time.Duration
	healthyN   int // consecutive successes to turn healthy
	unhealthyN int // consecutive failures to turn unhealthy
}

func (t target) key() string { return t.dist + "/" + t.name }

type targetState struct {
	spec   target
	cancel context.CancelFunc
	// known is false until the first probe decides the initial state.
	known     bool
	healthy   bool
	successes int
	failures  int
	since     time.Time
	reason    string
}

type healthState struct {
	mu      sync.Mutex
	targets map[string]*targetState
}

func newHealthState() *healthState { return &healthState{targets: map[string]*targetState{}} }

// targetsOf lists what a snapshot asks to be checked.
func targetsOf(s *config.Snapshot) []target {
	var out []target
	for _, d := range s.Distributions {
		for name, o := range d.Spec.Origins {
			if o.Health != nil {
				out = append(out, originTarget(d.Name, name, o))
			}
		}
	}
	for _, n := range s.Site.Nodes {
		if !n.HasRole(config.RoleEdge) || n.Listen.Admin == "" {
			continue
		}
		out = append(out, target{
			dist: status.EdgeHealthDistribution, name: n.Name,
			url:        n.AdminURL() + "/healthz",
			interval:   s.Site.Health.EdgeInterval.D(),
			timeout:    s.Site.Health.EdgeTimeout.D(),
			healthyN:   1,
			unhealthyN: 2,
		})
	}
	return out
}

// originTarget is the health check of an origin that has a health block.
func originTarget(dist, name string, o config.Origin) target {
	h := o.Health
	return target{
		dist: dist, name: name,
		url:        strings.TrimRight(o.URL, "/") + "/" + strings.TrimLeft(h.Path, "/"),
		interval:   h.Interval.D(),
		timeout:    h.Timeout.D(),
		healthyN:   max(h.Healthy, 1),
		unhealthyN: max(h.Unhealthy, 1),
	}
}

// RunHealth probes every target of the current revision until ctx ends,
// following revisions as they change.
func (c *Controller) RunHealth(ctx context.Context) {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var (
		prev        *config.Snapshot
		prevCluster string
	)
	for ctx.Err() == nil {
		for ptr := range c.store.WatchRevision(ctx) {
			// Only what the revision changed is read (within one cluster).
			base := prev
			if ptr.Cluster != prevCluster {
				base = nil
			}
			snap, err := c.store.RevisionFrom(ctx, base, ptr.Revision)
			if err != nil {
				c.log.Warn("health: read revision", "revision", ptr.Revision, "err", err)
				continue
			}
			prev, prevCluster = snap, ptr.Cluster
			c.syncTargets(ctx, client, targetsOf(snap))
		}
		sleepCtx(ctx, time.Second)
	}
	c.health.mu.Lock()
	for _, st := range c.health.targets {
		st.cancel()
	}
	c.health.mu.Unlock()
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (c *Controller) syncTargets(ctx context.Context, client *http.Client, want []target) {
	c.health.mu.Lock()
	defer c.health.mu.Unlock()
	seen := map[string]bool{}
	for _, t := range want {
		k := t.key()
		seen[k] = true
		// Intervals and timeouts come filled from config rendering; a
		// snapshot without them was not rendered, and a zero interval
		// would panic the ticker, so the target is left unprobed.
		if t.interval <= 0 || t.timeout <= 0 {
			c.log.Error("health: target has no interval or timeout (snapshot not rendered); not probing it", "target", k)
			continue
		}
		if st, ok := c.health.targets[k]; ok {
			if st.spec == t {
				continue
			}
			st.cancel()
		}
		pctx, cancel := context.WithCancel(ctx)
		st := &targetState{spec: t, cancel: cancel}
		c.health.targets[k] = st
		go c.probeLoop(pctx, client, st)
	}
	for k, st := range c.health.targets {
		if !seen[k] {
			st.cancel()
			delete(c.health.targets, k)
			dist, name, _ := strings.Cut(k, "/")
			_ = c.store.DeleteHealth(ctx, dist, name)
			c.metrics.originHealth.DeleteLabelValues(dist, name)
		}
	}
}

func (c *Controller) probeLoop(ctx context.Context, client *http.Client, st *targetState) {
	t := time.NewTicker(st.spec.interval)
	defer t.Stop()
	for {
		ok, reason := probe(ctx, client, st.spec)
		if ctx.Err() != nil {
			return
		}
		c.record(ctx, st, ok, reason)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func probe(ctx context.Context, client *http.Client, t target) (bool, string) {
	pctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, t.url, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "intercloud-health/1")
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, resp.Status
	}
	return false, "status " + resp.Status
}

// record applies the thresholds and acts on transitions only, so a flapping
// target produces one change per threshold crossing, not one per probe.
func (c *Controller) record(ctx context.Context, st *targetState, ok bool, reason string) {
	if ok {
		c.metrics.probes.WithLabelValues("success").Inc()
	} else {
		c.metrics.probes.WithLabelValues("failure").Inc()
	}
	c.health.mu.Lock()
	changed, initial := false, !st.known
	switch {
	case !st.known && ok:
		st.known, st.healthy, changed = true, true, true
	case !st.known:
		// A target still starting when the controller starts is not
		// declared down until it has failed as often as the threshold says.
		st.failures++
		if st.failures >= st.spec.unhealthyN {
			st.known, st.healthy, changed = true, false, true
		}
	case ok:
		st.failures = 0
		st.successes++
		if !st.healthy && st.successes >= st.spec.healthyN {
			st.healthy, changed = true, true
		}
	default:
		st.successes = 0
		st.failures++
		if st.healthy && st.failures >= st.spec.unhealthyN {
			st.healthy, changed = false, true
		}
	}
	if changed {
		st.since = time.Now().UTC()
		st.reason = reason
	}
	h := status.OriginHealth{Distribution: st.spec.dist, Origin: st.spec.name, Healthy: st.healthy,
		Reason: st.reason, Checked: time.Now().UTC(), Since: st.since}
	c.health.mu.Unlock()
	if !changed {
		return
	}
	gauge := 0.0
	if h.Healthy {
		gauge = 1
	}
	c.metrics.originHealth.WithLabelValues(h.Distribution, h.Origin).Set(gauge)
	c.log.Info("health changed", "target", st.spec.key(), "healthy", h.Healthy, "reason", reason)
	if err := c.store.PutHealth(ctx, h); err != nil {
		c.log.Warn("health: write", "target", st.spec.key(), "err", err)
	}
	// Only a healthy origin that turns unhealthy moves traffic: an origin
	// still starting when the controller starts must not.
	if !initial && !h.Healthy && h.Distribution != status.EdgeHealthDistribution {
		c.autoHeal(ctx, h)
	}
}

// healthyNow reports the controller's verdict on dist/origin, and whether
// it has one.
func (c *Controller) healthyNow(dist, origin string) (healthy, known bool, reason string) {
	c.health.mu.Lock()
	defer c.health.mu.Unlock()
	st, ok := c.health.targets[dist+"/"+origin]
	if !ok || !st.known {
		return false, false, ""
	}
	return st.healthy, true, st.reason
}

// autoHeal moves an origin group's traffic off an origin that just turned
// unhealthy, to the first member known to be healthy. It never moves
// traffic back: that takes an operator's promote.
func (c *Controller) autoHeal(ctx context.Context, bad status.OriginHealth) {
	var moved []string
	res, err := c.commit(ctx, atOnce, func(cur *config.Snapshot) (*config.Snapshot, string, error) {
		moved = moved[:0]
		if cur == nil {
			return nil, "", errNothingApplied
		}
		next := cloneSnapshot(cur)
		d := next.Distribution(bad.Distribution)
		if d == nil {
			return cur, "", nil
		}
		names := slices.Sorted(maps.Keys(d.Spec.OriginGroups))
		for _, name := range names {
			g := d.Spec.OriginGroups[name]
			if g.Canary != nil && g.Canary.Member == bad.Origin {
				g.Canary = nil
				moved = append(moved, fmt.Sprintf("%s: canary on %s stopped", name, bad.Origin))
			}
			if g.Active == bad.Origin {
				for _, m := range g.Members {
					if healthy, known, _ := c.healthyNow(d.Name, m); m != bad.Origin && known && healthy {
						// No operator asked to keep the unhealthy
						// member's copies: clients get m's content.
						g.Active, g.KeepCache = m, false
						d.Override("spec.originGroups." + name + ".active")
						if g.Canary != nil && g.Canary.Member == m {
							g.Canary = nil
						}
						moved = append(moved, fmt.Sprintf("%s: %s -> %s", name, bad.Origin, m))
						break
					}
				}
			}
			d.Spec.OriginGroups[name] = g
		}
		if len(moved) == 0 {
			return cur, "", nil
		}
		return next, fmt.Sprintf("auto-heal %s: origin %s unhealthy (%s); %s", d.Name, bad.Origin, bad.Reason, strings.Join(moved, "; ")), nil
	})
	if err != nil {
		c.log.Error("auto-heal failed", "distribution", bad.Distribution, "origin", bad.Origin, "err", err)
		return
	}
	if res.Changed {
		c.metrics.autoHeals.Inc()
		c.log.Warn("auto-heal switched traffic", "distribution", bad.Distribution, "revision", res.Revision, "moves", strings.Join(moved, "; "))
	}
}

// cloneSnapshot deep-copies a snapshot so an edit never touches a value
// someone else may hold.
func cloneSnapshot(s *config.Snapshot) *config.Snapshot {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("snapshot does not encode: %v", err))
	}
	var out config.Snapshot
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("snapshot does not decode: %v", err))
	}
	return &out
}
