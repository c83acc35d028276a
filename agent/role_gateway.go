package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/route"
)

// The gateway role's routing half: bgp peers and learns, route installs
// what bgp learned. bgp never imports route; this adapter carries the
// learned best paths from one to the other.
func init() {
	roleFactories[config.RoleGateway] = func(o role.Options) (role.Role, error) {
		g, err := newGatewayRole(o)
		if err != nil {
			return nil, err
		}
		g.Routes(o.Mux)
		return g, nil
	}
}

var _ role.Role = (*gatewayRole)(nil)

// Prepare checks what can be checked beside the running gateway; the
// rest happens in Commit, which logs what fails and shows it in Ready.
func (g *gatewayRole) Prepare(ctx context.Context, snap *config.Snapshot) (role.Change, error) {
	if _, err := bgp.FromSite(&snap.Site, g.o.Node); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return role.Funcs{OnCommit: func() {
		if err := g.Apply(ctx, snap); err != nil {
			g.o.Logger.Error("gateway: revision applied with errors", "err", err)
		}
	}}, nil
}

const (
	// gatewayDebounce gathers a burst of BGP changes into one kernel sync:
	// the sync runs once no change came for this long, or gatewayMaxDelay
	// after the first change of a burst (a full table keeps changing for
	// seconds; each sync reads the whole Loc-RIB and kernel table).
	gatewayDebounce = 50 * time.Millisecond
	gatewayMaxDelay = time.Second
	// gatewayReconcile re-reads the whole Loc-RIB and kernel table, so a
	// lost event or a route changed behind our back is repaired. Between
	// reconciles, syncs work from best-path events and what was installed.
	gatewayReconcile = 30 * time.Second
)

type gatewayRole struct {
	o     role.Options
	bgp   *bgp.Server
	vpn   gatewayVPN // the tunnels (role_gateway_vpn.go)
	dirty chan struct{}

	mu       sync.Mutex // guards table, routeCfg, loop state
	table    *route.Table
	routeCfg route.Config
	cancel   context.CancelFunc
	done     chan struct{}
	applied  bool
	closed   bool
}

func newGatewayRole(o role.Options) (*gatewayRole, error) {
	g := &gatewayRole{o: o, dirty: make(chan struct{}, 1)}
	b, err := bgp.New(bgp.Options{Logger: o.Logger, Registry: o.Registry, OnChange: g.kick})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g.bgp = b
	return g, nil
}

// kick is called from GoBGP's event goroutine: it only signals.
func (g *gatewayRole) kick() {
	select {
	case g.dirty <- struct{}{}:
	default:
	}
}

func (g *gatewayRole) Apply(ctx context.Context, snap *config.Snapshot) error {
	node := snap.Site.Node(g.o.Node)
	if node == nil {
		return fmt.Errorf("gateway: node %q not in the site", g.o.Node)
	}
	cfg, err := bgp.FromSite(&snap.Site, g.o.Node)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	var rc route.Config
	if gw := node.Gateway; gw != nil {
		rc = route.Config{Table: gw.Table, Protocol: gw.Protocol, GracefulRestart: gw.GracefulRestart}
	}
	if err := rc.Validate(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errors.New("gateway: closed")
	}
	var errs []error
	if g.table == nil || rc != g.routeCfg {
		if g.table != nil {
			// Another table or protocol: our routes move there.
			if err := g.table.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("gateway: close route table: %w", err))
			}
			g.table = nil
		}
		t, err := route.New(rc, route.Options{Logger: g.o.Logger, Registry: g.o.Registry})
		if err != nil {
			errs = append(errs, fmt.Errorf("gateway: %w", err))
		} else {
			g.table, g.routeCfg = t, rc
		}
	}
	// Tunnels first: sessions over them bind the tunnel addresses.
	if err := g.vpn.apply(ctx, g.o, g.bgp, &snap.Site); err != nil {
		errs = append(errs, fmt.Errorf("gateway: %w", err))
	}
	if err := g.bgp.Apply(ctx, g.vpn.bgpConfig(cfg)); err != nil {
		errs = append(errs, err)
	} else {
		g.applied = true
	}
	if g.cancel == nil {
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		g.cancel, g.done = cancel, make(chan struct{})
		go g.loop(lctx, g.done)
		go g.vpn.watchLinks(lctx)
	}
	g.kick()
	return errors.Join(errs...)
}

// loop syncs the kernel with the learned best paths after each burst of
// changes and every gatewayReconcile.
func (g *gatewayRole) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(gatewayReconcile)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.dirty:
			if !gatherBurst(ctx, g.dirty) {
				return
			}
			g.sync(ctx, false)
		case <-tick.C:
			g.sync(ctx, true)
		}
	}
}

// gatherBurst waits for the end of a burst of signals on dirty; false if
// ctx ended.
func gatherBurst(ctx context.Context, dirty <-chan struct{}) bool {
	first := time.Now()
	quiet := time.NewTimer(gatewayDebounce)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-dirty:
			if time.Since(first) < gatewayMaxDelay {
				quiet.Reset(gatewayDebounce)
			}
		case <-quiet.C:
			return true
		}
	}
}

func (g *gatewayRole) sync(ctx context.Context, full bool) {
	read, install := g.bgp.Best, (*route.Table).Sync
	if full {
		read, install = g.bgp.Resync, (*route.Table).Reconcile
	}
	best, err := read(ctx)
	if err != nil {
		if !errors.Is(err, bgp.ErrNotRunning) {
			g.o.Logger.Warn("gateway: read learned paths", "error", err)
		}
		return
	}
	rs := make([]route.Route, 0, len(best))
	for _, p := range best {
		rs = append(rs, route.Route{Dst: p.Prefix, Gw: p.NextHop})
	}
	g.mu.Lock()
	t := g.table
	g.mu.Unlock()
	if t == nil {
		return
	}
	if err := install(t, ctx, rs); err != nil {
		g.o.Logger.Warn("gateway: install learned routes", "error", err)
	}
}

func (g *gatewayRole) Ready() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return errors.New("gateway: closed")
	case !g.applied:
		return errors.New("gateway: bgp not started")
	case g.table == nil:
		return errors.New("gateway: no kernel route table")
	}
	return nil
}

func (g *gatewayRole) Close(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	cancel, done, t := g.cancel, g.done, g.table
	g.table = nil
	g.mu.Unlock()
	gatewayAPI.CompareAndSwap(g, nil)
	if cancel != nil {
		cancel()
		<-done
	}
	// BGP first, so peers stop sending us traffic before the routes go.
	errs := []error{g.bgp.Close(ctx), g.vpn.close(ctx)}
	if t != nil {
		errs = append(errs, t.Close(ctx))
	}
	return errors.Join(errs...)
}

// The admin endpoints are mounted once per mux (a ServeMux panics on a
// second registration) and serve whichever gateway role is current.
var (
	gatewayAPI     atomic.Pointer[gatewayRole]
	gatewayMuxesMu sync.Mutex
	gatewayMuxes   = map[*http.ServeMux]bool{}
)

// GatewayRoute is one row of GET /v1/bgp/routes: a Loc-RIB path and whether
// it is in the kernel.
type GatewayRoute struct {
	bgp.Path
	Installed bool `json:"installed"`
}

func (g *gatewayRole) Routes(mux *http.ServeMux) {
	gatewayAPI.Store(g)
	gatewayMuxesMu.Lock()
	defer gatewayMuxesMu.Unlock()
	if gatewayMuxes[mux] {
		return
	}
	gatewayMuxes[mux] = true
	mountVPNRoutes(mux)
	mux.HandleFunc("GET /v1/bgp/neighbors", func(w http.ResponseWriter, r *http.Request) {
		g := gatewayAPI.Load()
		if g == nil {
			http.Error(w, "gateway role not running", http.StatusServiceUnavailable)
			return
		}
		ns, err := g.bgp.Neighbors(r.Context())
		writeGatewayJSON(w, ns, err)
	})
	mux.HandleFunc("GET /v1/bgp/routes", func(w http.ResponseWriter, r *http.Request) {
		g := gatewayAPI.Load()
		if g == nil {
			http.Error(w, "gateway role not running", http.StatusServiceUnavailable)
			return
		}
		paths, err := g.bgp.Paths(r.Context())
		if err != nil {
			writeGatewayJSON(w, nil, err)
			return
		}
		installed := map[netip.Prefix]netip.Addr{}
		g.mu.Lock()
		t := g.table
		g.mu.Unlock()
		if t != nil {
			for _, rt := range t.Installed() {
				installed[rt.Dst] = rt.Gw
			}
		}
		out := make([]GatewayRoute, 0, len(paths))
		for _, p := range paths {
			gw, ok := installed[p.Prefix]
			out = append(out, GatewayRoute{Path: p, Installed: ok && p.Best && gw == p.NextHop})
		}
		writeGatewayJSON(w, out, nil)
	})
}

func writeGatewayJSON(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, bgp.ErrNotRunning) {
			code = http.StatusServiceUnavailable
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(v)
}
