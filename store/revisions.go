package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/intercloud/intercloud/config"
)

// The desired state is stored as it is now, one key per part: the site and
// each distribution. A revision is a manifest of what it changed; etcd's
// own versions of those keys (MVCC) are the history. A revision is read as
// the keys were at the etcd revision its manifest was written in, so a
// one-line change writes one distribution and a node fetches only it,
// whatever the size of the site. See README.md.

// Limits of one etcd transaction (the server's --max-txn-ops default is
// 128, --max-request-bytes 1.5 MiB): a change larger than this is written
// in several, the parts first and the manifest and pointer last.
const (
	maxTxnOps   = 100
	maxTxnBytes = 1 << 20
)

// maxManifestBytes bounds a manifest with its pointer (a variable so that
// a test can reach it without writing tens of thousands of keys).
var maxManifestBytes = maxTxnBytes

// Manifest is one revision in the history: what it is and what it changed
// from its parent.
type Manifest struct {
	Revision int64     `json:"revision"`
	Hash     string    `json:"hash"`
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason,omitempty"`
	Parent   int64     `json:"parent,omitempty"`
	Site     bool      `json:"siteChanged,omitempty"`
	// Stacks says the stacks changed; HasStacks that the revision has
	// some (all of them are one key: they are few and small).
	Stacks    bool     `json:"stacksChanged,omitempty"`
	HasStacks bool     `json:"hasStacks,omitempty"`
	Changed   []string `json:"changed,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	// Count is how many distributions the revision has.
	Count int `json:"count"`
	// Undo is what the revision replaced (nil: written by a version that
	// kept history in etcd's versions only).
	Undo *Undo `json:"undo,omitempty"`
	// etcdRev is the etcd revision the manifest was written in: the
	// revision's state is the keys as they were then.
	etcdRev int64
	cluster uint64 // the etcd cluster it was read from
}

// committed remembers the last revision this process wrote, so that the
// next commit diffs against it without reading the whole site again.
type committed struct {
	mu      sync.Mutex
	etcdRev int64 // of its manifest; 0: nothing remembered
	site    []byte
	stacks  []byte
	dists   map[string][]byte
}

// Current returns the current desired snapshot, or nil when nothing has been
// applied yet, with the etcd mod revision of the pointer for Commit.
func (s *Store) Current(ctx context.Context) (*config.Snapshot, int64, error) {
	info, mod, err := s.Pointer(ctx)
	if err != nil || info.Revision == 0 {
		return nil, mod, err
	}
	snap, err := s.Revision(ctx, info.Revision)
	if err != nil {
		return nil, 0, err
	}
	return snap, mod, nil
}

// manifest reads revision n's manifest.
func (s *Store) manifest(ctx context.Context, n int64) (*Manifest, *config.Snapshot, error) {
	resp, err := s.cli.Get(ctx, revisionKey(n))
	if err != nil {
		return nil, nil, fmt.Errorf("store: read revision %d: %w", n, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil, fmt.Errorf("store: revision %d does not exist (or is older than the history kept)", n)
	}
	m, legacy, err := decodeManifest(resp.Kvs[0].Value, resp.Kvs[0].CreateRevision)
	if m != nil {
		m.cluster = resp.Header.ClusterId
	}
	return m, legacy, err
}

// decodeManifest decodes a manifest, or a whole snapshot written by a
// version that stored one per revision.
func decodeManifest(b []byte, etcdRev int64) (*Manifest, *config.Snapshot, error) {
	var probe struct {
		Site json.RawMessage `json:"site"`
	}
	if json.Unmarshal(b, &probe) == nil && len(probe.Site) > 0 && probe.Site[0] == '{' {
		var snap config.Snapshot
		if err := json.Unmarshal(b, &snap); err != nil {
			return nil, nil, fmt.Errorf("store: decode revision: %w", err)
		}
		return &Manifest{Revision: snap.Revision, Hash: snap.Hash, Time: snap.Time, Reason: snap.Reason, etcdRev: etcdRev}, &snap, nil
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil, fmt.Errorf("store: decode revision: %w", err)
	}
	m.etcdRev = etcdRev
	return &m, nil, nil
}

// Revision returns the snapshot of revision n, read whole.
func (s *Store) Revision(ctx context.Context, n int64) (*config.Snapshot, error) {
	m, legacy, err := s.manifest(ctx, n)
	if err != nil || legacy != nil {
		return legacy, err
	}
	return s.shared(0, m, func() (*config.Snapshot, error) { return s.readRevision(ctx, m) })
}

func (s *Store) readRevision(ctx context.Context, m *Manifest) (*config.Snapshot, error) {
	n := m.Revision
	snap, err := s.readAt(ctx, m, m.etcdRev)
	if errors.Is(err, rpctypes.ErrCompacted) {
		// etcd no longer holds that point of its history, but the keys
		// may not have changed since: then they are the revision.
		snap, err = s.readAt(ctx, m, 0)
	}
	if errors.Is(err, rpctypes.ErrCompacted) {
		snap, err = s.rebuild(ctx, m)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read revision %d: %w", n, compacted(n, err))
	}
	return snap, nil
}

// readAt reads m's revision as the keys are at etcd revision rev; rev 0
// reads them as they are now and fails with ErrCompacted unless none of
// them changed after m was written.
func (s *Store) readAt(ctx context.Context, m *Manifest, rev int64) (*config.Snapshot, error) {
	p, err := s.readParts(ctx, m, rev)
	if err != nil {
		return nil, err
	}
	return decodeParts(m, p)
}

// readParts reads m's parts, encoded, as readAt does.
func (s *Store) readParts(ctx context.Context, m *Manifest, rev int64) (parts, error) {
	opts := func(o ...clientv3.OpOption) []clientv3.OpOption {
		if rev > 0 {
			o = append(o, clientv3.WithRev(rev))
		}
		return o
	}
	changed := func(kv *mvccpb.KeyValue) error {
		if rev == 0 && kv.ModRevision > m.etcdRev {
			return fmt.Errorf("%s changed after revision %d: %w", kv.Key, m.Revision, rpctypes.ErrCompacted)
		}
		return nil
	}
	site, err := s.cli.Get(ctx, keySite, opts()...)
	if err != nil {
		return parts{}, err
	}
	if len(site.Kvs) == 0 {
		return parts{}, fmt.Errorf("revision %d has no site", m.Revision)
	}
	if err := changed(site.Kvs[0]); err != nil {
		return parts{}, err
	}
	p := parts{site: site.Kvs[0].Value, dists: make(map[string][]byte, m.Count)}
	stacks, err := s.cli.Get(ctx, keyStacks, opts()...)
	if err != nil {
		return parts{}, err
	}
	if len(stacks.Kvs) > 0 {
		if err := changed(stacks.Kvs[0]); err != nil {
			return parts{}, err
		}
		p.stacks = stacks.Kvs[0].Value
	} else if rev == 0 && m.HasStacks {
		return parts{}, fmt.Errorf("stacks removed after revision %d: %w", m.Revision, rpctypes.ErrCompacted)
	}
	// Page through the distributions so that no single answer is huge.
	from, end := keyDistributions, clientv3.GetPrefixRangeEnd(keyDistributions)
	for {
		resp, err := s.cli.Get(ctx, from, opts(clientv3.WithRange(end), clientv3.WithLimit(1000))...)
		if err != nil {
			return parts{}, err
		}
		for _, kv := range resp.Kvs {
			if err := changed(kv); err != nil {
				return parts{}, err
			}
			p.dists[strings.TrimPrefix(string(kv.Key), keyDistributions)] = kv.Value
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	// A distribution deleted after m was written is gone from "now"
	// without a trace; the count catches it.
	if rev == 0 && len(p.dists) != m.Count {
		return parts{}, fmt.Errorf("distributions removed after revision %d: %w", m.Revision, rpctypes.ErrCompacted)
	}
	return p, nil
}

// Site returns the site of revision n without its distributions: what
// status and rollouts need, at a cost that does not grow with the site's
// distributions.
func (s *Store) Site(ctx context.Context, n int64) (*config.Site, error) {
	m, legacy, err := s.manifest(ctx, n)
	if err != nil {
		return nil, err
	}
	if legacy != nil {
		return &legacy.Site, nil
	}
	resp, err := s.cli.Get(ctx, keySite, clientv3.WithRev(m.etcdRev))
	if errors.Is(err, rpctypes.ErrCompacted) {
		if resp, err = s.cli.Get(ctx, keySite); err == nil && len(resp.Kvs) > 0 && resp.Kvs[0].ModRevision > m.etcdRev {
			err = rpctypes.ErrCompacted
		}
	}
	if errors.Is(err, rpctypes.ErrCompacted) {
		// Rare (an old revision's site): rebuilt whole from history.
		snap, err := s.rebuild(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("store: read the site of revision %d: %w", n, compacted(n, err))
		}
		return &snap.Site, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read the site of revision %d: %w", n, compacted(n, err))
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("store: revision %d has no site", n)
	}
	var site config.Site
	if err := json.Unmarshal(resp.Kvs[0].Value, &site); err != nil {
		return nil, fmt.Errorf("store: decode the site of revision %d: %w", n, err)
	}
	return &site, nil
}

// RevisionFrom returns revision n built from base, a snapshot this store
// served before, by fetching only what n changed when n follows base
// directly; otherwise it reads n whole. Revisions of one store never
// change, so parent and changes make n exactly; the caller makes sure base
// came from this store (the cluster ID). Hashing a large site takes far
// longer than fetching a change (0.4 s for 10,000 distributions), so the
// result is not rehashed; its Delta tells roles what changed.
func (s *Store) RevisionFrom(ctx context.Context, base *config.Snapshot, n int64) (*config.Snapshot, error) {
	if base == nil {
		return s.Revision(ctx, n)
	}
	m, legacy, err := s.manifest(ctx, n)
	if err != nil || legacy != nil {
		return legacy, err
	}
	if m.Parent != base.Revision || base.Hash == "" {
		return s.shared(0, m, func() (*config.Snapshot, error) { return s.readRevision(ctx, m) })
	}
	return s.shared(base.Revision, m, func() (*config.Snapshot, error) { return s.revisionFrom(ctx, base, m) })
}

func (s *Store) revisionFrom(ctx context.Context, base *config.Snapshot, m *Manifest) (*config.Snapshot, error) {
	n := m.Revision
	snap := m.snapshot()
	snap.Site = base.Site
	snap.Stacks = base.Stacks
	var gets []clientv3.Op
	if m.Site {
		gets = append(gets, clientv3.OpGet(keySite, clientv3.WithRev(m.etcdRev)))
	}
	if m.Stacks {
		snap.Stacks = nil // none, unless the key is there
		gets = append(gets, clientv3.OpGet(keyStacks, clientv3.WithRev(m.etcdRev)))
	}
	for _, name := range m.Changed {
		gets = append(gets, clientv3.OpGet(keyDistributions+name, clientv3.WithRev(m.etcdRev)))
	}
	changed := map[string]*config.Distribution{}
	for chunk := range slices.Chunk(gets, maxTxnOps) {
		resp, err := s.cli.Txn(ctx).Then(chunk...).Commit()
		if errors.Is(err, rpctypes.ErrCompacted) {
			return s.readRevision(ctx, m)
		}
		if err != nil {
			return nil, fmt.Errorf("store: read revision %d: %w", n, err)
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				if string(kv.Key) == keySite {
					snap.Site = config.Site{}
					if err := json.Unmarshal(kv.Value, &snap.Site); err != nil {
						return nil, fmt.Errorf("store: decode the site of revision %d: %w", n, err)
					}
					continue
				}
				if string(kv.Key) == keyStacks {
					if err := json.Unmarshal(kv.Value, &snap.Stacks); err != nil {
						return nil, fmt.Errorf("store: decode the stacks of revision %d: %w", n, err)
					}
					continue
				}
				d := new(config.Distribution)
				if err := json.Unmarshal(kv.Value, d); err != nil {
					return nil, fmt.Errorf("store: decode %s of revision %d: %w", kv.Key, n, err)
				}
				changed[d.Name] = d
			}
		}
	}
	removed := map[string]bool{}
	for _, name := range m.Removed {
		removed[name] = true
	}
	removedSeen := 0
	snap.Distributions = make([]config.Distribution, 0, len(base.Distributions)+len(changed))
	for _, d := range base.Distributions {
		if c, ok := changed[d.Name]; ok {
			d = *c
			delete(changed, d.Name)
		}
		if removed[d.Name] {
			removedSeen++
			continue
		}
		snap.Distributions = append(snap.Distributions, d)
	}
	if len(changed) > 0 { // new distributions: keep the order by name
		for _, d := range changed {
			snap.Distributions = append(snap.Distributions, *d)
		}
		sort.Slice(snap.Distributions, func(i, j int) bool { return snap.Distributions[i].Name < snap.Distributions[j].Name })
	}
	snap.Outputs = outputsOf(snap.Distributions)
	if removedSeen != len(m.Removed) {
		// The base was not what this store served as base.Revision.
		return s.readRevision(ctx, m)
	}
	snap.Delta = &config.Delta{Base: base.Revision, Site: m.Site, Changed: m.Changed, Removed: m.Removed}
	return snap, nil
}

// shared reads a revision once for every caller of this client that asks
// for it from the same base at the same time or shortly after: the nodes
// of `intercloud up` share one client, and a snapshot is never mutated.
func (s *Store) shared(base int64, m *Manifest, read func() (*config.Snapshot, error)) (*config.Snapshot, error) {
	// The manifest's identity (its cluster and etcd revision) is part of
	// the key: a store rebuilt under the same endpoints starts at
	// revision 1 again.
	key := recentKey{base: base, n: m.Revision, cluster: m.cluster, etcdRev: uint64(m.etcdRev)}
	s.recent.mu.Lock()
	for _, r := range s.recent.snaps {
		if r.key == key {
			s.recent.mu.Unlock()
			return r.snap, nil
		}
	}
	s.recent.mu.Unlock()
	v, err, _ := s.flight.Do(fmt.Sprint(key), func() (any, error) { return read() })
	if err != nil {
		return nil, err
	}
	snap := v.(*config.Snapshot)
	s.remember(key, snap)
	return snap, nil
}

func (s *Store) remember(key recentKey, snap *config.Snapshot) {
	s.recent.mu.Lock()
	defer s.recent.mu.Unlock()
	for _, r := range s.recent.snaps {
		if r.key == key {
			return
		}
	}
	s.recent.snaps = append(s.recent.snaps, recentRead{key, snap})
	if len(s.recent.snaps) > 4 {
		s.recent.snaps = s.recent.snaps[1:]
	}
}

// recentReads are the last revisions read, by (base, revision).
type recentReads struct {
	mu    sync.Mutex
	snaps []recentRead
}

type recentRead struct {
	key  recentKey
	snap *config.Snapshot
}

type recentKey struct {
	base, n          int64
	cluster, etcdRev uint64
}

func (m *Manifest) snapshot() *config.Snapshot {
	return &config.Snapshot{Revision: m.Revision, Hash: m.Hash, Time: m.Time, Reason: m.Reason}
}

func outputsOf(ds []config.Distribution) map[string]map[string]string {
	var out map[string]map[string]string
	for _, d := range ds {
		if len(d.Outputs) > 0 {
			if out == nil {
				out = map[string]map[string]string{}
			}
			out[d.Name] = d.Outputs
		}
	}
	return out
}

// History lists every stored revision, oldest first.
func (s *Store) History(ctx context.Context) ([]RevisionInfo, error) {
	var out []RevisionInfo
	from, end := keyRevisions, clientv3.GetPrefixRangeEnd(keyRevisions)
	for {
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(1000))
		if err != nil {
			return nil, fmt.Errorf("store: read history: %w", err)
		}
		for _, kv := range resp.Kvs {
			m, _, err := decodeManifest(kv.Value, kv.CreateRevision)
			if err != nil {
				return nil, fmt.Errorf("store: %s: %w", kv.Key, err)
			}
			out = append(out, RevisionInfo{Revision: m.Revision, Hash: m.Hash, Time: m.Time, Reason: m.Reason})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Revision < out[j].Revision })
	return out, nil
}

// Commit writes snap as revision snap.Revision: the parts that changed
// since the current revision, its manifest, and the pointer (with the
// revision's rollout; nil: every node at once). A change that fits one
// etcd transaction is one; a larger one writes its parts first, each part
// guarded like the last step, and flips the pointer last, so readers never
// see half of it: they read at the manifest's etcd revision. It fails with
// ErrConflict when the pointer's mod revision is no longer expectMod (0:
// no revision yet), so two writers can never interleave.
func (s *Store) Commit(ctx context.Context, snap *config.Snapshot, expectMod int64, rollout ...*Rollout) error {
	base, err := s.base(ctx, expectMod)
	if err != nil {
		return err
	}
	m := &Manifest{Revision: snap.Revision, Hash: snap.Hash, Time: snap.Time, Reason: snap.Reason, Parent: base.revision,
		Count: len(snap.Distributions)}
	var ops []clientv3.Op
	size := 0
	site, err := json.Marshal(snap.Site)
	if err != nil {
		return fmt.Errorf("store: encode site: %w", err)
	}
	if len(site) > config.MaxDistributionBytes {
		return fmt.Errorf("store: the site is %d bytes encoded; the store takes at most %d per part", len(site), config.MaxDistributionBytes)
	}
	if !bytes.Equal(site, base.site) || base.stale[keySite] {
		m.Site = true
		ops, size = append(ops, clientv3.OpPut(keySite, string(site))), size+len(site)
	}
	var stacks []byte
	if len(snap.Stacks) > 0 {
		m.HasStacks = true
		if stacks, err = json.Marshal(snap.Stacks); err != nil {
			return fmt.Errorf("store: encode stacks: %w", err)
		}
		if len(stacks) > config.MaxDistributionBytes {
			return fmt.Errorf("store: the stacks are %d bytes encoded; the store takes at most %d per part", len(stacks), config.MaxDistributionBytes)
		}
	}
	if !bytes.Equal(stacks, base.stacks) || base.stale[keyStacks] {
		m.Stacks = true
		if stacks != nil {
			ops, size = append(ops, clientv3.OpPut(keyStacks, string(stacks))), size+len(stacks)
		} else {
			ops = append(ops, clientv3.OpDelete(keyStacks))
		}
	}
	want := make(map[string][]byte, len(snap.Distributions))
	for i := range snap.Distributions {
		d := &snap.Distributions[i]
		b, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("store: encode distribution %s: %w", d.Name, err)
		}
		if len(b) > config.MaxDistributionBytes {
			return fmt.Errorf("store: distribution %s is %d bytes encoded; the store takes at most %d per distribution", d.Name, len(b), config.MaxDistributionBytes)
		}
		want[d.Name] = b
		if old, ok := base.dists[d.Name]; ok && bytes.Equal(old, b) && !base.stale[keyDistributions+d.Name] {
			continue
		}
		m.Changed = append(m.Changed, d.Name)
		ops, size = append(ops, clientv3.OpPut(keyDistributions+d.Name, string(b))), size+len(b)
	}
	for _, name := range base.names {
		if _, ok := want[name]; !ok {
			if _, was := base.dists[name]; was {
				m.Removed = append(m.Removed, name)
			}
			ops = append(ops, clientv3.OpDelete(keyDistributions+name))
		}
	}
	slices.Sort(m.Changed)
	slices.Sort(m.Removed)
	undo := undoOps(base, m)
	ops = append(undo, ops...)
	for _, op := range undo {
		size += opSize(op)
	}
	manifest, _ := json.Marshal(m)
	ri := RevisionInfo{Revision: snap.Revision, Hash: snap.Hash, Time: snap.Time, Reason: snap.Reason}
	if len(rollout) > 0 {
		ri.Rollout = rollout[0]
	}
	info, _ := json.Marshal(ri)
	// The manifest and pointer go in the last transaction together: a
	// change so wide that its manifest does not fit cannot commit at once.
	if len(manifest)+len(info) > maxManifestBytes {
		return fmt.Errorf("store: revision %d changes %d distributions and removes %d: its manifest is %d bytes, over the %d one etcd request of the store takes; apply the change in parts (fewer distribution files at a time)",
			snap.Revision, len(m.Changed), len(m.Removed), len(manifest)+len(info), maxManifestBytes)
	}
	var cmp clientv3.Cmp
	if expectMod == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(keyRevision), "=", 0)
	} else {
		cmp = clientv3.Compare(clientv3.ModRevision(keyRevision), "=", expectMod)
	}
	// The parts that do not fit with the manifest go first, in batches.
	for len(ops) > maxTxnOps-2 || size > maxTxnBytes {
		n, bytes := 0, 0
		for n < len(ops) && n < maxTxnOps && bytes+opSize(ops[n]) <= maxTxnBytes {
			bytes += opSize(ops[n])
			n++
		}
		n = max(n, 1)
		resp, err := s.cli.Txn(ctx).If(cmp).Then(ops[:n]...).Commit()
		if err != nil {
			return fmt.Errorf("store: commit revision %d (parts): %w", snap.Revision, err)
		}
		if !resp.Succeeded {
			return ErrConflict
		}
		ops, size = ops[n:], size-bytes
	}
	ops = append(ops, clientv3.OpPut(revisionKey(snap.Revision), string(manifest)), clientv3.OpPut(keyRevision, string(info)))
	resp, err := s.cli.Txn(ctx).If(cmp).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("store: commit revision %d: %w", snap.Revision, err)
	}
	if !resp.Succeeded {
		return ErrConflict
	}
	// What this process wrote is the next commit's base.
	dists := make(map[string][]byte, len(want))
	for k, v := range want {
		dists[k] = v
	}
	s.last.mu.Lock()
	s.last.etcdRev, s.last.site, s.last.stacks, s.last.dists = resp.Header.Revision, site, stacks, dists
	s.last.mu.Unlock()
	// A writer reads what it just wrote next (the controller's health
	// checks, its next commit): it has it already.
	s.remember(recentKey{n: snap.Revision, cluster: resp.Header.ClusterId, etcdRev: uint64(resp.Header.Revision)}, asRead(snap))
	return nil
}

// asRead is snap as Revision returns it: distributions by name, outputs
// gathered from them.
func asRead(snap *config.Snapshot) *config.Snapshot {
	r := &config.Snapshot{Revision: snap.Revision, Hash: snap.Hash, Time: snap.Time, Reason: snap.Reason, Site: snap.Site,
		Stacks: snap.Stacks, Distributions: slices.Clone(snap.Distributions)}
	byName := func(a, b config.Distribution) int { return strings.Compare(a.Name, b.Name) }
	if !slices.IsSortedFunc(r.Distributions, byName) { // the controller sorts what it is given
		slices.SortFunc(r.Distributions, byName)
	}
	r.Outputs = outputsOf(r.Distributions)
	return r
}

func opSize(op clientv3.Op) int {
	return len(op.KeyBytes()) + len(op.ValueBytes())
}

// commitBase is what a commit diffs against: the current revision's parts
// as stored, the names of every distribution key there is, and the keys
// changed after the current revision was written (the parts of a commit
// that never reached its last step), which are written again.
type commitBase struct {
	revision int64 // the current revision (0: none)
	site     []byte
	stacks   []byte
	dists    map[string][]byte
	names    []string
	stale    map[string]bool
}

func (s *Store) base(ctx context.Context, expectMod int64) (*commitBase, error) {
	b := &commitBase{dists: map[string][]byte{}, stale: map[string]bool{}}
	// Every key, with its mod revision only: cheap even for a large site.
	txn, err := s.cli.Txn(ctx).Then(clientv3.OpGet(keySite, clientv3.WithKeysOnly()),
		clientv3.OpGet(keyStacks, clientv3.WithKeysOnly()),
		clientv3.OpGet(keyDistributions, clientv3.WithPrefix(), clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return nil, fmt.Errorf("store: read the current parts: %w", err)
	}
	var resp struct{ Kvs []*mvccpb.KeyValue }
	for _, r := range txn.Responses {
		resp.Kvs = append(resp.Kvs, r.GetResponseRange().Kvs...)
	}
	if expectMod == 0 {
		for _, kv := range resp.Kvs {
			if name, ok := strings.CutPrefix(string(kv.Key), keyDistributions); ok {
				b.names = append(b.names, name)
			}
			b.stale[string(kv.Key)] = true
		}
		return b, nil
	}
	info, mod, err := s.Pointer(ctx)
	if err != nil {
		return nil, err
	}
	if mod != expectMod {
		return nil, ErrConflict
	}
	b.revision = info.Revision
	s.last.mu.Lock()
	etcdRev, site, stacks, dists := s.last.etcdRev, s.last.site, s.last.stacks, s.last.dists
	s.last.mu.Unlock()
	m, legacy, err := s.manifest(ctx, info.Revision)
	if err != nil {
		return nil, err
	}
	if legacy != nil || etcdRev == 0 || etcdRev != m.etcdRev {
		cur, err := s.Revision(ctx, info.Revision)
		if err != nil {
			return nil, err
		}
		site, _ = json.Marshal(cur.Site)
		stacks = nil
		if len(cur.Stacks) > 0 {
			stacks, _ = json.Marshal(cur.Stacks)
		}
		dists = map[string][]byte{}
		for i := range cur.Distributions {
			dists[cur.Distributions[i].Name], _ = json.Marshal(&cur.Distributions[i])
		}
		if legacy != nil {
			m.etcdRev = 0 // every key is newer than a whole-snapshot revision: all are written
		}
	}
	b.site, b.stacks, b.dists = site, stacks, dists
	for _, kv := range resp.Kvs {
		if name, ok := strings.CutPrefix(string(kv.Key), keyDistributions); ok {
			b.names = append(b.names, name)
		}
		if kv.ModRevision > m.etcdRev {
			b.stale[string(kv.Key)] = true
		}
	}
	return b, nil
}

// revisionKey zero-pads so that keys sort in revision order.
func revisionKey(n int64) string { return fmt.Sprintf("%s%012d", keyRevisions, n) }

// compacted says plainly that a revision is older than the history kept.
func compacted(n int64, err error) error {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("revision %d is older than the history the store keeps: %w", n, err)
	}
	return err
}
