package origin

import (
	"context"
	"net"
	"net/http"
	"syscall"

	"golang.org/x/sys/unix"
)

// A response from a file is a header write followed by sendfile, and a
// multipart one is many small writes. Sent as they come, they make several
// small segments, and on loopback or a fast LAN the per-segment cost
// dominates. Like nginx's tcp_nopush, the socket is corked while such a
// response is produced and uncorked once it is all queued, so it leaves in
// full segments.

type connKey struct{}

// connContext remembers each TCP connection's raw descriptor access.
func connContext(ctx context.Context, c net.Conn) context.Context {
	sc, ok := c.(syscall.Conn) // also a connection h1 handed to net/http
	if !ok {
		return ctx
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, connKey{}, rc)
}

// corkThreshold: smaller responses fit net/http's 4 KiB write buffer with
// their header and leave in one write anyway.
const corkThreshold = 3 << 10

// cork corks the request's connection and returns the function that
// flushes the response and uncorks it; nil when there is nothing to do.
func cork(w http.ResponseWriter, r *http.Request) func() {
	rc, ok := r.Context().Value(connKey{}).(syscall.RawConn)
	if !ok {
		return nil
	}
	if !setCork(rc, 1) {
		return nil
	}
	return func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		setCork(rc, 0)
	}
}

func setCork(rc syscall.RawConn, v int) bool {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_CORK, v)
	})
	return err == nil && serr == nil
}
