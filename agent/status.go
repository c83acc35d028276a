package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
)

// view is what the loop publishes for the admin handlers: immutable, and
// replaced whole after every event.
type view struct {
	snap        *config.Snapshot
	cluster     string
	roles       []*instance // sorted by kind
	unavailable []config.Role
	applyErr    error
	broken      error
	storeErr    error
	storeErrAt  time.Time
	drift       *status.DriftReport // the last drift check (drift.go)
}

func (a *Agent) publish() {
	v := &view{snap: a.applied, cluster: a.cluster, unavailable: a.unavailable, applyErr: a.applyErr,
		broken: a.broken, storeErr: a.storeErr, storeErrAt: a.storeErrAt, drift: a.drift.last}
	for _, kind := range slices.Sorted(maps.Keys(a.roles)) {
		v.roles = append(v.roles, a.roles[kind])
	}
	a.view.Store(v)
	a.observe()
	a.markServing()
}

// gatherers are the metrics of the roles that run now.
func (a *Agent) gatherers() prometheus.Gatherers {
	v := a.view.Load()
	gs := make(prometheus.Gatherers, 0, len(v.roles))
	for _, inst := range v.roles {
		gs = append(gs, inst.reg)
	}
	return gs
}

// serveRoleAPI hands /v1/ requests to the running role that serves them.
func (a *Agent) serveRoleAPI(w http.ResponseWriter, r *http.Request) {
	for _, inst := range a.view.Load().roles {
		if h, pattern := inst.mux.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
	}
	http.Error(w, "no running role of this node serves "+r.URL.Path, http.StatusNotFound)
}

func rolesReady(roles []*instance) error {
	var errs []error
	for _, inst := range roles {
		if err := inst.role.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", inst.kind, err))
		}
	}
	return errors.Join(errs...)
}

// degraded lists the running roles that serve impaired (an edge whose
// disk tier is full), for /readyz.
func (a *Agent) degraded() []string {
	var out []string
	for _, inst := range a.view.Load().roles {
		if d, ok := inst.role.(interface{ Degraded() string }); ok {
			if why := d.Degraded(); why != "" {
				out = append(out, string(inst.kind)+": "+why)
			}
		}
	}
	return out
}

// ready is /readyz: serving, and saying so when only from the last known
// good snapshot or when the last revision did not apply.
func (a *Agent) ready() error {
	v := a.view.Load()
	if v.snap == nil {
		if v.applyErr != nil {
			return v.applyErr
		}
		return errors.New("no configuration yet (store unreachable and no last known good snapshot)")
	}
	if err := errors.Join(v.broken, rolesReady(v.roles), v.applyErr); err != nil {
		return err
	}
	if v.storeErr != nil {
		return fmt.Errorf("store unreachable since %s; serving last known good revision %d", v.storeErrAt.UTC().Format(time.RFC3339), v.snap.Revision)
	}
	return nil
}

// NodeInfo is what GET /v1/node answers.
type NodeInfo struct {
	Name        string        `json:"name"`
	Revision    int64         `json:"revision"`
	Hash        string        `json:"hash"`
	Store       string        `json:"store,omitempty"` // the etcd cluster ID the revision came from
	Roles       []config.Role `json:"roles"`
	Unavailable []config.Role `json:"unavailable,omitempty"`
	Ready       string        `json:"ready"`
}

func (a *Agent) serveNode(w http.ResponseWriter, _ *http.Request) {
	v := a.view.Load()
	info := NodeInfo{Name: a.opt.Node, Unavailable: v.unavailable, Ready: "ready", Store: v.cluster}
	if v.snap != nil {
		info.Revision, info.Hash = v.snap.Revision, v.snap.Hash
		if n := v.snap.Site.Node(a.opt.Node); n != nil {
			info.Roles = n.Roles
		}
	}
	if err := a.ready(); err != nil {
		info.Ready = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

// processStart tells a restarted node from one that kept running.
var processStart = time.Now().UTC()

// register starts the node's lease on the first applied revision.
func (a *Agent) register(ctx context.Context) {
	if a.reg != nil {
		return
	}
	node := a.applied.Site.Node(a.opt.Node)
	a.reg = a.opt.Store.Register(ctx, status.NodeStatus{Name: a.opt.Node, Roles: node.Roles, Since: time.Now().UTC(), Started: processStart},
		a.applied.Site.Store.LeaseTTL.D(), a.log)
}

// report writes what this node runs into its registration.
func (a *Agent) report() {
	a.publish()
	if a.reg == nil || a.applied == nil {
		return
	}
	snap, applyErr := a.applied, errors.Join(a.broken, a.applyErr)
	roles := a.view.Load().roles
	ready := rolesReady(roles)
	var rep status.RoleReport
	for _, inst := range roles {
		if r, ok := inst.role.(role.Reporter); ok {
			r.Report(&rep)
		}
	}
	unavailable := a.unavailable
	drift := a.drift.last
	a.reg.Update(func(st *status.NodeStatus) {
		// Drift is shown, not unreadiness: Healthy does not look at it.
		st.Drift, st.Drifted = capped(drift), drift.Unresolved()
		st.Report = rep
		if st.Revision != snap.Revision {
			st.Since = time.Now().UTC()
		}
		st.Revision, st.Hash = snap.Revision, snap.Hash
		if n := snap.Site.Node(a.opt.Node); n != nil {
			st.Roles = n.Roles
		}
		st.Unavailable = unavailable
		st.Healthy = ready == nil && applyErr == nil
		st.Message = ""
		if err := errors.Join(applyErr, ready); err != nil {
			st.Message = err.Error()
		}
	})
}

// feed hands a role what is known about the site's nodes and health.
func (a *Agent) feed(inst *instance) {
	if w, ok := inst.role.(role.NodeWatcher); ok && a.liveNodes != nil {
		if a.merged == nil { // once per change of either, for every role
			a.merged = mergeEdgeHealth(a.liveNodes, a.health)
		}
		w.SetNodes(a.merged)
	}
	if w, ok := inst.role.(role.OriginHealthWatcher); ok && a.health != nil {
		w.SetOriginHealth(a.health)
	}
}

func (a *Agent) feedAll() {
	for _, inst := range a.roles {
		a.feed(inst)
	}
}

// mergeEdgeHealth marks an edge unhealthy when the controller's probe of
// it fails, even though the edge itself reports healthy: what clients
// reach is what counts.
func mergeEdgeHealth(nodes map[string]status.NodeStatus, health map[string]status.OriginHealth) map[string]status.NodeStatus {
	down := false
	for name, st := range nodes {
		if h, ok := health[status.EdgeHealthDistribution+"/"+name]; ok && !h.Healthy && st.Healthy {
			down = true
			break
		}
	}
	if !down {
		return nodes // the usual case: nothing to mark, nothing to copy
	}
	out := make(map[string]status.NodeStatus, len(nodes))
	for name, st := range nodes {
		if h, ok := health[status.EdgeHealthDistribution+"/"+name]; ok && !h.Healthy {
			st.Healthy = false
		}
		out[name] = st
	}
	return out
}

// invalidate applies every invalidation this node has not done yet.
func (a *Agent) invalidate(ctx context.Context, all map[string]*store.InvalidationState) {
	for _, id := range slices.Sorted(maps.Keys(all)) {
		st := all[id]
		if _, marked := st.Done[a.opt.Node]; marked || a.doneInv[id] {
			continue
		}
		var errs []error
		handled := false
		for _, inst := range a.roles {
			if inv, ok := inst.role.(role.Invalidator); ok {
				handled = true
				errs = append(errs, inv.Invalidate(ctx, st.Invalidation))
			}
		}
		if !handled {
			continue // not an edge (yet): nothing cached here
		}
		if err := errors.Join(errs...); err != nil {
			a.log.Error("invalidation failed", "id", id, "err", err)
			continue
		}
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := a.opt.Store.MarkInvalidationDone(mctx, id, a.opt.Node)
		cancel()
		if err != nil {
			a.log.Warn("invalidation done but not recorded", "id", id, "err", err)
			continue
		}
		a.doneInv[id] = true
		a.log.Info("invalidation applied", "id", id, "distribution", st.Distribution, "paths", strings.Join(st.Paths, " "))
	}
}
