// Package gateway is the gateway role of a node: it peers with BGP (package
// bgp), installs what it learns in the kernel (package route) and runs the
// WireGuard tunnels some sessions go over (package vpn). It is the only
// package that knows all three; they know nothing of each other. See
// README.md.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/route"
	"github.com/intercloud/intercloud/vpn"
)

const (
	// debounce gathers a burst of BGP changes into one kernel sync: the
	// sync runs once no change came for this long, or maxDelay after the
	// first change of a burst (a full table keeps changing for seconds;
	// each sync reads every changed best path and the installed set).
	debounce = 50 * time.Millisecond
	maxDelay = time.Second
	// reconcileEvery re-reads the whole Loc-RIB and kernel table, so a
	// lost event or a route changed behind our back is repaired. Between
	// reconciles, syncs work from best-path events and what was installed.
	reconcileEvery = 30 * time.Second
)

var (
	_ role.Role     = (*Gateway)(nil)
	_ role.Reporter = (*Gateway)(nil)
)

// Gateway is one node's gateway role. Its running state belongs to one
// goroutine (loop.go); the methods only hand it work or read what it
// published.
type Gateway struct {
	o            role.Options
	log          *slog.Logger
	bgp          *bgp.Server
	vpn          *vpn.Manager
	routeMetrics *route.Metrics

	// Published by the loop for the API and Report.
	table   atomic.Pointer[route.Table]
	running atomic.Pointer[Config]

	// The loop's inputs.
	commits chan *change
	links   chan linkEvent
	dirty   chan struct{} // BGP changed; never blocks GoBGP
	peers   peerQueue     // vpn peer verdicts; never blocks vpn
	stop    context.CancelFunc
	exited  chan struct{}  // closed when the loop returns
	done    sync.WaitGroup // the loop and the link watcher

	mu        sync.Mutex // guards the fields below
	committed bool
	degraded  error // what the last commit or path change could not apply
	closed    bool
}

// New makes a gateway that runs nothing yet: its metrics are registered on
// o.Registry and its admin routes on o.Mux, once. Prepare and Commit give
// it a revision to run.
func New(o role.Options) (*Gateway, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	g := &Gateway{
		o:       o,
		log:     o.Logger,
		commits: make(chan *change),
		links:   make(chan linkEvent),
		dirty:   make(chan struct{}, 1),
		exited:  make(chan struct{}),
	}
	g.peers.kick = make(chan struct{}, 1)
	var err error
	if g.bgp, err = bgp.New(bgp.Options{Logger: o.Logger, Registry: o.Registry, OnChange: g.bgpChanged}); err != nil {
		return nil, fmt.Errorf("gateway: bgp: %w", err)
	}
	if g.routeMetrics, err = route.NewMetrics(o.Registry); err != nil {
		g.bgp.Close(context.Background())
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// The vpn manager exists even on a node without tunnels: its metrics
	// and /v1/vpn are there from the start, and a later revision that adds
	// a tunnel registers nothing.
	g.vpn, err = vpn.New(vpn.Options{Node: o.Node, Logger: o.Logger, Registry: o.Registry, OnPeerState: g.peers.push})
	if err != nil {
		g.routeMetrics.Unregister()
		g.bgp.Close(context.Background())
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if o.Mux != nil {
		g.mount(o.Mux)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.stop = cancel
	g.done.Add(2)
	go func() { defer g.done.Done(); defer close(g.exited); g.loop(ctx) }()
	go func() { defer g.done.Done(); g.watchLinks(ctx) }()
	return g, nil
}

// bgpChanged is bgp's OnChange; it runs on GoBGP's event goroutine and
// only signals.
func (g *Gateway) bgpChanged() {
	select {
	case g.dirty <- struct{}{}:
	default:
	}
}

// Ready is nil while the gateway runs all of the revision it committed.
func (g *Gateway) Ready() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return errors.New("gateway: closed")
	case !g.committed:
		return errors.New("gateway: no revision committed yet")
	case g.degraded != nil:
		return fmt.Errorf("gateway: degraded: %w", g.degraded)
	}
	return nil
}

// setDegraded publishes what the loop could not apply (nil: everything).
func (g *Gateway) setDegraded(err error) {
	g.mu.Lock()
	g.degraded = err
	g.mu.Unlock()
}

// Close stops the loop, then BGP (peers withdraw our routes at once and the
// listen port is free), then the tunnels (their UDP ports and TUN devices),
// then our kernel routes. It returns once all of them are released.
func (g *Gateway) Close(ctx context.Context) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	g.stop()
	g.done.Wait()
	var errs []error
	if err := g.bgp.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("gateway: close bgp: %w", err))
	}
	if err := g.vpn.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("gateway: close tunnels: %w", err))
	}
	if t := g.table.Swap(nil); t != nil {
		if err := t.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gateway: remove kernel routes: %w", err))
		}
	}
	g.routeMetrics.Unregister()
	return errors.Join(errs...)
}
