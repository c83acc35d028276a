package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/intercloud/intercloud/internal/sockets"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

var _ role.Drifter = (*Server)(nil)

// Drift checks that the server's sockets are the ones the kernel has on
// its address: the TCP listener (not killed, not replaced by another
// process), and every UDP socket of its SO_REUSEPORT group, with no
// stranger in the group taking a share of the queries (role.Drifter).
func (s *Server) Drift(context.Context) ([]status.DriftResource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.ln
	if l == nil || s.closed {
		return nil, nil
	}
	var out []status.DriftResource
	tcp, err := l.tcpDrift()
	if err != nil {
		return nil, err
	}
	if tcp != "" {
		out = append(out, status.DriftResource{Kind: status.DriftListener, ID: "dns tcp " + l.addr,
			Expected: "listening on " + l.tcp.Addr().String(), Actual: tcp})
	}
	udp, err := l.udpDrift()
	if err != nil {
		return out, err
	}
	if udp.actual != "" {
		out = append(out, status.DriftResource{Kind: status.DriftListener, ID: "dns udp " + l.addr,
			Expected: fmt.Sprintf("%d sockets of this node on %s", len(l.udp), l.udpAddr()), Actual: udp.actual})
	}
	return out, nil
}

func addrPort(a net.Addr) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (l *listeners) tcpDrift() (string, error) {
	ino, err := sockets.Inode(l.tcp)
	if errors.Is(err, net.ErrClosed) {
		ino = 0
	} else if err != nil {
		return "", err
	}
	return sockets.Check("tcp", addrPort(l.tcp.Addr()), sockets.TCPListen, ino)
}

// udpState is what the UDP group looks like: which of ours are gone, and
// who else is in it.
type udpState struct {
	gone    []int // indexes into l.udp
	foreign []string
	actual  string // "" when all is as bound
}

func (l *listeners) udpDrift() (udpState, error) {
	var st udpState
	addr := addrPort(l.udpAddr())
	es, err := sockets.Bound("udp", addr.Port(), sockets.UDPUnconn)
	if err != nil {
		return st, err
	}
	bound := map[uint64]bool{}
	for _, e := range es {
		if sockets.Covers(e.Local, addr) || sockets.Covers(addr, e.Local) {
			bound[e.Inode] = true
		}
	}
	for i, c := range l.udp {
		ino, err := sockets.Inode(c)
		if err == nil && bound[ino] {
			delete(bound, ino)
			continue
		}
		st.gone = append(st.gone, i)
	}
	for ino := range bound {
		who := sockets.Holder(ino)
		if who == "" {
			who = "an unknown process"
		}
		st.foreign = append(st.foreign, fmt.Sprintf("%s, socket %d", who, ino))
	}
	var parts []string
	if len(st.gone) > 0 {
		parts = append(parts, fmt.Sprintf("%d of this node's %d sockets closed", len(st.gone), len(l.udp)))
	}
	if len(st.foreign) > 0 {
		parts = append(parts, "shared with "+strings.Join(st.foreign, "; "))
	}
	st.actual = strings.Join(parts, "; ")
	return st, nil
}

// Heal re-binds the TCP listener, or the UDP sockets of ours that are
// gone, on the address they had (role.Drifter). A stranger in the UDP
// group cannot be evicted from here: that is an error naming it.
func (s *Server) Heal(ctx context.Context, r status.DriftResource) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.ln
	if l == nil || s.closed || r.Kind != status.DriftListener {
		return fmt.Errorf("dns: cannot heal %s %s", r.Kind, r.ID)
	}
	switch r.ID {
	case "dns tcp " + l.addr:
		if got, err := l.tcpDrift(); err != nil || got == "" {
			return err // healthy again
		}
		addr := l.tcp.Addr().String()
		l.tcp.Close() // dead already; this ends its accept loop
		tl, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("dns: heal tcp listener %s: %w", addr, err)
		}
		l.tcp = tl.(*net.TCPListener)
		l.wg.Add(1)
		go l.serveTCP(l.tcp)
	case "dns udp " + l.addr:
		st, err := l.udpDrift()
		if err != nil {
			return err
		}
		addr := l.udpAddr().String()
		lc := net.ListenConfig{Control: reusePort}
		for _, i := range st.gone {
			l.udp[i].Close()
			pc, err := lc.ListenPacket(ctx, "udp", addr)
			if err != nil {
				return fmt.Errorf("dns: heal udp socket on %s: %w", addr, err)
			}
			l.udp[i] = pc.(*net.UDPConn)
			l.wg.Add(1)
			go l.serveUDP(l.udp[i])
		}
		if len(st.foreign) > 0 {
			return fmt.Errorf("dns: udp port %s is shared with %s (SO_REUSEPORT): stop that process; it takes a share of the queries",
				addr, strings.Join(st.foreign, "; "))
		}
	default:
		return fmt.Errorf("dns: heal %s: not a listener of this server", r.ID)
	}
	s.log.Info("dns: listener re-bound", "listener", r.ID, "was", r.Actual)
	return nil
}
