// Package store is the desired-state and status keyspace on etcd: revisions
// of rendered snapshots, node registrations on leases, origin health and
// invalidations. Only the controller writes desired state; agents write
// their own status.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/intercloud/intercloud/status"
)

const (
	prefix           = "/intercloud/"
	keyRevision      = prefix + "revision"
	keyRevisions     = prefix + "revisions/"
	keySite          = prefix + "site"
	keyStacks        = prefix + "stacks"
	keyDistributions = prefix + "distributions/"
	keyNodes         = prefix + "nodes/"
	keyInvalidations = prefix + "invalidations/"
	keyHealth        = prefix + "health/"
	keyObjects       = prefix + "objects/"
)

// ErrConflict means another writer committed a revision first.
var ErrConflict = errors.New("store: revision changed concurrently")

// Store is a client of the intercloud keyspace.
type Store struct {
	cli    *clientv3.Client
	last   *committed
	recent recentReads
	flight singleflight.Group
	// life ends with Close; the shared views of nodes, health and
	// invalidations watch until then.
	life          context.Context
	end           context.CancelFunc
	nodes         view[status.NodeStatus, map[string]status.NodeStatus]
	health        view[status.OriginHealth, map[string]status.OriginHealth]
	invalidations view[invalidationPart, map[string]*InvalidationState]
}

// Open connects to etcd. The connection is lazy: Open succeeds while the
// store is down and calls fail until it comes back.
func Open(endpoints []string) (*Store, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("store: no endpoints")
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          3 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("store: connect %v: %w", endpoints, err)
	}
	s := &Store{cli: cli, last: &committed{}}
	s.life, s.end = context.WithCancel(context.Background())
	s.nodes = view[status.NodeStatus, map[string]status.NodeStatus]{prefix: keyNodes, decode: decodeNode, build: nodesByName}
	s.health = view[status.OriginHealth, map[string]status.OriginHealth]{prefix: keyHealth, decode: decodeHealth, build: healthByOrigin}
	s.invalidations = view[invalidationPart, map[string]*InvalidationState]{prefix: keyInvalidations, decode: decodeInvalidation, build: invalidationStates}
	return s, nil
}

// Close closes the client.
func (s *Store) Close() error {
	s.end()
	return s.cli.Close()
}

// RevisionInfo is one entry of the history; the current one, in the
// revision pointer, also carries the state of its rollout.
type RevisionInfo struct {
	Revision int64     `json:"revision"`
	Hash     string    `json:"hash"`
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason,omitempty"`
	Rollout  *Rollout  `json:"rollout,omitempty"`
}

// Rollout is where the current revision is in reaching the nodes. It lives
// in the revision pointer, so a node reads the revision and whether it is
// one of the nodes to run it yet in one consistent value.
type Rollout struct {
	// Revision is the revision being rolled out; From is what the nodes
	// not reached yet keep running.
	Revision int64 `json:"revision"`
	From     int64 `json:"from"`
	// Stage is the index of the stage in progress in the site's
	// rollout.stages; Nodes are the nodes that run Revision now.
	Stage        int       `json:"stage"`
	Nodes        []string  `json:"nodes"`
	State        string    `json:"state"`
	Reason       string    `json:"reason,omitempty"`
	Started      time.Time `json:"started"`
	StageStarted time.Time `json:"stageStarted"`
}

// Rollout states. Only a rollout in progress or paused holds nodes back.
const (
	RolloutProgressing = "progressing"
	RolloutPaused      = "paused"
	RolloutComplete    = "complete"
	// RolloutFailed: a gate failed and the fleet was rolled back; the
	// controller takes no new revision until an operator resumes.
	RolloutFailed  = "failed"
	RolloutAborted = "aborted"
)

// Holds reports whether the rollout keeps node on From.
func (r *Rollout) Holds(node string) bool {
	if r == nil || (r.State != RolloutProgressing && r.State != RolloutPaused) {
		return false
	}
	return !slices.Contains(r.Nodes, node)
}

// Pointer returns the current revision pointer (zero before the first
// apply) with its etcd mod revision, for SetRollout.
func (s *Store) Pointer(ctx context.Context) (RevisionInfo, int64, error) {
	resp, err := s.cli.Get(ctx, keyRevision)
	if err != nil {
		return RevisionInfo{}, 0, fmt.Errorf("store: read current revision: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return RevisionInfo{}, 0, nil
	}
	var info RevisionInfo
	if err := json.Unmarshal(resp.Kvs[0].Value, &info); err != nil {
		return RevisionInfo{}, 0, fmt.Errorf("store: decode %s: %w", keyRevision, err)
	}
	return info, resp.Kvs[0].ModRevision, nil
}

// SetRollout rewrites the pointer's rollout state, unless the pointer
// changed since expectMod (ErrConflict).
func (s *Store) SetRollout(ctx context.Context, info RevisionInfo, expectMod int64) error {
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("store: encode rollout: %w", err)
	}
	resp, err := s.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(keyRevision), "=", expectMod)).
		Then(clientv3.OpPut(keyRevision, string(b))).Commit()
	if err != nil {
		return fmt.Errorf("store: write rollout of revision %d: %w", info.Revision, err)
	}
	if !resp.Succeeded {
		return ErrConflict
	}
	return nil
}

// Pointer is the current revision as a watcher sees it, with the identity
// of the etcd cluster that holds it: revision numbers of two clusters (a
// store rebuilt from scratch) say nothing about each other.
type Pointer struct {
	Revision int64
	Cluster  string
	Rollout  *Rollout
}

func clusterID(id uint64) string { return fmt.Sprintf("%016x", id) }

// WatchRevision sends the current revision each time the pointer changes,
// starting with the value at the time of the call when there is one.
// The channel closes when ctx ends or the watch fails; callers re-watch.
func (s *Store) WatchRevision(ctx context.Context) <-chan Pointer {
	out := make(chan Pointer, 1)
	go func() {
		defer close(out)
		resp, err := s.cli.Get(ctx, keyRevision)
		if err != nil {
			return
		}
		cluster := clusterID(resp.Header.ClusterId)
		if len(resp.Kvs) > 0 {
			if info, ok := decodeRevision(resp.Kvs[0].Value); ok {
				out <- Pointer{info.Revision, cluster, info.Rollout}
			}
		}
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), keyRevision, clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil {
				return
			}
			for _, ev := range wr.Events {
				if info, ok := decodeRevision(ev.Kv.Value); ok {
					select {
					case out <- Pointer{info.Revision, clusterID(wr.Header.ClusterId), info.Rollout}:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return out
}

func decodeRevision(b []byte) (RevisionInfo, bool) {
	var info RevisionInfo
	if json.Unmarshal(b, &info) != nil || info.Revision == 0 {
		return RevisionInfo{}, false
	}
	return info, true
}

// Nodes returns every registered (live) node.
func (s *Store) Nodes(ctx context.Context) (map[string]status.NodeStatus, error) {
	resp, err := s.cli.Get(ctx, keyNodes, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: read nodes: %w", err)
	}
	return nodesByName(decodeAll(resp.Kvs, decodeNode)), nil
}

// decodeAll decodes what a read returned as a view does.
func decodeAll[E any](kvs []*mvccpb.KeyValue, decode func(key string, value []byte) (E, bool)) map[string]E {
	out := make(map[string]E, len(kvs))
	for _, kv := range kvs {
		if e, ok := decode(string(kv.Key), kv.Value); ok {
			out[string(kv.Key)] = e
		}
	}
	return out
}

// decodeNode drops a node writing garbage: it is not live for us.
func decodeNode(_ string, value []byte) (status.NodeStatus, bool) {
	var st status.NodeStatus
	return st, json.Unmarshal(value, &st) == nil
}

func nodesByName(keys map[string]status.NodeStatus) map[string]status.NodeStatus {
	out := make(map[string]status.NodeStatus, len(keys))
	for _, st := range keys {
		out[st.Name] = st
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// WatchNodes calls fn with the full set of live nodes now and after every
// change, until ctx ends. The set is shared by every watcher of this Store:
// fn must return quickly and must not modify it.
func (s *Store) WatchNodes(ctx context.Context, fn func(map[string]status.NodeStatus)) {
	s.nodes.subscribe(ctx, s, fn)
}

// PutHealth records the controller's verdict on an origin.
func (s *Store) PutHealth(ctx context.Context, h status.OriginHealth) error {
	b, _ := json.Marshal(h)
	if _, err := s.cli.Put(ctx, keyHealth+h.Distribution+"/"+h.Origin, string(b)); err != nil {
		return fmt.Errorf("store: write health of %s/%s: %w", h.Distribution, h.Origin, err)
	}
	return nil
}

// DeleteHealth forgets an origin that is no longer configured.
func (s *Store) DeleteHealth(ctx context.Context, dist, origin string) error {
	_, err := s.cli.Delete(ctx, keyHealth+dist+"/"+origin)
	return err
}

// Health returns every origin's health, keyed "<dist>/<origin>".
func (s *Store) Health(ctx context.Context) (map[string]status.OriginHealth, error) {
	resp, err := s.cli.Get(ctx, keyHealth, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: read health: %w", err)
	}
	return healthByOrigin(decodeAll(resp.Kvs, decodeHealth)), nil
}

func decodeHealth(_ string, value []byte) (status.OriginHealth, bool) {
	var h status.OriginHealth
	return h, json.Unmarshal(value, &h) == nil
}

func healthByOrigin(keys map[string]status.OriginHealth) map[string]status.OriginHealth {
	out := make(map[string]status.OriginHealth, len(keys))
	for _, h := range keys {
		out[h.Distribution+"/"+h.Origin] = h
	}
	return out
}

// WatchHealth calls fn with every origin's health now and after every
// change, until ctx ends; fn must return quickly and must not modify what
// it is given (every watcher of this Store shares it).
func (s *Store) WatchHealth(ctx context.Context, fn func(map[string]status.OriginHealth)) {
	s.health.subscribe(ctx, s, fn)
}

// InvalidationState is an invalidation with the nodes that completed it.
type InvalidationState struct {
	status.Invalidation
	Done map[string]time.Time `json:"done"`
}

// PutInvalidation records a new invalidation.
func (s *Store) PutInvalidation(ctx context.Context, inv status.Invalidation) error {
	b, _ := json.Marshal(inv)
	if _, err := s.cli.Put(ctx, keyInvalidations+inv.ID, string(b)); err != nil {
		return fmt.Errorf("store: write invalidation %s: %w", inv.ID, err)
	}
	return nil
}

// MarkInvalidationDone records that node has applied invalidation id.
func (s *Store) MarkInvalidationDone(ctx context.Context, id, node string) error {
	t, _ := time.Now().UTC().MarshalText()
	if _, err := s.cli.Put(ctx, keyInvalidations+id+"/done/"+node, string(t)); err != nil {
		return fmt.Errorf("store: mark invalidation %s done on %s: %w", id, node, err)
	}
	return nil
}

// Invalidations returns every invalidation with its completions.
func (s *Store) Invalidations(ctx context.Context) (map[string]*InvalidationState, error) {
	resp, err := s.cli.Get(ctx, keyInvalidations, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: read invalidations: %w", err)
	}
	return invalidationStates(decodeAll(resp.Kvs, decodeInvalidation)), nil
}

// invalidationPart is one key of an invalidation: the invalidation itself
// or one node's completion of it.
type invalidationPart struct {
	id   string
	inv  *status.Invalidation
	node string
	done time.Time
}

func decodeInvalidation(key string, value []byte) (invalidationPart, bool) {
	rest := strings.TrimPrefix(key, keyInvalidations)
	if id, node, ok := strings.Cut(rest, "/done/"); ok {
		p := invalidationPart{id: id, node: node}
		_ = p.done.UnmarshalText(value)
		return p, true
	}
	var inv status.Invalidation
	if json.Unmarshal(value, &inv) != nil {
		return invalidationPart{}, false
	}
	return invalidationPart{id: rest, inv: &inv}, true
}

func invalidationStates(keys map[string]invalidationPart) map[string]*InvalidationState {
	out := map[string]*InvalidationState{}
	get := func(id string) *InvalidationState {
		st := out[id]
		if st == nil {
			st = &InvalidationState{Done: map[string]time.Time{}}
			out[id] = st
		}
		return st
	}
	for _, p := range keys {
		if p.inv != nil {
			get(p.id).Invalidation = *p.inv
		} else {
			get(p.id).Done[p.node] = p.done
		}
	}
	for id, st := range out {
		if st.ID == "" { // completions of a deleted invalidation
			delete(out, id)
		}
	}
	return out
}

// WatchInvalidations calls fn with every invalidation now and after every
// change, until ctx ends; fn must return quickly and must not modify what
// it is given (every watcher of this Store shares it).
func (s *Store) WatchInvalidations(ctx context.Context, fn func(map[string]*InvalidationState)) {
	s.invalidations.subscribe(ctx, s, fn)
}

// nodeKey is where a node registers.
func nodeKey(name string) string { return path.Join(keyNodes, name) }

// Ping checks that the store answers a linearizable read.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.cli.Get(ctx, keyRevision); err != nil {
		return fmt.Errorf("store unreachable: %w", err)
	}
	return nil
}
