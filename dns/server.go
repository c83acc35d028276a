// Package dns is the authoritative GeoDNS server of the dns role: it answers
// for the site's zone and sends each client to the nearest cloud that has
// live, healthy edges. Every config or liveness change compiles a new state
// that is swapped in atomically; listeners live across swaps.
package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/config"
)

// Options configure a Server.
type Options struct {
	// Node is this node's name; its listen.dns is the address served.
	Node string
	// Addr, when set, is listened on instead of the node's listen.dns.
	Addr     string
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// UDPSockets is how many SO_REUSEPORT sockets (and reader goroutines)
	// serve UDP; 0 means GOMAXPROCS.
	UDPSockets int
	// QueryLog logs every answered query at debug level (client, name,
	// type, rcode, pool). It costs allocations per query: debugging only.
	QueryLog bool
	// NoBatch serves UDP one datagram per system call instead of with
	// recvmmsg/sendmmsg (for comparison and for kernels without them).
	NoBatch bool
}

// Server is the GeoDNS server.
type Server struct {
	opts Options
	log  *slog.Logger
	m    *metrics
	cur  atomic.Pointer[state]

	mu       sync.Mutex // serializes builds and guards what follows
	snap     *config.Snapshot
	live     map[string]config.NodeStatus
	geoSpec  string
	geo      *geoDB
	locKey   string
	loc      *locator
	failOpen map[string]bool
	rrl      *rrl // kept across states while the rate stays
	ln       *listeners
	closed   bool
}

// New makes a server; it listens on the first successful Apply.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, fmt.Errorf("dns metrics: %w", err)
	}
	return &Server{opts: o, log: o.Logger, m: m, failOpen: map[string]bool{}}, nil
}

// Apply compiles snap and swaps it in; the first call also starts
// listening. On error the previous state keeps serving.
func (s *Server) Apply(ctx context.Context, snap *config.Snapshot) error {
	if snap == nil {
		return errors.New("dns: nil snapshot")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("dns: server closed")
	}
	if err := s.loadGeo(snap.Site.DNS); err != nil {
		return err
	}
	st, err := s.build(snap)
	if err != nil {
		return fmt.Errorf("dns: revision %d: %w", snap.Revision, err)
	}
	if s.ln == nil {
		addr := s.opts.Addr
		if addr == "" {
			n := snap.Site.Node(s.opts.Node)
			if n == nil {
				return fmt.Errorf("dns: node %q is not in the site", s.opts.Node)
			}
			addr = n.Listen.DNS
		}
		if addr == "" {
			return fmt.Errorf("dns: node %q has no listen.dns", s.opts.Node)
		}
		s.swap(st)
		ln, err := listen(ctx, s, addr)
		if ln != nil {
			ln.addr = addr
		}
		if err != nil {
			s.cur.Store(nil)
			return fmt.Errorf("dns: listen %s: %w", addr, err)
		}
		s.ln = ln
		s.log.Info("dns serving", "zone", snap.Site.DNS.Zone, "udp", ln.udpAddr(), "tcp", ln.tcpAddr(), "revision", snap.Revision)
	} else {
		s.swap(st)
		if n := snap.Site.Node(s.opts.Node); s.opts.Addr == "" && n != nil && n.Listen.DNS != s.ln.addr {
			s.log.Warn("dns: listen.dns changed; the new address takes effect on restart", "serving", s.ln.addr, "configured", n.Listen.DNS)
		}
	}
	s.snap = snap
	return nil
}

// SetNodes takes the live nodes (those whose lease exists) and rebuilds the
// answers. A node absent from live is dead.
func (s *Server) SetNodes(live map[string]config.NodeStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if live == nil {
		live = map[string]config.NodeStatus{}
	}
	if s.snap != nil && s.live != nil && liveKey(s.snap, live) == liveKey(s.snap, s.live) {
		s.live = live
		return // agents report often; rebuild only when what DNS uses changed
	}
	s.live = live
	if s.snap == nil || s.closed {
		return
	}
	st, err := s.build(s.snap)
	if err != nil { // the snapshot built before; only liveness changed
		s.log.Error("dns: rebuilding after a node change", "err", err)
		return
	}
	s.swap(st)
}

// loadGeo (re)loads the geo database and the site networks when they change.
func (s *Server) loadGeo(cfg config.DNS) error {
	// The key holds each file's size and mtime, so an updated database is
	// picked up by the next Apply (SIGHUP) without a restart.
	spec := cfg.GeoIP
	for _, p := range strings.Split(cfg.GeoIP, ",") {
		if fi, err := os.Stat(strings.TrimSpace(p)); err == nil {
			spec += fmt.Sprintf("|%d@%d", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	if s.geo == nil || spec != s.geoSpec {
		var g *geoDB
		if cfg.GeoIP != "" {
			var err error
			if g, err = loadGeoDB(cfg.GeoIP); err != nil {
				return fmt.Errorf("dns: %w", err)
			}
		} else {
			g = &geoDB{}
		}
		s.geo, s.geoSpec, s.locKey = g, spec, "\x00" // force a new locator
	}
	k := fmt.Sprint(cfg.Networks)
	if s.loc == nil || k != s.locKey {
		l, err := newLocator(s.geo, cfg.Networks)
		if err != nil {
			return fmt.Errorf("dns: %w", err)
		}
		s.loc, s.locKey = l, k
	}
	return nil
}

func (s *Server) build(snap *config.Snapshot) (*state, error) {
	st, err := build(buildInput{snap: snap, live: s.live, loc: s.loc})
	if err != nil {
		return nil, err
	}
	st.locs = s.m.locCounters(st.labels)
	if rate := snap.Site.DNS.RateLimit; rate < 0 {
		return nil, fmt.Errorf("dns.rateLimit %d is negative", rate)
	} else if s.rrl == nil || int(s.rrl.rate) != rate {
		s.rrl = newRRL(rate)
	}
	st.rrl = s.rrl
	return st, nil
}

// swap publishes st and reports what changed that an operator must know.
func (s *Server) swap(st *state) {
	s.cur.Store(st)
	now := map[string]bool{}
	for _, d := range st.failOpen {
		now[d] = true
		if !s.failOpen[d] {
			s.log.Warn("dns: no live edge for distribution, answering with every edge (fail open)", "distribution", d)
		}
	}
	for d := range s.failOpen {
		if !now[d] {
			s.log.Info("dns: distribution has live edges again", "distribution", d)
		}
	}
	s.failOpen = now
	s.m.failOpen.Set(float64(len(now)))
	s.m.revision.Set(float64(st.rev))
	s.m.edges.WithLabelValues("live").Set(float64(st.liveEdges))
	s.m.edges.WithLabelValues("out").Set(float64(st.edges - st.liveEdges))
}

// Ready is nil once the server listens with a state.
func (s *Server) Ready() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil || s.cur.Load() == nil {
		return errors.New("dns: no config applied yet")
	}
	return nil
}

// Addrs returns the bound UDP and TCP addresses (nil before the first Apply).
func (s *Server) Addrs() (udp, tcp net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil, nil
	}
	return s.ln.udpAddr(), s.ln.tcpAddr()
}

// Close stops listening and waits for queries in flight, or for ctx.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	ln := s.ln
	s.mu.Unlock()
	// A dns role started again on this registry registers afresh.
	s.m.group.Unregister()
	if ln == nil {
		return nil
	}
	return ln.close(ctx)
}

// liveKey is what DNS uses of the live map: which nodes are up and healthy.
func liveKey(snap *config.Snapshot, live map[string]config.NodeStatus) string {
	var b strings.Builder
	for _, n := range snap.Site.Nodes {
		st, ok := live[n.Name]
		switch {
		case !ok:
			b.WriteByte('0')
		case st.Healthy:
			b.WriteByte('1')
		default:
			b.WriteByte('2')
		}
	}
	return b.String()
}
