package dns

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux, UDP is served with recvmmsg/sendmmsg: up to batchSize queries
// per system call each way. On loopback under load the system calls are
// most of the cost of a query, and gdnsd batches the same way.
//
// Both calls go through RawSyscall: with MSG_DONTWAIT they never sleep in
// the kernel, so the runtime's entersyscall/exitsyscall bookkeeping buys
// nothing, and it costs much: under load both Ps are seen in system calls
// at every sysmon tick, sysmon retakes them and stays at its 20µs period,
// which took ~10% of the server's CPU in a profile. Waiting for packets
// stays with the netpoller (rc.Read parks the goroutine on EAGAIN).

const (
	batchSize = 32
	bufSize   = 4096 // a query never needs more; longer ones are dropped (MSG_TRUNC)
)

// mmsghdr is struct mmsghdr from <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// udpBatch holds every buffer one reader needs, allocated once: nothing is
// allocated per query.
type udpBatch struct {
	rhdr  [batchSize]mmsghdr
	riov  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrAny
	in    [batchSize][bufSize]byte

	shdr [batchSize]mmsghdr
	siov [batchSize]unix.Iovec
	out  [batchSize][]byte
}

func newUDPBatch() *udpBatch {
	b := &udpBatch{}
	for i := range batchSize {
		b.riov[i].Base = &b.in[i][0]
		b.riov[i].SetLen(bufSize)
		b.out[i] = make([]byte, 0, bufSize)
	}
	return b
}

// resetRecv re-arms the receive headers (the kernel overwrites namelen).
func (b *udpBatch) resetRecv() {
	for i := range batchSize {
		h := &b.rhdr[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = unix.SizeofSockaddrAny
		h.Iov = &b.riov[i]
		h.SetIovlen(1)
		h.Flags = 0
		b.rhdr[i].n = 0
	}
}

func sockaddrAddr(sa *unix.RawSockaddrAny) netip.Addr {
	switch sa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(p.Addr)
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrFrom16(p.Addr).Unmap()
	}
	return netip.Addr{}
}

// serveUDPBatch serves c with batched system calls. It returns false at
// once when the kernel lacks them, so the caller serves one by one.
func (l *listeners) serveUDPBatch(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	m := l.s.m
	b := newUDPBatch()
	var q query
	turn := rand.Uint32()
	for {
		b.resetRecv()
		var n int
		var errno syscall.Errno
		err := rc.Read(func(fd uintptr) bool {
			r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhdr[0])), batchSize, unix.MSG_DONTWAIT, 0, 0)
			n, errno = int(r), e
			return e != unix.EAGAIN && e != unix.EINTR
		})
		if err != nil { // the socket was closed
			return true
		}
		if errno == unix.ENOSYS {
			return false
		}
		if errno != 0 {
			continue // e.g. ECONNREFUSED from an ICMP error: keep serving
		}
		st := l.s.cur.Load()
		// Every query of the batch was read at t0: one clock read per batch
		// and one per answer, instead of three per query.
		t0 := time.Now()
		ns := 0
		for i := 0; i < n; i++ {
			if b.rhdr[i].hdr.Flags&unix.MSG_TRUNC != 0 {
				m.dropped.Inc()
				continue
			}
			src := sockaddrAddr(&b.names[i])
			resp, o := st.respond(&q, b.in[i][:b.rhdr[i].n], src, false, b.out[ns][:0], turn)
			turn++
			if resp == nil {
				m.dropped.Inc()
				continue
			}
			if st.rrl != nil {
				if resp = limit(st, &q, &o, src, resp, t0, m); resp == nil {
					continue
				}
			}
			if cap(resp) > cap(b.out[ns]) {
				b.out[ns] = resp[:0]
			}
			h := &b.shdr[ns].hdr
			h.Name = (*byte)(unsafe.Pointer(&b.names[i])) // answer to where it came from
			h.Namelen = b.rhdr[i].hdr.Namelen
			b.siov[ns].Base = &resp[0]
			b.siov[ns].SetLen(len(resp))
			h.Iov = &b.siov[ns]
			h.SetIovlen(1)
			ns++
			m.latency.Observe(time.Since(t0).Seconds())
			m.observe(false, &o, st.locs)
			if l.s.opts.QueryLog {
				l.s.logQuery("udp", &q, &o, src)
			}
		}
		for sent := 0; sent < ns; {
			var k int
			var errno syscall.Errno
			err := rc.Write(func(fd uintptr) bool {
				r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.shdr[sent])), uintptr(ns-sent), unix.MSG_DONTWAIT, 0, 0)
				k, errno = int(r), e
				return e != unix.EAGAIN && e != unix.EINTR
			})
			if err != nil {
				return true
			}
			if errno != 0 {
				sent++ // this datagram failed (e.g. unreachable): skip it
				continue
			}
			sent += k
		}
	}
}
