package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Retention is what history keeps: the last Keep revisions, and every
// revision younger than KeepFor; the current one always.
type Retention struct {
	Keep    int
	KeepFor time.Duration
	// Pinned revisions are kept whatever their age (a rollout's origin).
	Pinned []int64
}

// PruneResult says what a prune did.
type PruneResult struct {
	Deleted   int   // revisions removed from history
	Kept      int   // revisions left
	Oldest    int64 // the oldest revision left
	CompactAt int64 // the etcd revision compacted to (0: none)
}

// Prune removes the revisions the retention does not keep, then compacts
// etcd's history of every key up to the oldest revision kept: what a kept
// revision reads is never compacted away, and what no revision reads is.
func (s *Store) Prune(ctx context.Context, r Retention, now time.Time) (PruneResult, error) {
	var res PruneResult
	type entry struct {
		rev, etcdRev int64
		t            time.Time
	}
	var all []entry
	from, end := keyRevisions, clientv3.GetPrefixRangeEnd(keyRevisions)
	for {
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(1000))
		if err != nil {
			return res, fmt.Errorf("store: read history: %w", err)
		}
		for _, kv := range resp.Kvs {
			m, _, err := decodeManifest(kv.Value, kv.CreateRevision)
			if err != nil {
				return res, fmt.Errorf("store: %s: %w", kv.Key, err)
			}
			all = append(all, entry{m.Revision, m.etcdRev, m.Time})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if len(all) == 0 {
		return res, nil
	}
	slices.SortFunc(all, func(a, b entry) int { return int(a.rev - b.rev) })
	info, _, err := s.Pointer(ctx)
	if err != nil {
		return res, err
	}
	var drop []clientv3.Op
	oldestKept := entry{}
	for i, e := range all {
		keep := i >= len(all)-max(r.Keep, 1) || now.Sub(e.t) < r.KeepFor || e.rev == info.Revision || slices.Contains(r.Pinned, e.rev)
		if info.Rollout != nil && e.rev == info.Rollout.From {
			keep = true
		}
		// etcd may have compacted past a revision (its own retention, or an
		// operator's): one it can no longer read is not history any more.
		if keep && e.rev != info.Revision && e.etcdRev > 0 && s.compactedPast(ctx, e.etcdRev) {
			keep = false
		}
		if !keep {
			drop = append(drop, clientv3.OpDelete(revisionKey(e.rev)))
			continue
		}
		if oldestKept.rev == 0 {
			oldestKept = e
		}
		res.Kept++
	}
	for chunk := range slices.Chunk(drop, maxTxnOps) {
		if _, err := s.cli.Txn(ctx).Then(chunk...).Commit(); err != nil {
			return res, fmt.Errorf("store: prune history: %w", err)
		}
		res.Deleted += len(chunk)
	}
	res.Oldest = oldestKept.rev
	// A legacy whole-snapshot revision reads nothing at an old etcd
	// revision, but keys it was written with are read by nobody either.
	if oldestKept.etcdRev > 0 && res.Deleted > 0 {
		if _, err := s.cli.Compact(ctx, oldestKept.etcdRev, clientv3.WithCompactPhysical()); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
			return res, fmt.Errorf("store: compact to etcd revision %d: %w", oldestKept.etcdRev, err)
		}
		res.CompactAt = oldestKept.etcdRev
	}
	return res, nil
}

// Defragment gives the space that compaction freed back to the file
// system, one member at a time, when at least half of a member's database
// file is free and the file is larger than minSize. It returns the
// database sizes before and after, summed over the members.
func (s *Store) Defragment(ctx context.Context, minSize int64) (before, after int64, err error) {
	for _, ep := range s.cli.Endpoints() {
		st, err := s.cli.Status(ctx, ep)
		if err != nil {
			return before, after, fmt.Errorf("store: status of %s: %w", ep, err)
		}
		before += st.DbSize
		if st.DbSize < minSize || st.DbSizeInUse*2 > st.DbSize {
			after += st.DbSize
			continue
		}
		if _, err := s.cli.Defragment(ctx, ep); err != nil {
			return before, after, fmt.Errorf("store: defragment %s: %w", ep, err)
		}
		st, err = s.cli.Status(ctx, ep)
		if err != nil {
			return before, after, fmt.Errorf("store: status of %s: %w", ep, err)
		}
		after += st.DbSize
	}
	return before, after, nil
}

// compactedPast reports whether etcd has compacted its history past rev.
// (A revision whose keys did not change since would still read from what
// is there now; only the current one is counted on for that.)
func (s *Store) compactedPast(ctx context.Context, rev int64) bool {
	_, err := s.cli.Get(ctx, keySite, clientv3.WithRev(rev), clientv3.WithKeysOnly())
	return errors.Is(err, rpctypes.ErrCompacted)
}
