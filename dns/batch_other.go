//go:build !linux

package dns

import "net"

func (l *listeners) serveUDPBatch(c *net.UDPConn) bool { return false }
