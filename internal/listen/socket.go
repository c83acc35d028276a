package listen

import (
	"errors"
	"net"
	"net/netip"

	"github.com/intercloud/intercloud/internal/sockets"
)

// Drift says whether this listener's socket is still the one the kernel
// has listening on its address: "" when it is, else what is there instead
// ("not bound" after `ss -K` killed it, "held by pid 123 (nginx), …" once
// another process took the port).
func (l *Listener) Drift() (string, error) {
	if l.tcp == nil {
		return "", errors.New("listen: not a TCP listener")
	}
	ino, err := sockets.Inode(l.tcp)
	if errors.Is(err, net.ErrClosed) {
		ino = 0 // closed: whatever is bound there is not ours
	} else if err != nil {
		return "", err
	}
	addr, err := netip.ParseAddrPort(l.tcp.Addr().String())
	if err != nil {
		return "", err
	}
	return sockets.Check("tcp", addr, sockets.TCPListen, ino)
}
