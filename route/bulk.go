package route

import (
	"context"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// bulkWorkers is how many extra netlink sockets share a bulk change. One
// socket waits for each acknowledgement before sending the next request;
// several keep the kernel busy while one waits.
const bulkWorkers = 4

// bulkMin is the smallest change worth spreading over the workers.
const bulkMin = 256

func openHandles(nsPath string, n int) ([]*netlink.Handle, error) {
	var ns vnetns.NsHandle
	if nsPath != "" {
		var err error
		if ns, err = vnetns.GetFromPath(nsPath); err != nil {
			return nil, fmt.Errorf("route: namespace %s: %w", nsPath, err)
		}
		defer ns.Close()
	}
	hs := make([]*netlink.Handle, 0, n)
	for range n {
		var h *netlink.Handle
		var err error
		if nsPath != "" {
			h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		} else {
			h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		}
		if err != nil {
			for _, h := range hs {
				h.Close()
			}
			return nil, fmt.Errorf("route: netlink handle: %w", err)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

func (t *Table) closeHandles() {
	t.h.Close()
	for _, h := range t.workers {
		h.Close()
	}
}

// bulk runs op over rs and returns one result per route. Large changes are
// cut in contiguous slices, one per worker socket. A cancelled ctx stops
// the remaining operations with its error.
func (t *Table) bulk(ctx context.Context, rs []Route, op func(*netlink.Handle, Route) error) []error {
	res := make([]error, len(rs))
	run := func(h *netlink.Handle, from, to int) {
		for i := from; i < to; i++ {
			if i%1024 == 0 && ctx.Err() != nil {
				for j := i; j < to; j++ {
					res[j] = ctx.Err()
				}
				return
			}
			res[i] = op(h, rs[i])
		}
	}
	if len(rs) < bulkMin || len(t.workers) == 0 {
		run(t.h, 0, len(rs))
		return res
	}
	var wg sync.WaitGroup
	per := (len(rs) + len(t.workers) - 1) / len(t.workers)
	for w, h := range t.workers {
		from, to := w*per, min((w+1)*per, len(rs))
		if from >= to {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(h, from, to)
		}()
	}
	wg.Wait()
	return res
}
