package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/route"
	"github.com/intercloud/intercloud/vpn"
)

// Prepare derives the node's config from snap and prepares it (see
// PrepareConfig).
func (g *Gateway) Prepare(ctx context.Context, snap *config.Snapshot) (role.Change, error) {
	cfg, err := FromSnapshot(snap, g.o.Node)
	if err != nil {
		return nil, err
	}
	return g.PrepareConfig(ctx, cfg)
}

// PrepareConfig checks cfg and takes, beside what runs, what it needs: the
// WireGuard keys are read and new tunnels' devices opened, a kernel table
// other than the running one is opened (and swept), a new BGP listen port
// is checked free. Nothing that runs changes; an error here is the whole
// answer for this revision.
func (g *Gateway) PrepareConfig(ctx context.Context, cfg Config) (role.Change, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return nil, errors.New("gateway: closed")
	}
	if err := g.checkListenPort(cfg.BGP); err != nil {
		return nil, err
	}
	c := &change{g: g, cfg: cfg, applied: make(chan struct{})}
	plan, err := g.vpn.Prepare(ctx, cfg.Tunnels)
	if err != nil {
		return nil, fmt.Errorf("gateway: tunnels: %w", err)
	}
	c.plan = plan
	want := cfg.Route.WithDefaults()
	switch cur := g.table.Load(); {
	case cur == nil || cur.Config().Table != want.Table || cur.Config().Protocol != want.Protocol:
		// Another table or protocol: the new one is swept beside the
		// running one, which keeps its routes until Commit.
		t, err := route.New(cfg.Route, route.Options{Logger: g.log, Metrics: g.routeMetrics})
		if err != nil {
			c.Abort()
			return nil, fmt.Errorf("gateway: open kernel table %d: %w", want.Table, err)
		}
		c.table = t
	case cur.Config() != want:
		// Only graceful restart changed: opening the same table again
		// now would sweep the running routes, so Commit reopens it.
		c.reopenTable = true
	}
	return c, nil
}

// checkListenPort fails when BGP is to listen on a port it does not hold
// yet and something else does. Binding is left to GoBGP at Commit; this
// catches the common case (another daemon on 179) while it can still
// abort the revision.
func (g *Gateway) checkListenPort(c bgp.Config) error {
	port := c.ListenPort
	if port < 0 {
		return nil
	}
	if port == 0 {
		port = config.DefaultBGPPort // what GoBGP takes 0 for
	}
	if cur := g.running.Load(); cur != nil && cur.BGP.ListenPort == c.ListenPort &&
		slices.Equal(cur.BGP.ListenAddresses, c.ListenAddresses) {
		return nil
	}
	addrs := c.ListenAddresses
	if len(addrs) == 0 {
		addrs = []netip.Addr{{}}
	}
	for _, a := range addrs {
		host := ""
		if a.IsValid() {
			host = a.String()
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("gateway: bgp listen port: %w", err)
		}
		ln.Close()
	}
	return nil
}

// change is a prepared revision. The loop commits it; Abort releases what
// Prepare took.
type change struct {
	g    *Gateway
	cfg  Config
	plan *vpn.Plan
	// table is a kernel table Prepare opened to replace the running one;
	// nil keeps the running one (or reopens it, with reopenTable).
	table       *route.Table
	reopenTable bool
	applied     chan struct{}
}

// Commit hands the change to the loop and returns once it runs. What
// fails now (a neighbor GoBGP refuses, a netlink error) is logged and
// reported by Ready.
func (c *change) Commit() {
	select {
	case c.g.commits <- c:
		<-c.applied
	case <-c.g.exited:
		c.g.log.Warn("gateway: commit after close; dropped")
		c.Abort()
	}
}

func (c *change) Abort() {
	c.g.vpn.Abort(c.plan)
	if c.table != nil {
		if err := c.table.Close(context.Background()); err != nil {
			c.g.log.Warn("gateway: close a prepared kernel table", "error", err)
		}
		c.table = nil
	}
}
