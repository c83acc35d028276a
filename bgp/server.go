package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Options are the speaker's collaborators.
type Options struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// OnChange is called whenever best paths or sessions change. It runs on
	// GoBGP's event goroutine and must return at once (signal a channel);
	// the consumer then reads Best.
	OnChange func()
}

// Server is the BGP speaker. Apply starts it and later applies config
// changes as a diff; Close stops it.
type Server struct {
	log  *slog.Logger
	opts Options
	m    *metrics

	mu        sync.Mutex // serializes Apply and Close
	srv       *server.BgpServer
	stopWatch context.CancelFunc
	global    Config // ASN, router ID and listeners of the running server
	announced map[netip.Prefix]bool
	peers     map[netip.Addr]Neighbor
	policyKey string
	assigned  bool
	closed    bool

	live atomic.Pointer[server.BgpServer]
	cfg  atomic.Pointer[Config] // last applied, for names in events and status

	limitMu  sync.Mutex
	overLimt map[netip.Addr]bool // neighbors shut down by max-prefix

	// best holds the learned best paths, kept from GoBGP's best-path
	// events so that readers never walk the whole Loc-RIB; Resync rebuilds
	// it from the RIB.
	bestMu sync.Mutex
	best   map[netip.Prefix]Path
}

// New returns a speaker that is not running yet. It fails only when its
// metrics cannot be registered (another speaker holds them).
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		log:       opts.Logger,
		opts:      opts,
		announced: map[netip.Prefix]bool{},
		peers:     map[netip.Addr]Neighbor{},
		overLimt:  map[netip.Addr]bool{},
		best:      map[netip.Prefix]Path{},
	}
	m, err := newMetrics(s, opts.Registry)
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// Apply makes cfg the running state. The first call starts the server;
// later calls change only what differs: unchanged sessions stay up, a
// neighbor whose session parameters changed is re-created, a policy change
// soft-resets the neighbors it affects. A change of ASN, router ID or
// listener restarts the server (every session). Errors are joined; what
// could be applied stays applied.
func (s *Server) Apply(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("bgp config: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bgp: server closed")
	}
	if s.srv != nil && !sameGlobal(s.global, cfg) {
		s.log.Warn("bgp: ASN, router ID or listener changed: restarting every session",
			"asn", cfg.ASN, "routerId", cfg.RouterID, "port", cfg.ListenPort)
		s.stopLocked(ctx, false)
	}
	if s.srv == nil {
		if err := s.start(ctx, cfg); err != nil {
			s.m.applyErrors.Inc()
			return err
		}
	}
	c := cfg
	s.cfg.Store(&c)

	var errs []error
	// Order: withdraw what is no longer ours, then the policies, then
	// originate (before the peers on the first start, so that each peer
	// gets the whole table in its first updates), then the peers.
	want := map[netip.Prefix]bool{}
	for _, p := range cfg.Announce {
		want[p] = true
	}
	var gone, added []netip.Prefix
	for p := range s.announced {
		if !want[p] {
			gone = append(gone, p)
		}
	}
	for _, p := range cfg.Announce {
		if !s.announced[p] {
			added = append(added, p)
		}
	}
	if len(gone) > 0 {
		if err := s.withdraw(gone); err != nil {
			errs = append(errs, err)
		}
	}

	key := policyKey(&cfg)
	policyChanged := key != s.policyKey
	if policyChanged {
		if err := s.setPolicies(ctx, &cfg); err != nil {
			errs = append(errs, err)
			policyChanged = false
		} else {
			s.policyKey = key
		}
	}

	if len(added) > 0 {
		if err := s.announce(added); err != nil {
			errs = append(errs, err)
		}
	}

	errs = append(errs, s.applyPeers(ctx, cfg, policyChanged)...)
	if err := errors.Join(errs...); err != nil {
		s.m.applyErrors.Inc()
		return fmt.Errorf("bgp apply: %w", err)
	}
	return nil
}

func sameGlobal(a, b Config) bool {
	return a.ASN == b.ASN && a.RouterID == b.RouterID && a.ListenPort == b.ListenPort &&
		slices.Equal(a.ListenAddresses, b.ListenAddresses)
}

func (s *Server) start(ctx context.Context, cfg Config) error {
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelInfo)
	// GoBGP logs every path at debug level: 100k lines for a full table.
	// Its logs stay at info and above even when ours are at debug.
	glog := slog.New(minLevel{s.log.Handler(), lv}).With("component", "gobgp")
	srv := server.NewBgpServer(server.LoggerOption(glog, lv))
	go srv.Serve()
	port := cfg.ListenPort
	g := &api.Global{Asn: cfg.ASN, RouterId: cfg.RouterID.String(), ListenPort: int32(port)}
	for _, a := range cfg.ListenAddresses {
		g.ListenAddresses = append(g.ListenAddresses, a.String())
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		return fmt.Errorf("bgp: start (asn %d, port %d): %w", cfg.ASN, port, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	err := srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{
		OnBestPath:   s.onBest,
		OnPeerUpdate: s.onPeer,
	}, server.WatchBestPath(false), server.WatchPeer())
	if err != nil {
		cancel()
		srv.Stop()
		return fmt.Errorf("bgp: watch events: %w", err)
	}
	s.srv, s.stopWatch = srv, cancel
	s.live.Store(srv)
	s.global = Config{ASN: cfg.ASN, RouterID: cfg.RouterID, ListenPort: cfg.ListenPort, ListenAddresses: cfg.ListenAddresses}
	s.announced = map[netip.Prefix]bool{}
	s.peers = map[netip.Addr]Neighbor{}
	s.policyKey, s.assigned = "", false
	s.bestMu.Lock()
	s.best = map[netip.Prefix]Path{}
	s.bestMu.Unlock()
	s.log.Info("bgp: started", "asn", cfg.ASN, "routerId", cfg.RouterID, "port", port)
	return nil
}

// onBest runs on GoBGP's event goroutine for every batch of best-path
// changes: it only updates the map, the consumer does the work.
func (s *Server) onBest(paths []*apiutil.Path, _ time.Time) {
	cfg := s.cfg.Load()
	s.bestMu.Lock()
	for _, p := range paths {
		pfx, ok := nlriPrefix(p.Nlri)
		if !ok {
			continue
		}
		local := p.PeerASN == 0 && !p.PeerAddress.IsValid()
		if p.Withdrawal || local || p.IsNexthopInvalid {
			delete(s.best, pfx)
			continue
		}
		bp := toPath(pfx, p, false, cfg)
		bp.Best = true
		s.best[pfx] = bp
	}
	s.bestMu.Unlock()
	s.changed()
}

func (s *Server) changed() {
	if s.opts.OnChange != nil {
		s.opts.OnChange()
	}
}

func (s *Server) onPeer(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := ev.Peer.State
	addr := st.NeighborAddress
	name, kind := s.nameOf(addr)
	if st.AdminState == api.PeerState_ADMIN_STATE_PFX_CT {
		s.limitMu.Lock()
		first := !s.overLimt[addr]
		s.overLimt[addr] = true
		s.limitMu.Unlock()
		if first {
			s.m.maxPrefix.WithLabelValues(name).Inc()
			s.log.Error("bgp: neighbor sent more prefixes than its max-prefix: session shut down until the neighbor is reconfigured",
				"neighbor", name, "address", addr, "kind", kind)
		}
	}
	if st.SessionState == bgp.BGP_FSM_ESTABLISHED {
		s.m.established.WithLabelValues(name).Inc()
		s.log.Info("bgp: session established", "neighbor", name, "address", addr, "kind", kind)
	} else {
		s.log.Info("bgp: session state", "neighbor", name, "address", addr, "state", stateName(st.SessionState),
			"reason", st.DisconnectMessage)
	}
	s.changed()
}

func (s *Server) nameOf(a netip.Addr) (string, Kind) {
	if c := s.cfg.Load(); c != nil {
		if n := c.Neighbor(a); n != nil {
			return n.Name, n.Kind
		}
	}
	return a.String(), ""
}

func policyKey(cfg *Config) string {
	var b strings.Builder
	fmt.Fprint(&b, cfg.Announce)
	ns := slices.Clone(cfg.Neighbors)
	slices.SortFunc(ns, func(a, b Neighbor) int { return a.Address.Compare(b.Address) })
	for _, n := range ns {
		fmt.Fprint(&b, "|", n.Address, n.Kind, n.Allowed)
	}
	return b.String()
}

func (s *Server) setPolicies(ctx context.Context, cfg *Config) error {
	if err := s.srv.SetPolicies(ctx, policies(cfg)); err != nil {
		return fmt.Errorf("set policies: %w", err)
	}
	if s.assigned {
		return nil
	}
	for _, a := range assignments() {
		if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: a}); err != nil {
			return fmt.Errorf("assign %s policy: %w", a.Direction, err)
		}
	}
	s.assigned = true
	return nil
}

// announceBatch bounds one AddPath call: GoBGP runs it on its single
// management goroutine, and a 100k-path call would hold every other API
// call (and the peers' updates waiting on it) for seconds.
const announceBatch = 4096

func (s *Server) announce(ps []netip.Prefix) error {
	var errs []error
	for len(ps) > 0 {
		n := min(len(ps), announceBatch)
		if err := s.announceChunk(ps[:n]); err != nil {
			errs = append(errs, err)
		}
		ps = ps[n:]
	}
	return errors.Join(errs...)
}

func (s *Server) announceChunk(ps []netip.Prefix) error {
	paths, err := announcePaths(ps)
	if err != nil {
		return err
	}
	resps, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: paths})
	if err != nil && len(resps) == 0 {
		return fmt.Errorf("announce %d prefixes from %v: %w", len(ps), ps[0], err)
	}
	var errs []error
	for i, p := range ps {
		if i < len(resps) && resps[i].Error != nil {
			errs = append(errs, fmt.Errorf("announce %v: %w", p, resps[i].Error))
			continue
		}
		s.announced[p] = true
	}
	return errors.Join(errs...)
}

func (s *Server) withdraw(ps []netip.Prefix) error {
	paths, err := announcePaths(ps)
	if err != nil {
		return err
	}
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: paths}); err != nil {
		return fmt.Errorf("withdraw %v: %w", ps, err)
	}
	for _, p := range ps {
		delete(s.announced, p)
	}
	return nil
}

func (s *Server) applyPeers(ctx context.Context, cfg Config, policyChanged bool) []error {
	var errs []error
	want := map[netip.Addr]Neighbor{}
	for _, n := range cfg.Neighbors {
		want[n.Address] = n
	}
	for a, old := range s.peers {
		if n, ok := want[a]; ok && sessionEqual(old, n) {
			continue
		}
		if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
			errs = append(errs, fmt.Errorf("remove neighbor %s (%v): %w", old.Name, a, err))
			continue
		}
		delete(s.peers, a)
		s.clearLimit(a)
		s.m.forget(old.Name)
		s.log.Info("bgp: neighbor removed", "neighbor", old.Name, "address", a)
	}
	for _, n := range cfg.Neighbors {
		old, ok := s.peers[n.Address]
		if !ok {
			if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(n)}); err != nil {
				errs = append(errs, fmt.Errorf("add neighbor %s (%v): %w", n.Name, n.Address, err))
				continue
			}
			s.peers[n.Address] = n
			s.log.Info("bgp: neighbor added", "neighbor", n.Name, "address", n.Address, "asn", n.ASN, "kind", n.Kind)
			continue
		}
		s.peers[n.Address] = n
		if policyChanged && !policyEqual(old, n) {
			// Re-run the import policy over what the neighbor already sent
			// (GoBGP keeps the Adj-RIB-In), without touching the session.
			err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{
				Address: n.Address.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_IN,
			})
			if err != nil {
				errs = append(errs, fmt.Errorf("soft reset of neighbor %s (%v): %w", n.Name, n.Address, err))
			}
		}
	}
	return errs
}

func (s *Server) clearLimit(a netip.Addr) {
	s.limitMu.Lock()
	delete(s.overLimt, a)
	s.limitMu.Unlock()
}

// Close stops the speaker: every session is closed with a Cease
// notification, so peers withdraw our routes at once.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.stopLocked(ctx, true)
	// A speaker that never started holds its metrics too.
	s.m.unregister()
	return nil
}

func (s *Server) stopLocked(ctx context.Context, final bool) {
	if s.srv == nil {
		return
	}
	s.stopWatch()
	s.live.Store(nil)
	done := make(chan struct{})
	srv := s.srv
	go func() {
		srv.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("bgp: stop did not finish before the deadline", "error", ctx.Err())
	}
	s.srv = nil
	if final {
		s.m.unregister()
	}
}

// minLevel raises a handler's threshold.
type minLevel struct {
	slog.Handler
	min slog.Leveler
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min.Level() && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}
func (h minLevel) WithGroup(g string) slog.Handler { return minLevel{h.Handler.WithGroup(g), h.min} }
