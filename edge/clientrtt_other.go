//go:build !linux

package edge

import (
	"net"
	"time"
)

type tcpCounters struct {
	rtt              time.Duration
	retrans, dataOut uint32
}

// connInfo: only Linux tells a connection's counters here.
func connInfo(net.Conn) (tcpCounters, bool) { return tcpCounters{}, false }

func connRTT(net.Conn) (time.Duration, bool) { return 0, false }
