package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/admin"
	"github.com/intercloud/intercloud/store"
)

// Options configure an agent.
type Options struct {
	Node     string
	Store    *store.Store
	StateDir string // last known good snapshot and role state live here
	Logger   *slog.Logger
	// Admin overrides the node's listen.admin address.
	Admin string
	// Reload, when it receives, makes the agent re-read desired state.
	Reload <-chan os.Signal
	// OwnProcess says the process runs this node alone, so a role may
	// tune process-wide settings for it (the edge's Go memory limit).
	OwnProcess bool
}

// Agent runs one node.
type Agent struct {
	opt   Options
	log   *slog.Logger
	admin *admin.Server

	mu          sync.Mutex
	roles       map[config.Role]Role
	unavailable []config.Role
	applied     *config.Snapshot // what the roles run now
	applyErr    error
	storeErr    error
	storeErrAt  time.Time
	reg         *store.Registration
	liveNodes   map[string]config.NodeStatus
	health      map[string]config.OriginHealth
	doneInv     map[string]bool
}

// New builds an agent; Run starts it.
func New(o Options) *Agent {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	a := &Agent{opt: o, log: o.Logger.With("node", o.Node), roles: map[config.Role]Role{}, doneInv: map[string]bool{}}
	a.admin = admin.New(a.ready)
	a.admin.Mux.HandleFunc("GET /v1/node", a.serveNode)
	return a
}

func (a *Agent) lkgPath() string { return filepath.Join(a.opt.StateDir, "snapshot.json") }

// Run serves until ctx ends: from the last known good snapshot at once when
// there is one, then from the store, and from the last known good snapshot
// again whenever the store is unreachable.
func (a *Agent) Run(ctx context.Context) error {
	if err := os.MkdirAll(a.opt.StateDir, 0o700); err != nil {
		return fmt.Errorf("agent state dir: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer a.closeRoles()
	// The lease is revoked first (the node leaves DNS and status at once),
	// then the roles stop.
	defer func() {
		cancel()
		a.waitDeregistered()
	}()

	if snap, err := readSnapshot(a.lkgPath()); err == nil {
		a.log.Info("starting from last known good snapshot", "revision", snap.Revision)
		if err := a.apply(ctx, snap); err != nil {
			a.log.Error("last known good snapshot does not apply", "err", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("last known good snapshot unreadable; waiting for the store", "err", err)
	}
	adminStarted := false
	startAdmin := func(snap *config.Snapshot) error {
		if adminStarted {
			return nil
		}
		addr := a.opt.Admin
		if addr == "" {
			if n := snap.Site.Node(a.opt.Node); n != nil {
				addr = n.Listen.Admin
			}
		}
		if addr == "" {
			return nil
		}
		if err := a.admin.Listen(addr); err != nil {
			return err
		}
		adminStarted = true
		wg.Add(1)
		go func() { defer wg.Done(); _ = a.admin.Serve(ctx, a.log) }()
		a.log.Info("admin listening", "addr", a.admin.Addr())
		return nil
	}
	if snap := a.current(); snap != nil {
		if err := startAdmin(snap); err != nil {
			return err
		}
	}

	resync := make(chan struct{}, 1)
	wg.Add(5)
	go func() { defer wg.Done(); a.refreshReport(ctx) }()
	go func() { defer wg.Done(); a.pingStore(ctx, resync) }()
	go func() { defer wg.Done(); a.opt.Store.WatchNodes(ctx, a.setNodes) }()
	go func() { defer wg.Done(); a.opt.Store.WatchHealth(ctx, a.setHealth) }()
	go func() { defer wg.Done(); a.opt.Store.WatchInvalidations(ctx, a.invalidations(ctx)) }()

	for ctx.Err() == nil {
		err := a.follow(ctx, startAdmin, resync)
		if ctx.Err() != nil {
			break
		}
		a.storeDown(err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		case <-a.opt.Reload:
		}
	}
	return nil
}

// follow applies every revision the store announces until the watch breaks.
func (a *Agent) follow(ctx context.Context, startAdmin func(*config.Snapshot) error, resync <-chan struct{}) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	revs := a.opt.Store.WatchRevision(wctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-a.opt.Reload:
			a.log.Info("reload: re-reading desired state")
			return errors.New("reload requested")
		case <-resync:
			return errors.New("store reachable again: re-reading desired state")
		case rev, ok := <-revs:
			if !ok {
				return errors.New("watch on desired state ended (store unreachable?)")
			}
			if cur := a.current(); cur != nil && cur.Revision == rev {
				a.storeUp()
				continue
			}
			snap, err := a.opt.Store.Revision(ctx, rev)
			if err != nil {
				return err
			}
			a.storeUp()
			if err := startAdmin(snap); err != nil {
				return err
			}
			if err := a.apply(ctx, snap); err != nil {
				a.log.Error("revision not applied; still serving the previous one", "revision", rev, "err", err)
			}
		}
	}
}

// refreshReport republishes the node's status now and then, so that role
// health and role reports (hit ratio, sessions) reach the store between
// applies.
func (a *Agent) refreshReport(ctx context.Context) {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.report()
		}
	}
}

// pingStore notices an unreachable store (an etcd watch just waits
// silently) and asks follow to re-read everything once it is back.
func (a *Agent) pingStore(ctx context.Context, resync chan<- struct{}) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.opt.Store.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		wasDown := a.storeErr != nil
		a.mu.Unlock()
		switch {
		case err != nil:
			a.storeDown(err)
		case wasDown:
			a.storeUp()
			select {
			case resync <- struct{}{}:
			default:
			}
		}
	}
}

func (a *Agent) storeDown(err error) {
	a.mu.Lock()
	first := a.storeErr == nil
	a.storeErr = err
	if first {
		a.storeErrAt = time.Now()
	}
	rev := int64(0)
	if a.applied != nil {
		rev = a.applied.Revision
	}
	a.mu.Unlock()
	if first {
		a.log.Warn("store unreachable; serving last known good snapshot", "revision", rev, "err", err)
	}
}

func (a *Agent) storeUp() {
	a.mu.Lock()
	was := a.storeErr
	a.storeErr = nil
	a.mu.Unlock()
	if was != nil {
		a.log.Info("store reachable again")
	}
}

func (a *Agent) current() *config.Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.applied
}

// apply hands snap to every role of this node, starting and stopping roles
// as the node's role list changes. The snapshot becomes the last known good
// one only when every role took it.
func (a *Agent) apply(ctx context.Context, snap *config.Snapshot) error {
	node := snap.Site.Node(a.opt.Node)
	if node == nil {
		err := fmt.Errorf("node %q is not in revision %d of the site", a.opt.Node, snap.Revision)
		a.setApplyErr(err)
		return err
	}
	want := map[config.Role]bool{}
	var unavailable []config.Role
	var errs []error
	for _, r := range node.Roles {
		want[r] = true
		a.mu.Lock()
		role, running := a.roles[r]
		a.mu.Unlock()
		if !running {
			factory, ok := roleFactories[r]
			if !ok {
				unavailable = append(unavailable, r)
				continue
			}
			var err error
			role, err = factory(RoleOptions{Node: a.opt.Node, Logger: a.log.With("role", string(r)),
				Registry: a.admin.Registry, StateDir: filepath.Join(a.opt.StateDir, string(r)), OwnProcess: a.opt.OwnProcess})
			if err != nil {
				errs = append(errs, fmt.Errorf("start role %s: %w", r, err))
				continue
			}
			if ar, ok := role.(AdminRoutes); ok {
				ar.Routes(a.admin.Mux)
			}
			a.mu.Lock()
			a.roles[r] = role
			a.mu.Unlock()
			a.feed(role)
		}
		if err := role.Apply(ctx, snap); err != nil {
			errs = append(errs, fmt.Errorf("role %s: %w", r, err))
		}
	}
	if len(unavailable) > 0 {
		a.log.Warn("roles not available in this build", "roles", unavailable)
	}
	a.mu.Lock()
	for r, role := range a.roles {
		if !want[r] {
			delete(a.roles, r)
			go role.Close(context.WithoutCancel(ctx))
		}
	}
	a.unavailable = unavailable
	a.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		a.setApplyErr(err)
		return err
	}
	a.mu.Lock()
	a.applied = snap
	a.applyErr = nil
	a.mu.Unlock()
	if err := writeSnapshot(a.lkgPath(), snap); err != nil {
		a.log.Warn("could not save last known good snapshot", "err", err)
	}
	a.log.Info("revision applied", "revision", snap.Revision, "hash", snap.Hash[:min(12, len(snap.Hash))])
	a.register(ctx, node)
	return nil
}

func (a *Agent) setApplyErr(err error) {
	a.mu.Lock()
	a.applyErr = err
	a.mu.Unlock()
	a.report()
}

// register starts the node's lease on first success and updates its
// status on every later apply.
func (a *Agent) register(ctx context.Context, node *config.Node) {
	a.mu.Lock()
	if a.reg == nil {
		ttl := 10 * time.Second
		if a.applied.Site.Store.LeaseTTL > 0 {
			ttl = a.applied.Site.Store.LeaseTTL.D()
		}
		a.reg = a.opt.Store.Register(ctx, config.NodeStatus{Name: a.opt.Node, Roles: node.Roles, Since: time.Now().UTC()}, ttl, a.log)
	}
	a.mu.Unlock()
	a.report()
}

// report writes what this node runs into its registration.
func (a *Agent) report() {
	a.mu.Lock()
	reg, snap, applyErr, unavailable := a.reg, a.applied, a.applyErr, a.unavailable
	a.mu.Unlock()
	if reg == nil || snap == nil {
		return
	}
	ready := a.rolesReady()
	var rep config.RoleReport
	a.eachRole(func(r Role) {
		if rr, ok := r.(Reporter); ok {
			rr.Report(&rep)
		}
	})
	reg.Update(func(st *config.NodeStatus) {
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

func (a *Agent) rolesReady() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for r, role := range a.roles {
		if err := role.Ready(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r, err))
		}
	}
	return errors.Join(errs...)
}

// ready is /readyz: serving, and saying so when only from the last known good snapshot.
func (a *Agent) ready() error {
	a.mu.Lock()
	snap, storeErr, at := a.applied, a.storeErr, a.storeErrAt
	a.mu.Unlock()
	if snap == nil {
		return errors.New("no configuration yet (store unreachable and no last known good snapshot)")
	}
	if err := a.rolesReady(); err != nil {
		return err
	}
	if storeErr != nil {
		return fmt.Errorf("store unreachable since %s; serving last known good revision %d", at.UTC().Format(time.RFC3339), snap.Revision)
	}
	return nil
}

// feed hands a role what is known about the site's nodes and health.
func (a *Agent) feed(role Role) {
	a.mu.Lock()
	nodes, health := a.liveNodes, a.health
	a.mu.Unlock()
	if w, ok := role.(NodeWatcher); ok && nodes != nil {
		w.SetNodes(mergeEdgeHealth(nodes, health))
	}
	if w, ok := role.(OriginHealthWatcher); ok && health != nil {
		w.SetOriginHealth(health)
	}
}

func (a *Agent) eachRole(fn func(Role)) {
	a.mu.Lock()
	roles := make([]Role, 0, len(a.roles))
	for _, r := range a.roles {
		roles = append(roles, r)
	}
	a.mu.Unlock()
	for _, r := range roles {
		fn(r)
	}
}

func (a *Agent) setNodes(nodes map[string]config.NodeStatus) {
	a.mu.Lock()
	a.liveNodes = nodes
	a.mu.Unlock()
	a.eachRole(a.feed)
}

func (a *Agent) setHealth(health map[string]config.OriginHealth) {
	a.mu.Lock()
	a.health = health
	a.mu.Unlock()
	a.eachRole(a.feed)
}

// mergeEdgeHealth marks an edge unhealthy when the controller's probe of
// it fails, even though the edge itself reports healthy: what clients
// reach is what counts.
func mergeEdgeHealth(nodes map[string]config.NodeStatus, health map[string]config.OriginHealth) map[string]config.NodeStatus {
	out := make(map[string]config.NodeStatus, len(nodes))
	for name, st := range nodes {
		if h, ok := health[config.EdgeHealthDistribution+"/"+name]; ok && !h.Healthy {
			st.Healthy = false
		}
		out[name] = st
	}
	return out
}

// invalidations applies every invalidation this node has not done yet.
func (a *Agent) invalidations(ctx context.Context) func(map[string]*store.InvalidationState) {
	return func(all map[string]*store.InvalidationState) {
		ids := slices.Sorted(maps.Keys(all))
		for _, id := range ids {
			st := all[id]
			a.mu.Lock()
			done := a.doneInv[id]
			a.mu.Unlock()
			if _, marked := st.Done[a.opt.Node]; marked || done {
				continue
			}
			var errs []error
			handled := false
			a.eachRole(func(r Role) {
				if inv, ok := r.(Invalidator); ok {
					handled = true
					if err := inv.Invalidate(ctx, st.Invalidation); err != nil {
						errs = append(errs, err)
					}
				}
			})
			if !handled {
				continue // not an edge (yet): nothing cached here
			}
			if err := errors.Join(errs...); err != nil {
				a.log.Error("invalidation failed", "id", id, "err", err)
				continue
			}
			if err := a.opt.Store.MarkInvalidationDone(ctx, id, a.opt.Node); err != nil {
				a.log.Warn("invalidation done but not recorded", "id", id, "err", err)
				continue
			}
			a.mu.Lock()
			a.doneInv[id] = true
			a.mu.Unlock()
			a.log.Info("invalidation applied", "id", id, "distribution", st.Distribution, "paths", strings.Join(st.Paths, " "))
		}
	}
}

// waitDeregistered waits, after ctx ended, until the registration has
// revoked its lease, so a gracefully stopped node disappears at once
// instead of after the lease TTL.
func (a *Agent) waitDeregistered() {
	a.mu.Lock()
	reg := a.reg
	a.mu.Unlock()
	if reg == nil {
		return
	}
	select {
	case <-reg.Done():
	case <-time.After(5 * time.Second):
		a.log.Warn("lease not revoked in 5s; the node disappears when it expires")
	}
}

func (a *Agent) closeRoles() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.mu.Lock()
	roles := a.roles
	a.roles = map[config.Role]Role{}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for r, role := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := role.Close(ctx); err != nil {
				a.log.Warn("role close", "role", r, "err", err)
			}
		}()
	}
	wg.Wait()
}

// NodeInfo is what GET /v1/node answers.
type NodeInfo struct {
	Name        string        `json:"name"`
	Revision    int64         `json:"revision"`
	Hash        string        `json:"hash"`
	Roles       []config.Role `json:"roles"`
	Unavailable []config.Role `json:"unavailable,omitempty"`
	Ready       string        `json:"ready"`
}

func (a *Agent) serveNode(w http.ResponseWriter, _ *http.Request) {
	a.mu.Lock()
	info := NodeInfo{Name: a.opt.Node, Unavailable: a.unavailable, Ready: "ready"}
	if a.applied != nil {
		info.Revision, info.Hash = a.applied.Revision, a.applied.Hash
		if n := a.applied.Site.Node(a.opt.Node); n != nil {
			info.Roles = n.Roles
		}
	}
	a.mu.Unlock()
	if err := a.ready(); err != nil {
		info.Ready = err.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

func readSnapshot(path string) (*config.Snapshot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s config.Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &s, nil
}

// writeSnapshot writes atomically: a crash leaves the old file or the new
// one, never half of one.
func writeSnapshot(path string, s *config.Snapshot) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
