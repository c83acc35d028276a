package edge

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/intercloud/intercloud/status"
)

// clientRTT keeps the round-trip time this edge measured towards client
// networks (IPv4 /24, IPv6 /48): the kernel's handshake RTT of each
// accepted connection. The dns role's latency policy sends a client to
// the edges that measured the lowest RTT towards its network. One
// goroutine owns the table; connections hand it samples without waiting.
type clientRTT struct {
	in   chan rttSample
	top  atomic.Pointer[[]status.NetRTT]
	stop context.CancelFunc
	done chan struct{}
}

type rttSample struct {
	addr netip.Addr
	rtt  time.Duration
}

const (
	// maxNetworks bounds the table (and what the node reports through
	// the store): the networks with the most connections are kept.
	maxNetworks = 256
	// rttPublish is how often the reported list is rebuilt; the agent
	// writes it with the node's status, at most every few seconds.
	rttPublish = time.Second
	rttAlpha   = 0.2
)

func newClientRTT() *clientRTT {
	c := &clientRTT{in: make(chan rttSample, 1024), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	go c.run(ctx)
	return c
}

func (c *clientRTT) close() { c.stop(); <-c.done }

// connContext is the listeners' ConnContext: it samples the connection's
// RTT and changes nothing of its context.
func (c *clientRTT) connContext(ctx context.Context, conn net.Conn) context.Context {
	if rtt, ok := connRTT(conn); ok {
		if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil {
			select {
			case c.in <- rttSample{ap.Addr().Unmap(), rtt}:
			default:
			}
		}
	}
	return ctx
}

// networkOf is the client network an address belongs to.
func networkOf(a netip.Addr) netip.Prefix {
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

type netStat struct {
	rtt     time.Duration
	samples int64
	seen    time.Time
}

func (c *clientRTT) run(ctx context.Context) {
	defer close(c.done)
	nets := map[netip.Prefix]*netStat{}
	tick := time.NewTicker(rttPublish)
	defer tick.Stop()
	dirty := false
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-c.in:
			p := networkOf(s.addr)
			st := nets[p]
			if st == nil {
				if len(nets) >= 4*maxNetworks {
					evictOldest(nets)
				}
				st = &netStat{rtt: s.rtt}
				nets[p] = st
			}
			st.rtt += time.Duration(rttAlpha * float64(s.rtt-st.rtt))
			st.samples++
			st.seen = time.Now()
			dirty = true
		case <-tick.C:
			if dirty {
				c.publish(nets)
				dirty = false
			}
		}
	}
}

func evictOldest(nets map[netip.Prefix]*netStat) {
	var oldest netip.Prefix
	var at time.Time
	for p, st := range nets {
		if at.IsZero() || st.seen.Before(at) {
			oldest, at = p, st.seen
		}
	}
	delete(nets, oldest)
}

func (c *clientRTT) publish(nets map[netip.Prefix]*netStat) {
	out := make([]status.NetRTT, 0, len(nets))
	for p, st := range nets {
		out = append(out, status.NetRTT{Network: p, RTT: st.rtt.Round(10 * time.Microsecond), Samples: st.samples})
	}
	slices.SortFunc(out, func(a, b status.NetRTT) int {
		if a.Samples != b.Samples {
			return int(b.Samples - a.Samples)
		}
		return a.Network.Addr().Compare(b.Network.Addr())
	})
	if len(out) > maxNetworks {
		out = out[:maxNetworks]
	}
	c.top.Store(&out)
}

// report is the published list (nil before the first connection).
func (c *clientRTT) report() []status.NetRTT {
	if p := c.top.Load(); p != nil {
		return *p
	}
	return nil
}
