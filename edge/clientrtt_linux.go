package edge

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// tcpCounters are what the kernel counts of a TCP connection.
type tcpCounters struct {
	rtt time.Duration // smoothed RTT (after the handshake: the handshake's)
	// retrans and dataOut: data segments retransmitted, and sent in all
	// (retransmissions included).
	retrans, dataOut uint32
}

// connInfo reads a TCP connection's counters (TCP_INFO).
func connInfo(c net.Conn) (tcpCounters, bool) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return tcpCounters{}, false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return tcpCounters{}, false
	}
	var info *unix.TCPInfo
	cerr := raw.Control(func(fd uintptr) { info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if cerr != nil || err != nil || info == nil {
		return tcpCounters{}, false
	}
	return tcpCounters{rtt: time.Duration(info.Rtt) * time.Microsecond, retrans: info.Total_retrans, dataOut: info.Data_segs_out}, true
}

// connRTT is the kernel's smoothed RTT of a TCP connection.
func connRTT(c net.Conn) (time.Duration, bool) {
	i, ok := connInfo(c)
	return i.rtt, ok && i.rtt > 0
}
