package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"sync"
	"sync/atomic"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/admin"
	"github.com/intercloud/intercloud/status"
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
	// Reload, when it receives, makes the agent re-read desired state and
	// apply it again (roles re-read their files: certificates, keys, geoip).
	Reload <-chan os.Signal
	// OwnProcess says the process runs this node alone, so a role may
	// tune process-wide settings for it (the edge's Go memory limit).
	OwnProcess bool
}

// Agent runs one node. One goroutine, the loop, owns every piece of
// mutable state; the watchers only send it events, and the admin handlers
// read the view it publishes after each one.
type Agent struct {
	opt    Options
	log    *slog.Logger
	admin  *admin.Server
	events chan event
	view   atomic.Pointer[view]
	// What the store's watches last said (events.go).
	nodesSeen  *latest[map[string]status.NodeStatus]
	healthSeen *latest[map[string]status.OriginHealth]
	invSeen    *latest[map[string]*store.InvalidationState]
	lkgQueue   chan lkgWrite

	// Owned by the loop.
	roles       map[config.Role]*instance
	unavailable []config.Role
	applied     *config.Snapshot // what the roles run now
	cluster     string           // the store cluster applied came from ("": unknown)
	applyErr    error
	failed      *attempt // the revision that failed to apply, to retry
	broken      error    // a role's Commit panicked
	storeErr    error
	storeErrAt  time.Time
	reg         *store.Registration
	liveNodes   map[string]status.NodeStatus
	health      map[string]status.OriginHealth
	merged      map[string]status.NodeStatus // liveNodes with health's verdicts on edges; nil: to compute
	doneInv     map[string]bool
	desired     int64 // the revision the store's pointer says this node runs
	servingDone bool

	metrics *nodeMetrics
	serving chan struct{}
	drift   *drift // drift.go
}

// New builds an agent; Run starts it.
func New(o Options) *Agent {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	a := &Agent{opt: o, log: o.Logger.With("node", o.Node), events: make(chan event, 16), lkgQueue: make(chan lkgWrite, 1),
		roles: map[config.Role]*instance{}, doneInv: map[string]bool{},
		nodesSeen: newLatest[map[string]status.NodeStatus](), healthSeen: newLatest[map[string]status.OriginHealth](),
		invSeen: newLatest[map[string]*store.InvalidationState]()}
	a.serving = make(chan struct{})
	a.view.Store(&view{})
	a.admin = admin.New(a.ready)
	a.metrics = newNodeMetrics(a.admin.Registry)
	a.admin.Gather(a.gatherers)
	a.admin.Detail(a.degraded)
	a.admin.Mux.HandleFunc("GET /v1/node", a.serveNode)
	a.drift = newDrift(a.admin.Registry)
	a.admin.Mux.HandleFunc("GET /v1/drift", a.serveDrift)
	a.admin.Mux.HandleFunc("POST /v1/drift/check", a.serveDriftCheck)
	a.admin.Mux.HandleFunc("/v1/", a.serveRoleAPI)
	return a
}

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
	wg.Add(2)
	go func() { defer wg.Done(); a.writeLastKnownGoods(ctx) }()
	go func() { defer wg.Done(); a.writeDriftEvents(ctx) }()
	defer a.closeRoles()
	// The lease is revoked first (the node leaves DNS and status at once),
	// then the roles stop.
	defer func() {
		cancel()
		a.waitDeregistered()
	}()

	if lkg, err := readLastKnownGood(a.opt.StateDir); err == nil {
		a.log.Info("starting from last known good snapshot", "revision", lkg.Snapshot.Revision, "store", lkg.Cluster)
		if err := a.apply(ctx, lkg.Snapshot, lkg.Cluster); err != nil {
			a.log.Error("last known good snapshot does not apply", "err", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("last known good snapshot unreadable; waiting for the store", "err", err)
	}
	if a.applied != nil {
		if err := a.startAdmin(ctx, &wg, a.applied); err != nil {
			return err
		}
	}

	rewatch := make(chan struct{}, 1)
	wg.Add(5)
	go func() { defer wg.Done(); a.watchRevisions(ctx, rewatch) }()
	go func() { defer wg.Done(); a.pingStore(ctx) }()
	go func() {
		defer wg.Done()
		a.opt.Store.WatchNodes(ctx, a.nodesSeen.put)
	}()
	go func() {
		defer wg.Done()
		a.opt.Store.WatchHealth(ctx, a.healthSeen.put)
	}()
	go func() {
		defer wg.Done()
		a.opt.Store.WatchInvalidations(ctx, a.invSeen.put)
	}()
	return a.loop(ctx, &wg, rewatch)
}

// loop takes one event at a time until ctx ends.
func (a *Agent) loop(ctx context.Context, wg *sync.WaitGroup, rewatch chan<- struct{}) error {
	report := time.NewTicker(3 * time.Second)
	defer report.Stop()
	retry := time.NewTicker(retryEvery)
	defer retry.Stop()
	driftEvery := a.driftInterval()
	driftCheck := time.NewTimer(driftEvery)
	defer driftCheck.Stop()
	for {
		a.publish()
		if iv := a.driftInterval(); iv != driftEvery { // a revision changed the site's drift.interval
			driftEvery = iv
			driftCheck.Reset(iv)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-report.C:
			a.report()
		case <-retry.C:
			// What failed to prepare (a port taken, a file missing) may
			// have been fixed since: try the revision again.
			if a.failed != nil {
				a.retry(ctx)
			}
		case <-driftCheck.C:
			a.checkDrift(ctx)
			driftCheck.Reset(driftEvery)
		case <-a.opt.Reload:
			a.log.Info("reload: re-reading desired state")
			a.reload(ctx)
		case <-a.nodesSeen.ready:
			if m, ok := a.nodesSeen.take(); ok {
				a.liveNodes, a.merged = m, nil
				a.feedAll()
			}
		case <-a.healthSeen.ready:
			if m, ok := a.healthSeen.take(); ok {
				a.health, a.merged = m, nil
				a.feedAll()
			}
		case <-a.invSeen.ready:
			if m, ok := a.invSeen.take(); ok {
				a.invalidate(ctx, m)
			}
		case ev := <-a.events:
			switch ev := ev.(type) {
			case pointerEvent:
				if err := a.follow(ctx, store.Pointer(ev)); err != nil {
					a.storeDown(err)
					continue
				}
				if err := a.startAdmin(ctx, wg, a.applied); err != nil {
					return err
				}
			case storeEvent:
				if ev.err != nil {
					a.storeDown(ev.err)
					continue
				}
				if a.storeErr != nil {
					a.storeUp()
					select { // a watch can hang through an outage: start afresh
					case rewatch <- struct{}{}:
					default:
					}
				}
			case pingEvent:
				close(ev.done)
			case driftRequest:
				ev <- a.checkDrift(ctx)
			}
		}
	}
}

// follow applies the revision the store points at, unless it runs already
// or a rollout has not reached this node yet (then it runs what the
// rollout started from).
func (a *Agent) follow(ctx context.Context, p store.Pointer) error {
	p.Revision = a.target(p)
	a.desired = p.Revision
	if a.applied != nil && a.applied.Revision == p.Revision && a.cluster == p.Cluster {
		a.storeUp()
		return nil
	}
	// Within one store, only what the revision changed is fetched.
	var base *config.Snapshot
	if a.cluster == p.Cluster {
		base = a.applied
	}
	snap, err := a.opt.Store.RevisionFrom(ctx, base, p.Revision)
	if err != nil {
		return fmt.Errorf("read revision %d: %w", p.Revision, err)
	}
	a.storeUp()
	if a.applied != nil && a.cluster != "" && a.cluster != p.Cluster {
		a.log.Warn("the store is another cluster now; applying its state", "was", a.cluster, "now", p.Cluster,
			"running", a.applied.Revision, "revision", p.Revision)
	}
	if err := a.apply(ctx, snap, p.Cluster); err != nil {
		a.log.Error("revision not applied; still serving the previous one", "revision", p.Revision, "err", err)
	}
	return nil
}

// retryEvery is how often a revision that failed to apply is tried again.
const retryEvery = 10 * time.Second

func (a *Agent) retry(ctx context.Context) {
	f := a.failed
	if err := a.apply(ctx, f.snap, f.cluster); err == nil {
		a.log.Info("revision applied on retry", "revision", f.snap.Revision)
	}
}

// target is the revision this node runs for pointer p.
func (a *Agent) target(p store.Pointer) int64 {
	if ro := p.Rollout; ro != nil && ro.Revision == p.Revision && ro.From > 0 && ro.Holds(a.opt.Node) {
		return ro.From
	}
	return p.Revision
}

// reload applies this node's revision again, from the store when it
// answers, else from what runs.
func (a *Agent) reload(ctx context.Context) {
	snap, cluster := a.applied, a.cluster
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if info, _, err := a.opt.Store.Pointer(rctx); err == nil && info.Revision > 0 {
		// The pointer does not tell the cluster; the next pointer event does.
		if cur, err := a.opt.Store.Revision(rctx, a.target(store.Pointer{Revision: info.Revision, Rollout: info.Rollout})); err == nil {
			snap = cur
		}
	}
	if snap == nil {
		return
	}
	if err := a.apply(ctx, snap, cluster); err != nil {
		a.log.Error("reload: revision not applied; still serving the previous one", "revision", snap.Revision, "err", err)
	}
}

// watchRevisions sends the store's revision pointer to the loop, and
// watches again after the watch breaks or when told to.
func (a *Agent) watchRevisions(ctx context.Context, rewatch <-chan struct{}) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(ctx)
		ptrs := a.opt.Store.WatchRevision(wctx)
	watch:
		for {
			select {
			case p, ok := <-ptrs:
				if !ok {
					break watch
				}
				a.send(ctx, pointerEvent(p))
			case <-rewatch:
				break watch
			}
		}
		cancel()
		if ctx.Err() == nil {
			a.send(ctx, storeEvent{errors.New("watch on desired state ended (store unreachable?)")})
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		case <-rewatch:
		}
	}
}

// pingStore notices an unreachable store (an etcd watch just waits
// silently) and a store that is back.
func (a *Agent) pingStore(ctx context.Context) {
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
		a.send(ctx, storeEvent{err})
	}
}

func (a *Agent) send(ctx context.Context, ev event) {
	select {
	case a.events <- ev:
	case <-ctx.Done():
	}
}

func (a *Agent) storeDown(err error) {
	first := a.storeErr == nil
	a.storeErr = err
	if !first {
		return
	}
	a.storeErrAt = time.Now()
	rev := int64(0)
	if a.applied != nil {
		rev = a.applied.Revision
	}
	a.log.Warn("store unreachable; serving last known good snapshot", "revision", rev, "err", err)
}

func (a *Agent) storeUp() {
	if a.storeErr != nil {
		a.storeErr = nil
		a.log.Info("store reachable again")
	}
}

// startAdmin binds the node's admin address once, from the first snapshot
// that names it.
func (a *Agent) startAdmin(ctx context.Context, wg *sync.WaitGroup, snap *config.Snapshot) error {
	if a.admin.Started() || snap == nil {
		return nil
	}
	addr := a.adminAddr(snap)
	if addr == "" {
		return nil
	}
	if err := a.admin.Listen(addr); err != nil {
		return err
	}
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.admin.Serve(ctx, a.log) }()
	a.log.Info("admin listening", "addr", a.admin.Addr())
	return nil
}

// adminAddr is where the node's admin server listens for snap.
func (a *Agent) adminAddr(snap *config.Snapshot) string {
	if a.opt.Admin != "" {
		return a.opt.Admin
	}
	if n := snap.Site.Node(a.opt.Node); n != nil {
		return n.Listen.Admin
	}
	return ""
}

// waitDeregistered waits, after ctx ended, until the registration has
// revoked its lease, so a gracefully stopped node disappears at once
// instead of after the lease TTL.
func (a *Agent) waitDeregistered() {
	if a.reg == nil {
		return
	}
	select {
	case <-a.reg.Done():
	case <-time.After(5 * time.Second):
		a.log.Warn("lease not revoked in 5s; the node disappears when it expires")
	}
}
