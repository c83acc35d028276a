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
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
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
	live     map[string]status.NodeStatus
	geo      geoState
	failOpen map[string]bool
	// sawLive: some edge has been live since the server started; until
	// then fail open is the site starting, not an outage. noted: that
	// start was logged. warned: distributions whose live edges all went.
	sawLive bool
	noted   bool
	warned  map[string]bool
	rrl     *rrl // kept across states while the rate stays
	ln      *listeners
	closed  bool

	// lat is what edges measured towards client networks (latency.go).
	lat atomic.Pointer[latTable]
}

// New makes a server; it listens once its first revision is committed.
func New(o Options) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, fmt.Errorf("dns metrics: %w", err)
	}
	return &Server{opts: o, log: o.Logger, m: m, failOpen: map[string]bool{}, warned: map[string]bool{}}, nil
}

// Prepare compiles snap and binds its listeners when the address is new
// (the running ones are reused otherwise). Nothing serves it until Commit.
func (s *Server) Prepare(ctx context.Context, snap *config.Snapshot) (role.Change, error) {
	if snap == nil {
		return nil, errors.New("dns: nil snapshot")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("dns: server closed")
	}
	c := &dnsChange{s: s, snap: snap, live: s.live}
	var err error
	if c.geo, err = s.geoFor(snap.Site.DNS); err != nil {
		return nil, err
	}
	if c.rrl, err = s.rrlFor(snap.Site.DNS.RateLimit); err != nil {
		return nil, fmt.Errorf("dns: revision %d: %w", snap.Revision, err)
	}
	// A change to a few distributions of a large zone compiles those.
	if cur := s.cur.Load(); cur != nil && cur.loc == c.geo.loc && cur.rrl == c.rrl {
		c.st = buildFrom(cur, buildInput{snap: snap, live: s.live, loc: c.geo.loc}, liveKey(snap, s.live))
	}
	if c.st == nil {
		if c.st, err = s.build(snap, s.live, c.geo.loc, c.rrl); err != nil {
			return nil, fmt.Errorf("dns: revision %d: %w", snap.Revision, err)
		}
	}
	addr := s.opts.Addr
	if addr == "" {
		n := snap.Site.Node(s.opts.Node)
		if n == nil {
			return nil, fmt.Errorf("dns: node %q is not in the site", s.opts.Node)
		}
		addr = n.Listen.DNS
	}
	if addr == "" {
		return nil, fmt.Errorf("dns: node %q has no listen.dns", s.opts.Node)
	}
	if s.ln == nil || s.ln.addr != addr {
		if c.ln, err = bind(ctx, s, addr); err != nil {
			return nil, fmt.Errorf("dns: listen %s: %w", addr, err)
		}
		c.ln.addr = addr
	}
	return c, nil
}

// dnsChange is a compiled revision with what it needs beside the running
// state: the geo database and locator, the rate limiter, new listeners.
type dnsChange struct {
	s    *Server
	snap *config.Snapshot
	live map[string]status.NodeStatus // what st was built with
	geo  geoState
	rrl  *rrl
	st   *state
	ln   *listeners // nil: the running listeners stay
}

func (c *dnsChange) Commit() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.geo, s.rrl, s.snap = c.geo, c.rrl, c.snap
	// The latency table follows the committed site (which nodes are edges,
	// in which cloud) and the liveness known now.
	s.lat.Store(buildLatency(c.snap, s.live))
	st := c.st
	if liveKey(c.snap, c.live) != liveKey(c.snap, s.live) {
		// Liveness moved since Prepare; the snapshot compiled then, so
		// only the answers change.
		if fresh, err := s.build(c.snap, s.live, s.geo.loc, s.rrl); err == nil {
			st = fresh
		}
	}
	s.swap(st)
	if c.ln == nil {
		return
	}
	old := s.ln
	s.ln = c.ln
	c.ln.serve()
	s.log.Info("dns serving", "zone", c.snap.Site.DNS.Zone, "udp", c.ln.udpAddr(), "tcp", c.ln.tcpAddr(), "revision", c.snap.Revision)
	if old != nil {
		old.closeSockets() // the port is free once Commit returns
		go old.close(context.Background())
	}
}

func (c *dnsChange) Abort() {
	if c.ln != nil {
		c.ln.closeSockets()
	}
}

// SetNodes takes the live nodes (those whose lease exists) and rebuilds the
// answers. A node absent from live is dead.
func (s *Server) SetNodes(live map[string]status.NodeStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if live == nil {
		live = map[string]status.NodeStatus{}
	}
	if s.snap != nil {
		s.lat.Store(buildLatency(s.snap, live))
	}
	// The running state's key is the one of s.live (build made it).
	if cur := s.cur.Load(); s.snap != nil && s.live != nil && cur != nil && liveKey(s.snap, live) == cur.liveKey {
		s.live = live
		return // agents report often; rebuild only when what DNS uses changed
	}
	s.live = live
	if s.snap == nil || s.closed {
		return
	}
	st, err := s.build(s.snap, live, s.geo.loc, s.rrl)
	if err != nil { // the snapshot built before; only liveness changed
		s.log.Error("dns: rebuilding after a node change", "err", err)
		return
	}
	s.swap(st)
}

// geoState is the geo database and the site networks a state locates
// clients with; it is replaced whole.
type geoState struct {
	db     *geoDB
	spec   string // the database files with their size and mtime
	loc    *locator
	locKey string
}

// geoFor returns the running geo state when cfg does not change it, else
// a new one loaded beside it.
func (s *Server) geoFor(cfg config.DNS) (geoState, error) {
	// The spec holds each file's size and mtime, so an updated database
	// is picked up by the next revision (SIGHUP) without a restart.
	spec := cfg.GeoIP
	for _, p := range strings.Split(cfg.GeoIP, ",") {
		if fi, err := os.Stat(strings.TrimSpace(p)); err == nil {
			spec += fmt.Sprintf("|%d@%d", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	g := s.geo
	if g.db == nil || spec != g.spec {
		db := &geoDB{}
		if cfg.GeoIP != "" {
			var err error
			if db, err = loadGeoDB(cfg.GeoIP); err != nil {
				return geoState{}, fmt.Errorf("dns: %w", err)
			}
		}
		g = geoState{db: db, spec: spec}
	}
	if k := fmt.Sprint(cfg.Networks); g.loc == nil || k != g.locKey {
		l, err := newLocator(g.db, cfg.Networks)
		if err != nil {
			return geoState{}, fmt.Errorf("dns: %w", err)
		}
		g.loc, g.locKey = l, k
	}
	return g, nil
}

// rrlFor keeps the running rate limiter (and its buckets) while the rate
// stays.
func (s *Server) rrlFor(rate int) (*rrl, error) {
	if rate < 0 {
		return nil, fmt.Errorf("dns.rateLimit %d is negative", rate)
	}
	if s.rrl != nil && int(s.rrl.rate) == rate {
		return s.rrl, nil
	}
	return newRRL(rate), nil
}

func (s *Server) build(snap *config.Snapshot, live map[string]status.NodeStatus, loc *locator, r *rrl) (*state, error) {
	st, err := build(buildInput{snap: snap, live: live, loc: loc})
	if err != nil {
		return nil, err
	}
	st.locs = s.m.locCounters(st.labels)
	st.rrl = r
	// The state reads the server's latency table; Commit and SetNodes
	// replace it (build also runs in Prepare, which must change nothing).
	st.lat = &s.lat
	st.liveKey = liveKey(snap, live)
	return st, nil
}

// swap publishes st and reports what changed that an operator must know.
func (s *Server) swap(st *state) {
	s.cur.Store(st)
	now := make(map[string]bool, len(st.failOpen))
	for _, d := range st.failOpen {
		now[d] = true
		switch {
		case s.failOpen[d]:
		case !s.sawLive:
			// Edges register after they start: every start-up goes
			// through this, so it is said once and not as a warning.
			if !s.noted {
				s.noted = true
				s.log.Info("dns: no edge is live yet; answering with every edge until one is (the site is starting)", "distributions", len(st.failOpen))
			}
		default:
			s.warned[d] = true
			s.log.Warn("dns: every live edge of the distribution is gone; answering with every edge (fail open)", "distribution", d)
		}
	}
	for d := range s.warned {
		if !now[d] {
			delete(s.warned, d)
			s.log.Info("dns: distribution no longer fails open", "distribution", d)
		}
	}
	if st.liveEdges > 0 && s.live != nil { // nil: liveness not known yet, every edge counts as live
		s.sawLive = true
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
func liveKey(snap *config.Snapshot, live map[string]status.NodeStatus) string {
	var b strings.Builder
	b.Grow(len(snap.Site.Nodes))
	for i := range snap.Site.Nodes {
		st, ok := live[snap.Site.Nodes[i].Name]
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
