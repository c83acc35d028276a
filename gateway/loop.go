package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/route"
)

// state is the running gateway; only the loop goroutine touches it, as
// GoBGP's server does with its own.
type state struct {
	cfg   *Config // the committed config, before dead paths are taken out
	table *route.Table
	paths deadPaths // paths.go
	links linkState // linkpaths.go
	// The errors of the last commit (tunnels, kernel table) and of the last
	// BGP apply; Ready reports them.
	vpnErr, tableErr, bgpErr error
}

// loop owns the running state: it commits prepared changes, follows
// tunnel and link verdicts, and syncs the kernel with BGP's best paths
// after each burst of changes and every reconcileEvery.
func (g *Gateway) loop(ctx context.Context) {
	var st state
	defer func() {
		if err := st.links.close(context.Background()); err != nil {
			g.log.Warn("gateway: remove link paths", "error", err)
		}
	}()
	reconcile := time.NewTicker(reconcileEvery)
	defer reconcile.Stop()
	quiet := time.NewTimer(debounce)
	quiet.Stop()
	var burst time.Time // first change of the burst waiting for quiet; zero: none
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-g.commits:
			g.commit(ctx, &st, c)
			close(c.applied)
			g.bgpChanged() // install what the new config learns
		case ev := <-g.links:
			if st.paths.link(ev) {
				g.log.Info("gateway: dedicated line changed state", "link", ev.name, "up", ev.up)
				g.applyBGP(ctx, &st, "link "+ev.name)
			}
		case <-g.peers.kick:
			changed := false
			for _, p := range g.peers.drain() {
				changed = st.paths.tunnel(p) || changed
			}
			if changed {
				g.applyBGP(ctx, &st, "tunnel state")
			}
		case <-g.dirty:
			now := time.Now()
			if burst.IsZero() {
				burst = now
				quiet.Reset(debounce)
			} else if now.Sub(burst) < maxDelay {
				quiet.Reset(debounce)
			}
		case <-quiet.C:
			burst = time.Time{}
			g.sync(ctx, &st, false)
		case <-reconcile.C:
			g.sync(ctx, &st, true)
		}
	}
}

// commit makes c the running state: tunnels first (sessions over them
// bind the tunnel addresses), then the kernel table, then BGP. Nothing
// here can refuse the change; what fails is logged and kept for Ready.
func (g *Gateway) commit(ctx context.Context, st *state, c *change) {
	st.vpnErr = nil
	if err := g.vpn.Commit(ctx, c.plan); err != nil {
		st.vpnErr = fmt.Errorf("tunnels: %w", err)
		g.log.Error("gateway: commit tunnels", "error", err)
	}
	if c.table != nil || c.reopenTable {
		if st.table != nil {
			// Our routes move to the new table: the old one removes its
			// own (or keeps them, with graceful restart).
			if err := st.table.Close(ctx); err != nil {
				g.log.Warn("gateway: close the previous kernel table", "error", err)
			}
			st.table = nil
			g.table.Store(nil)
		}
		st.tableErr = nil
		t := c.table
		if c.reopenTable {
			var err error
			if t, err = route.New(c.cfg.Route, route.Options{Logger: g.log, Metrics: g.routeMetrics}); err != nil {
				st.tableErr = fmt.Errorf("kernel table: %w", err)
				g.log.Error("gateway: reopen kernel table", "error", err)
			}
		}
		st.table = t
		if t != nil {
			g.table.Store(t)
		}
		c.table = nil
	}
	cfg := c.cfg
	g.commitLinks(ctx, st, cfg)
	st.cfg = &cfg
	st.paths.relearnLinks(cfg.BGP)
	g.applyBGP(ctx, st, "")
	g.running.Store(&cfg)
	g.mu.Lock()
	g.committed = true
	g.mu.Unlock()
}

// applyBGP applies the committed BGP config without the neighbors whose
// path is dead, and publishes what failed.
func (g *Gateway) applyBGP(ctx context.Context, st *state, why string) {
	if st.cfg == nil {
		return
	}
	st.bgpErr = nil
	if err := g.bgp.Apply(ctx, st.paths.filter(st.cfg.BGP)); err != nil && !errors.Is(err, bgp.ErrNotRunning) {
		st.bgpErr = err
		if why == "" {
			g.log.Error("gateway: commit bgp", "error", err)
		} else {
			g.log.Warn("gateway: re-apply bgp after a path change", "path", why, "error", err)
		}
	}
	g.setDegraded(errors.Join(st.vpnErr, st.tableErr, st.links.err, st.bgpErr))
}

// sync brings the kernel in line with the learned best paths: the ones
// that changed (Best, Sync), or all of them (Resync, Reconcile).
func (g *Gateway) sync(ctx context.Context, st *state, full bool) {
	g.syncLinks(ctx, st, full)
	if st.table == nil {
		return
	}
	read, install := g.bgp.Best, st.table.Sync
	if full {
		read, install = g.bgp.Resync, st.table.Reconcile
	}
	best, err := read(ctx)
	if err != nil {
		if !errors.Is(err, bgp.ErrNotRunning) && ctx.Err() == nil {
			g.log.Warn("gateway: read learned paths", "error", err)
		}
		return
	}
	rs := make([]route.Route, 0, len(best))
	for _, p := range best {
		rs = append(rs, route.Route{Dst: p.Prefix, Gw: p.NextHop})
	}
	if err := install(ctx, rs); err != nil && ctx.Err() == nil {
		g.log.Warn("gateway: install learned routes", "error", err)
	}
}

// linkEvent is the kernel's news about one interface.
type linkEvent struct {
	index int
	name  string
	up    bool
}
