package edge

import (
	"math"
	"os"
	"runtime/debug"
	runtimemetrics "runtime/metrics"
	"time"
)

// memorySlack is what the Go heap may hold beyond the cache on a small
// site: the target is RSS under the cache size + 64 MiB, and the binary's
// own pages (~35 MiB of a node's RSS) are outside the Go memory limit.
const memorySlack = 24 << 20

// memoryLook is how often the heap outside the cache is measured again.
const memoryLook = 5 * time.Second

// limitMemory sets a soft Go memory limit, unless the operator set one
// (GOMEMLIMIT): without it the garbage collector lets a heap full of cached
// objects grow to twice their size. The limit is the cache's size plus
// room for the rest of the node, measured rather than guessed: the live
// heap outside the cache (the routing table and the snapshot of a site of
// 10,000 distributions are tens of MiB) and half as much again, and never
// less than memorySlack. A fixed slack below what a large site holds would
// leave the collector running without end. e.mu is held.
func (e *Edge) limitMemory(cache int64) {
	cur := debug.SetMemoryLimit(-1)
	if cur != math.MaxInt64 && cur != e.memLimit {
		return // set by someone else
	}
	first := e.memCache == 0
	e.memCache = cache
	e.resetMemoryLimit()
	if !first {
		return
	}
	// Under a limit, collecting at every doubling of the heap only adds
	// pauses: while the cache is filling the live heap is a few MiB, and
	// the default GOGC would collect tens of times a second under load.
	// The limit alone decides when to collect, unless the operator set GOGC.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(-1)
	}
	go e.followHeap() // not in e.bg: tests wait for that to drain; Close stops it
}

// resetMemoryLimit sets the limit for the cache and the heap outside it
// as last measured; e.mu is held. Changes under a sixteenth are left
// alone: the measure moves with every collection.
func (e *Edge) resetMemoryLimit() {
	limit := memoryLimitFor(e.memCache, liveHeap()-e.store.Stats().Bytes)
	if e.memLimit != 0 && abs64(limit-e.memLimit) < e.memLimit/16 {
		return
	}
	e.memLimit = limit
	debug.SetMemoryLimit(limit)
	e.log.Info("go memory limit set", "limit", limit, "cache", e.memCache, "gogc", os.Getenv("GOGC"))
}

func memoryLimitFor(cache, outside int64) int64 {
	return cache + max(memorySlack, outside+outside/2)
}

// followHeap measures the heap outside the cache again every memoryLook
// until the edge closes: a revision's larger table is only seen by the
// collections after it.
func (e *Edge) followHeap() {
	t := time.NewTicker(memoryLook)
	defer t.Stop()
	for {
		select {
		case <-e.memStop:
			return
		case <-t.C:
		}
		e.mu.Lock()
		if !e.closed && debug.SetMemoryLimit(-1) == e.memLimit {
			e.resetMemoryLimit()
		}
		e.mu.Unlock()
	}
}

// liveHeap is the heap the last collection found live.
func liveHeap() int64 {
	s := []runtimemetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	runtimemetrics.Read(s)
	if s[0].Value.Kind() != runtimemetrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
