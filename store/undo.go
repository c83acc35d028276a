package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/intercloud/intercloud/config"
)

// History does not depend on etcd keeping old versions of keys. Each
// revision's manifest records what it replaced (its Undo): the object each
// changed or removed part held before, stored once by content under
// keyObjects. A revision etcd compacted past is rebuilt from the current
// one by undoing, newest first, every revision after it. So etcd can
// compact to the newest revisions (node status churn then stays bounded
// too), and history is bounded only by the retention.

// Undo is what a revision replaced. A distribution it changed that is not
// in Dists did not exist before it.
type Undo struct {
	Site string `json:"site,omitempty"`
	// Stacks is the stacks before a revision that changed them ("": it
	// added the first).
	Stacks string            `json:"stacks,omitempty"`
	Dists  map[string]string `json:"dists,omitempty"`
}

// objectID names content: 128 bits of sha256 are plenty for the parts of
// one site's history, and keep a manifest of a large change small.
func objectID(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// undoOps is what a commit over base stores so that m can be undone: the
// objects of the parts it replaces, and m.Undo naming them.
func undoOps(base *commitBase, m *Manifest) []clientv3.Op {
	if base.revision == 0 {
		return nil // nothing came before
	}
	m.Undo = &Undo{}
	var ops []clientv3.Op
	seen := map[string]bool{} // etcd refuses a key twice in one transaction
	put := func(b []byte) string {
		id := objectID(b)
		if !seen[id] {
			seen[id] = true
			ops = append(ops, clientv3.OpPut(keyObjects+id, string(b)))
		}
		return id
	}
	if m.Site && base.site != nil {
		m.Undo.Site = put(base.site)
	}
	if m.Stacks && base.stacks != nil {
		m.Undo.Stacks = put(base.stacks)
	}
	for _, names := range [][]string{m.Changed, m.Removed} {
		for _, name := range names {
			if old, ok := base.dists[name]; ok {
				if m.Undo.Dists == nil {
					m.Undo.Dists = map[string]string{}
				}
				m.Undo.Dists[name] = put(old)
			}
		}
	}
	return ops
}

// parts is a revision as stored: the site, the stacks (nil: none) and
// each distribution, encoded.
type parts struct {
	site, stacks []byte
	dists        map[string][]byte
}

// rebuild reads revision m, which etcd compacted past, by undoing every
// revision after it from the current one.
func (s *Store) rebuild(ctx context.Context, m *Manifest) (*config.Snapshot, error) {
	info, _, err := s.Pointer(ctx)
	if err != nil {
		return nil, err
	}
	if info.Revision < m.Revision {
		return nil, fmt.Errorf("revision %d is newer than the current one (%d)", m.Revision, info.Revision)
	}
	head, legacy, err := s.manifest(ctx, info.Revision)
	if err != nil {
		return nil, err
	}
	if legacy != nil {
		return nil, rpctypes.ErrCompacted
	}
	p, err := s.readParts(ctx, head, head.etcdRev)
	if errors.Is(err, rpctypes.ErrCompacted) {
		p, err = s.readParts(ctx, head, 0)
	}
	if err != nil {
		return nil, err
	}
	for cur := head; cur.Revision > m.Revision; {
		if cur.Undo == nil {
			// Written by a version that kept no undo: history before it
			// lives in etcd's versions only, and those are gone.
			return nil, rpctypes.ErrCompacted
		}
		if err := s.undo(ctx, &p, cur); err != nil {
			return nil, err
		}
		if cur.Parent == m.Revision {
			break
		}
		next, legacy, err := s.manifest(ctx, cur.Parent)
		if err != nil || legacy != nil {
			return nil, fmt.Errorf("revision %d: its parent %d is gone: %w", cur.Revision, cur.Parent, rpctypes.ErrCompacted)
		}
		cur = next
	}
	if len(p.dists) != m.Count {
		return nil, fmt.Errorf("revision %d rebuilt with %d distributions, its manifest says %d", m.Revision, len(p.dists), m.Count)
	}
	return decodeParts(m, p)
}

// undo turns p from revision m's state into its parent's.
func (s *Store) undo(ctx context.Context, p *parts, m *Manifest) error {
	want := map[string]bool{}
	if m.Site {
		if m.Undo.Site == "" {
			return fmt.Errorf("revision %d changed the site and kept no copy of it: %w", m.Revision, rpctypes.ErrCompacted)
		}
		want[m.Undo.Site] = true
	}
	if m.Undo.Stacks != "" {
		want[m.Undo.Stacks] = true
	}
	for _, id := range m.Undo.Dists {
		want[id] = true
	}
	objs, err := s.objects(ctx, slices.Collect(maps.Keys(want)))
	if err != nil {
		return fmt.Errorf("revision %d: %w", m.Revision, err)
	}
	if m.Site {
		p.site = objs[m.Undo.Site]
	}
	if m.Stacks {
		p.stacks = objs[m.Undo.Stacks] // nil when m added the first
	}
	for _, name := range m.Changed {
		if id, ok := m.Undo.Dists[name]; ok {
			p.dists[name] = objs[id]
		} else {
			delete(p.dists, name) // added by m
		}
	}
	for _, name := range m.Removed {
		id, ok := m.Undo.Dists[name]
		if !ok {
			return fmt.Errorf("revision %d removed %s and kept no copy of it: %w", m.Revision, name, rpctypes.ErrCompacted)
		}
		p.dists[name] = objs[id]
	}
	return nil
}

// objects reads stored objects by id; every one must be there.
func (s *Store) objects(ctx context.Context, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	for chunk := range slices.Chunk(ids, maxTxnOps) {
		ops := make([]clientv3.Op, len(chunk))
		for i, id := range chunk {
			ops[i] = clientv3.OpGet(keyObjects + id)
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("read history objects: %w", err)
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				out[strings.TrimPrefix(string(kv.Key), keyObjects)] = kv.Value
			}
		}
	}
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			return nil, fmt.Errorf("history object %s is missing", id)
		}
	}
	return out, nil
}

// decodeParts builds revision m's snapshot from its stored parts.
func decodeParts(m *Manifest, p parts) (*config.Snapshot, error) {
	snap := m.snapshot()
	if p.site == nil {
		return nil, fmt.Errorf("revision %d has no site", m.Revision)
	}
	if err := json.Unmarshal(p.site, &snap.Site); err != nil {
		return nil, fmt.Errorf("decode the site of revision %d: %w", m.Revision, err)
	}
	if p.stacks != nil {
		if err := json.Unmarshal(p.stacks, &snap.Stacks); err != nil {
			return nil, fmt.Errorf("decode the stacks of revision %d: %w", m.Revision, err)
		}
	}
	snap.Distributions = make([]config.Distribution, 0, len(p.dists))
	for _, name := range slices.Sorted(maps.Keys(p.dists)) {
		var d config.Distribution
		if err := json.Unmarshal(p.dists[name], &d); err != nil {
			return nil, fmt.Errorf("decode distribution %s of revision %d: %w", name, m.Revision, err)
		}
		snap.Distributions = append(snap.Distributions, d)
	}
	snap.Outputs = outputsOf(snap.Distributions)
	return snap, nil
}

// collectObjects deletes the history objects no kept revision needs: those
// named by the undo of revisions newer than the oldest kept. Objects
// written after the current revision's manifest belong to a commit that
// may still be finishing, and are left alone.
func (s *Store) collectObjects(ctx context.Context, kept []*Manifest, head *Manifest) (int, error) {
	need := map[string]bool{}
	for _, m := range kept[1:] {
		if m.Undo == nil {
			continue
		}
		if m.Undo.Site != "" {
			need[m.Undo.Site] = true
		}
		if m.Undo.Stacks != "" {
			need[m.Undo.Stacks] = true
		}
		for _, id := range m.Undo.Dists {
			need[id] = true
		}
	}
	type object struct {
		key string
		rev int64
	}
	var drop []object
	from, end := keyObjects, clientv3.GetPrefixRangeEnd(keyObjects)
	for {
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(1000), clientv3.WithKeysOnly())
		if err != nil {
			return 0, fmt.Errorf("store: list history objects: %w", err)
		}
		for _, kv := range resp.Kvs {
			if !need[strings.TrimPrefix(string(kv.Key), keyObjects)] && kv.ModRevision <= head.etcdRev {
				drop = append(drop, object{string(kv.Key), kv.ModRevision})
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	if afterObjectsListed != nil {
		afterObjectsListed()
	}
	// A commit racing with this one writes the objects its undo names
	// again, with the same id when the content is the same: an object is
	// deleted only if it is still the version listed.
	deleted := 0
	del := func(objs []object) (bool, error) {
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		for _, o := range objs {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(o.key), "=", o.rev))
			ops = append(ops, clientv3.OpDelete(o.key))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return false, fmt.Errorf("store: delete history objects: %w", err)
		}
		if resp.Succeeded {
			deleted += len(objs)
		}
		return resp.Succeeded, nil
	}
	for chunk := range slices.Chunk(drop, maxTxnOps) {
		ok, err := del(chunk)
		if err != nil {
			return deleted, err
		}
		if ok {
			continue
		}
		for _, o := range chunk { // one was written again: the others still go
			if _, err := del([]object{o}); err != nil {
				return deleted, err
			}
		}
	}
	return deleted, nil
}

// afterObjectsListed runs between collectObjects' listing and its
// deletions (tests: a commit racing with the collection).
var afterObjectsListed func()
