package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	tcpIdle     = 10 * time.Second // RFC 7766 §6.2.3 suggests seconds, not minutes
	tcpMaxConns = 512
)

// listeners are the sockets of one server; they outlive every state swap.
type listeners struct {
	s     *Server
	addr  string // as configured
	udp   []*net.UDPConn
	tcp   *net.TCPListener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	sem   chan struct{}
}

func reusePort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	return errors.Join(err, serr)
}

// bind binds UDP (several SO_REUSEPORT sockets, so the kernel spreads
// queries over cores) and TCP on the same port; serve starts serving them.
func bind(ctx context.Context, s *Server, addr string) (*listeners, error) {
	_, port, _ := net.SplitHostPort(addr)
	for try := 0; ; try++ {
		l, err := bindOnce(ctx, s, addr)
		// with port 0 the UDP port may be taken for TCP: pick another
		if err == nil || port != "0" || try == 10 || !errors.Is(err, syscall.EADDRINUSE) {
			return l, err
		}
	}
}

func bindOnce(ctx context.Context, s *Server, addr string) (*listeners, error) {
	l := &listeners{s: s, conns: map[net.Conn]struct{}{}, sem: make(chan struct{}, tcpMaxConns)}
	lc := net.ListenConfig{Control: reusePort}
	n := s.opts.UDPSockets
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	// A plain bind first: with SO_REUSEPORT alone, a second server of the
	// same user on the same address would silently share it instead of
	// failing with "address in use".
	probe, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	bound := probe.LocalAddr().String() // the real port when addr asked for :0
	probe.Close()
	for len(l.udp) < n {
		pc, err := lc.ListenPacket(ctx, "udp", bound)
		if err != nil {
			l.closeSockets()
			return nil, err
		}
		l.udp = append(l.udp, pc.(*net.UDPConn))
	}
	tl, err := (&net.ListenConfig{}).Listen(ctx, "tcp", bound)
	if err != nil {
		l.closeSockets()
		return nil, err
	}
	l.tcp = tl.(*net.TCPListener)
	return l, nil
}

func (l *listeners) serve() {
	for _, c := range l.udp {
		l.wg.Add(1)
		go l.serveUDP(c)
	}
	l.wg.Add(1)
	go l.serveTCP(l.tcp)
}

func (l *listeners) udpAddr() net.Addr { return l.udp[0].LocalAddr() }
func (l *listeners) tcpAddr() net.Addr { return l.tcp.Addr() }

func (l *listeners) closeSockets() {
	for _, c := range l.udp {
		c.Close()
	}
	if l.tcp != nil {
		l.tcp.Close()
	}
}

func (l *listeners) close(ctx context.Context) error {
	l.closeSockets()
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serveUDP is one reader: its buffers and query are reused for every
// packet, so serving allocates nothing per query.
func (l *listeners) serveUDP(c *net.UDPConn) {
	defer l.wg.Done()
	if !l.s.opts.NoBatch && l.serveUDPBatch(c) {
		return
	}
	m := l.s.m
	buf := make([]byte, 65535)
	out := make([]byte, 0, 4096)
	var q query
	turn := rand.Uint32()
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP-induced errors: keep serving
		}
		t0 := time.Now()
		st := l.s.cur.Load()
		resp, o := st.respond(&q, buf[:n], from.Addr(), false, out, turn)
		turn++
		if resp == nil {
			m.dropped.Inc()
			continue
		}
		if st.rrl != nil {
			if resp = limit(st, &q, &o, from.Addr(), resp, t0, m); resp == nil {
				continue
			}
		}
		_, _ = c.WriteToUDPAddrPort(resp, from)
		m.latency.Observe(time.Since(t0).Seconds())
		m.observe(false, &o, st.locs)
		if l.s.opts.QueryLog {
			l.s.logQuery("udp", &q, &o, from.Addr())
		}
		if cap(resp) > cap(out) {
			out = resp[:0]
		}
	}
}

// serveTCP accepts on tl; a heal may replace l.tcp, and this one ends
// when tl is closed.
func (l *listeners) serveTCP(tl *net.TCPListener) {
	defer l.wg.Done()
	for {
		c, err := tl.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // out of descriptors: back off
			continue
		}
		select {
		case l.sem <- struct{}{}:
		default: // too many connections: refuse this one
			c.Close()
			continue
		}
		l.mu.Lock()
		l.conns[c] = struct{}{}
		l.mu.Unlock()
		l.wg.Add(1)
		go l.serveConn(c)
	}
}

// serveConn answers queries on one TCP connection in order (RFC 7766),
// until the client closes it or stays idle.
func (l *listeners) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		<-l.sem
		l.wg.Done()
	}()
	m := l.s.m
	var src = addrOf(c.RemoteAddr())
	var q query
	var lenb [2]byte
	buf := make([]byte, 65535)
	out := make([]byte, 2, 4096)
	turn := rand.Uint32()
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(c, lenb[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenb[:]))
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		t0 := time.Now()
		st := l.s.cur.Load()
		resp, o := st.respond(&q, buf[:n], src, true, out[2:2], turn)
		turn++
		if resp == nil {
			m.dropped.Inc()
			return // a response or a runt on a stream: the stream is not DNS
		}
		var msg []byte
		if cap(resp) == cap(out)-2 && &resp[:1][0] == &out[:3][2] { // written in place
			msg = out[:2+len(resp)]
		} else {
			msg = make([]byte, 2+len(resp))
			copy(msg[2:], resp)
			out = msg
		}
		binary.BigEndian.PutUint16(msg, uint16(len(resp)))
		c.SetWriteDeadline(time.Now().Add(tcpIdle))
		if _, err := c.Write(msg); err != nil {
			return
		}
		m.latency.Observe(time.Since(t0).Seconds())
		m.observe(true, &o, st.locs)
		if l.s.opts.QueryLog {
			l.s.logQuery("tcp", &q, &o, src)
		}
	}
}

func addrOf(a net.Addr) netip.Addr {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
