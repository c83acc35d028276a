//go:build !linux

package edge

import (
	"net"
	"time"
)

// connRTT: only Linux tells a connection's RTT here.
func connRTT(net.Conn) (time.Duration, bool) { return 0, false }
