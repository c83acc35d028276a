package bgp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// ErrNotRunning is returned by queries before the first Apply or after Close.
var ErrNotRunning = errors.New("bgp: not running")

// NeighborStatus is one session as `intercloud bgp neighbors` shows it.
type NeighborStatus struct {
	Name    string     `json:"name"`
	Kind    Kind       `json:"kind"`
	Address netip.Addr `json:"address"`
	ASN     uint32     `json:"asn"`
	// State is the FSM state: idle, connect, active, opensent,
	// openconfirm, established.
	State string `json:"state"`
	// Admin is up, down or max-prefix (shut down by the limit).
	Admin string `json:"admin"`
	// Since is when the session was established (zero if it is not).
	Since      time.Time `json:"since,omitzero"`
	Received   uint64    `json:"received"`
	Accepted   uint64    `json:"accepted"`
	Advertised uint64    `json:"advertised"`
	MaxPrefix  uint32    `json:"maxPrefix,omitempty"`
	LocalPref  uint32    `json:"localPref"`
	LastError  string    `json:"lastError,omitempty"`
}

// Established reports whether the session is up.
func (n NeighborStatus) Established() bool { return n.State == "established" }

// Neighbors lists every configured neighbor with its session state.
func (s *Server) Neighbors(ctx context.Context) ([]NeighborStatus, error) {
	srv := s.running()
	if srv == nil {
		return nil, ErrNotRunning
	}
	cfg := s.cfg.Load()
	var out []NeighborStatus
	err := srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		if p.Conf == nil || p.State == nil {
			return
		}
		addr, _ := netip.ParseAddr(p.Conf.NeighborAddress)
		ns := NeighborStatus{
			Address:   addr,
			ASN:       p.Conf.PeerAsn,
			Name:      p.Conf.Description,
			State:     strings.ToLower(strings.TrimPrefix(p.State.SessionState.String(), "SESSION_STATE_")),
			Admin:     adminName(p.State.AdminState),
			LastError: p.State.DisconnectMessage,
		}
		if cfg != nil {
			if n := cfg.Neighbor(addr); n != nil {
				ns.Name, ns.Kind, ns.MaxPrefix, ns.LocalPref = n.Name, n.Kind, n.MaxPrefix, n.Kind.LocalPref()
			}
		}
		if ns.Established() && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
			ns.Since = p.Timers.State.Uptime.AsTime()
		}
		for _, af := range p.AfiSafis {
			if af.State != nil {
				ns.Received += af.State.Received
				ns.Accepted += af.State.Accepted
				ns.Advertised += af.State.Advertised
			}
		}
		out = append(out, ns)
	})
	if err != nil {
		return nil, err
	}
	// GoBGP counts a path as accepted before the global import policy, so
	// count what reached the Loc-RIB instead.
	paths, err := s.list(ctx, false)
	if err != nil {
		return nil, err
	}
	accepted := map[netip.Addr]uint64{}
	for _, p := range paths {
		if !p.Local {
			accepted[p.PeerAddr]++
		}
	}
	for i := range out {
		out[i].Accepted = accepted[out[i].Address]
	}
	slices.SortFunc(out, func(a, b NeighborStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func adminName(a api.PeerState_AdminState) string {
	switch a {
	case api.PeerState_ADMIN_STATE_DOWN:
		return "down"
	case api.PeerState_ADMIN_STATE_PFX_CT:
		return "max-prefix"
	default:
		return "up"
	}
}

func stateName(s bgp.FSMState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BGP_FSM_"))
}

// Path is one route in the Loc-RIB.
type Path struct {
	Prefix  netip.Prefix `json:"prefix"`
	NextHop netip.Addr   `json:"nextHop"`
	// Neighbor is the name of the neighbor it came from; empty for our own.
	Neighbor  string     `json:"neighbor,omitempty"`
	Kind      Kind       `json:"kind,omitempty"`
	PeerAddr  netip.Addr `json:"peer,omitzero"`
	PeerASN   uint32     `json:"peerAsn,omitempty"`
	ASPath    []uint32   `json:"asPath"`
	LocalPref uint32     `json:"localPref,omitempty"`
	MED       uint32     `json:"med,omitempty"`
	Best      bool       `json:"best"`
	Local     bool       `json:"local"`
	Age       time.Time  `json:"since,omitzero"`
}

// Best returns the learned best paths: what belongs in the kernel. It
// reads the map kept from best-path events, not the RIB.
func (s *Server) Best(ctx context.Context) ([]Path, error) {
	if s.running() == nil {
		return nil, ErrNotRunning
	}
	s.bestMu.Lock()
	defer s.bestMu.Unlock()
	out := make([]Path, 0, len(s.best))
	for _, p := range s.best {
		out = append(out, p)
	}
	return out, nil
}

// Resync rebuilds the best paths from the Loc-RIB (a full walk: call it
// periodically, not on every change) and returns them.
func (s *Server) Resync(ctx context.Context) ([]Path, error) {
	paths, err := s.list(ctx, true)
	if err != nil {
		return nil, err
	}
	m := make(map[netip.Prefix]Path, len(paths))
	for _, p := range paths {
		m[p.Prefix] = p
	}
	s.bestMu.Lock()
	s.best = m
	s.bestMu.Unlock()
	return paths, nil
}

// Paths returns every path of the Loc-RIB, ours included.
func (s *Server) Paths(ctx context.Context) ([]Path, error) {
	return s.list(ctx, false)
}

func (s *Server) list(ctx context.Context, bestLearned bool) ([]Path, error) {
	srv := s.running()
	if srv == nil {
		return nil, ErrNotRunning
	}
	cfg := s.cfg.Load()
	var out []Path
	for _, fam := range []bgp.Family{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC} {
		err := srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam},
			func(nlri bgp.NLRI, paths []*apiutil.Path) {
				pfx, ok := nlriPrefix(nlri)
				if !ok {
					return
				}
				for _, p := range paths {
					local := p.PeerASN == 0 && !p.PeerAddress.IsValid()
					if bestLearned && (!p.Best || local || p.IsNexthopInvalid) {
						continue
					}
					out = append(out, toPath(pfx, p, local, cfg))
				}
			})
		if err != nil {
			return out, err
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

func nlriPrefix(n bgp.NLRI) (netip.Prefix, bool) {
	switch x := n.(type) {
	case *bgp.IPAddrPrefix:
		return x.Prefix, true
	}
	p, err := netip.ParsePrefix(n.String())
	return p, err == nil
}

func toPath(pfx netip.Prefix, p *apiutil.Path, local bool, cfg *Config) Path {
	out := Path{Prefix: pfx, Best: p.Best, Local: local, PeerASN: p.PeerASN, PeerAddr: p.PeerAddress, ASPath: []uint32{}}
	if p.Age > 0 {
		out.Age = time.Unix(p.Age, 0)
	}
	for _, a := range p.Attrs {
		switch x := a.(type) {
		case *bgp.PathAttributeNextHop:
			out.NextHop = x.Value
		case *bgp.PathAttributeMpReachNLRI:
			out.NextHop = x.Nexthop
		case *bgp.PathAttributeLocalPref:
			out.LocalPref = x.Value
		case *bgp.PathAttributeMultiExitDisc:
			out.MED = x.Value
		case *bgp.PathAttributeAsPath:
			for _, seg := range x.Value {
				out.ASPath = append(out.ASPath, seg.GetAS()...)
			}
		}
	}
	if cfg != nil && p.PeerAddress.IsValid() {
		if n := cfg.Neighbor(p.PeerAddress); n != nil {
			out.Neighbor, out.Kind = n.Name, n.Kind
		}
	}
	return out
}

// running is the live server; queries do not wait for an Apply in progress.
func (s *Server) running() *server.BgpServer { return s.live.Load() }
