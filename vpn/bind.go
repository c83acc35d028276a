package vpn

import (
	"errors"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// splitBind wraps wireguard-go's StdNetBind so that a batched send the kernel
// refuses for its size is retried one datagram at a time.
//
// StdNetBind coalesces a batch into one UDP_SEGMENT (GSO) send. It already
// falls back when the NIC lacks checksum offload (EIO), but when a segment
// is larger than the path MTU (a tunnel MTU set above what the underlay
// carries, or a path MTU that shrank) the kernel answers EINVAL or EMSGSIZE
// for the whole batch, and every packet in it would be lost, over and over.
// Sent alone, each datagram goes without GSO and the kernel fragments it.
// Datagrams of the batch that had already gone out are sent twice; the
// receiver's replay window drops the copies.
type splitBind struct {
	conn.Bind
	fallbacks atomic.Uint64
}

func (b *splitBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	err := b.Bind.Send(bufs, ep)
	if err == nil || len(bufs) < 2 || !isSizeError(err) {
		return err
	}
	b.fallbacks.Add(1)
	var errs []error
	for i := range bufs {
		if err := b.Bind.Send(bufs[i:i+1], ep); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func isSizeError(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EMSGSIZE)
}
