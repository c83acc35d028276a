package controller

import (
	"context"
	"time"

	"github.com/intercloud/intercloud/store"
)

// pruneEvery is how often the history is pruned to the site's retention
// and the store compacted; commits also wake it every pruneAfterCommits.
const (
	pruneEvery        = time.Minute
	pruneAfterCommits = 100
	// defragMinSize: below it a database file is not worth defragmenting
	// (defragmentation blocks the member while it runs).
	defragMinSize = 64 << 20
)

// RunHistory keeps the store's history to the site's retention until ctx
// ends, from the start: old revisions are removed, etcd is compacted past them, and
// members whose database file is mostly free space are defragmented.
func (c *Controller) RunHistory(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-c.prune:
			}
		}
		if err := c.PruneHistory(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("history: prune", "err", err)
		}
	}
}

// PruneHistory prunes once.
func (c *Controller) PruneHistory(ctx context.Context) error {
	cur, _, err := c.store.Current(ctx)
	if err != nil || cur == nil {
		return err
	}
	h := cur.Site.Store.History
	res, err := c.store.Prune(ctx, store.Retention{Keep: h.Keep, KeepFor: h.KeepFor.D()}, time.Now())
	if err != nil {
		return err
	}
	if res.Deleted > 0 {
		c.log.Info("history pruned", "deleted", res.Deleted, "kept", res.Kept, "oldest", res.Oldest, "compacted to", res.CompactAt)
	}
	before, after, err := c.store.Defragment(ctx, defragMinSize)
	if err == nil && after < before {
		c.log.Info("store defragmented", "before", before, "after", after)
	}
	return err
}

// committed counts commits and wakes the pruner every pruneAfterCommits.
func (c *Controller) committed() {
	if c.commits.Add(1)%pruneAfterCommits == 0 {
		select {
		case c.prune <- struct{}{}:
		default:
		}
	}
}
