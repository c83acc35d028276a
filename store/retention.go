package store

import (
	"cmp"
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
	Objects   int   // history objects no kept revision needs, removed
	CompactAt int64 // the etcd revision compacted to (0: none)
}

// Prune removes the revisions older than the oldest one the retention
// keeps (history stays one unbroken line back from the current revision,
// each rebuilt from the next by its undo), the history objects only they
// needed, and compacts etcd to the revision before the current one: nodes
// one revision behind and a rollout's origin still read from etcd's
// versions, older revisions are rebuilt from their undo. A revision
// written without undo (by an earlier version) keeps etcd's versions
// back to it while it is kept.
func (s *Store) Prune(ctx context.Context, r Retention, now time.Time) (PruneResult, error) {
	var res PruneResult
	var all []*Manifest
	legacy := map[int64]bool{} // whole-snapshot revisions: read whatever etcd compacted
	from, end := keyRevisions, clientv3.GetPrefixRangeEnd(keyRevisions)
	for {
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(1000))
		if err != nil {
			return res, fmt.Errorf("store: read history: %w", err)
		}
		for _, kv := range resp.Kvs {
			m, whole, err := decodeManifest(kv.Value, kv.CreateRevision)
			if err != nil {
				return res, fmt.Errorf("store: %s: %w", kv.Key, err)
			}
			if whole != nil {
				m = &Manifest{Revision: whole.Revision, Time: whole.Time}
				legacy[m.Revision] = true
			}
			all = append(all, m)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if len(all) == 0 {
		return res, nil
	}
	slices.SortFunc(all, func(a, b *Manifest) int { return cmp.Compare(a.Revision, b.Revision) })
	info, _, err := s.Pointer(ctx)
	if err != nil {
		return res, err
	}
	// rebuildable[i]: every revision after i kept its undo.
	rebuildable := make([]bool, len(all))
	rebuildable[len(all)-1] = true
	for i := len(all) - 2; i >= 0; i-- {
		rebuildable[i] = rebuildable[i+1] && all[i+1].Undo != nil && all[i+1].Parent == all[i].Revision
	}
	oldest := len(all) - 1
	for i, m := range all {
		keep := i >= len(all)-max(r.Keep, 1) || now.Sub(m.Time) < r.KeepFor || m.Revision == info.Revision || slices.Contains(r.Pinned, m.Revision)
		if info.Rollout != nil && m.Revision == info.Rollout.From {
			keep = true
		}
		// One neither rebuildable nor in etcd's versions any more is not
		// history (etcd's own retention, or an operator's compaction).
		if keep && !rebuildable[i] && !legacy[m.Revision] && s.compactedPast(ctx, m.etcdRev) {
			keep = false
		}
		if keep {
			oldest = i
			break
		}
	}
	var drop []clientv3.Op
	for _, m := range all[:oldest] {
		drop = append(drop, clientv3.OpDelete(revisionKey(m.Revision)))
	}
	for chunk := range slices.Chunk(drop, maxTxnOps) {
		if _, err := s.cli.Txn(ctx).Then(chunk...).Commit(); err != nil {
			return res, fmt.Errorf("store: prune history: %w", err)
		}
		res.Deleted += len(chunk)
	}
	kept := all[oldest:]
	res.Kept, res.Oldest = len(kept), kept[0].Revision
	head := kept[len(kept)-1]
	if head.etcdRev == 0 {
		return res, nil // a whole-snapshot revision: nothing to collect or compact yet
	}
	if res.Objects, err = s.collectObjects(ctx, kept, head); err != nil {
		return res, err
	}
	target := head.etcdRev
	if len(kept) > 1 && kept[len(kept)-2].etcdRev > 0 {
		target = kept[len(kept)-2].etcdRev
	}
	for i, m := range kept {
		if !rebuildable[oldest+i] && m.etcdRev > 0 {
			target = min(target, m.etcdRev)
		}
	}
	if _, err := s.cli.Compact(ctx, target, clientv3.WithCompactPhysical()); err != nil && !errors.Is(err, rpctypes.ErrCompacted) {
		return res, fmt.Errorf("store: compact to etcd revision %d: %w", target, err)
	}
	res.CompactAt = target
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
