package store

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// view follows one folder of the keyspace (nodes, health, invalidations)
// for every watcher of one Store: a single etcd watch, each changed key
// decoded once, and the whole set rebuilt once per batch of events and
// handed to every subscriber.
//
// It exists because the folders are read by every node: with a watch and
// a full re-read per subscriber, a fleet of N nodes whose statuses each
// change once decodes N² statuses per node, and the agents that share a
// client (`intercloud up`) decode the same values once each.
type view[E, T any] struct {
	prefix string
	// decode reads one key's value; false drops the key (garbage is not
	// part of the set).
	decode func(key string, value []byte) (E, bool)
	// build makes the set subscribers see from every decoded key. Its
	// result is shared by all of them and must not be modified.
	build func(map[string]E) T

	mu      sync.Mutex
	started bool
	loaded  bool
	cur     T
	subs    map[*func(T)]struct{}
}

// subscribe calls fn with the set now (once it was read) and after every
// change until ctx ends. Calls to fn are made one at a time, in order, from
// the view's goroutine (or the subscriber's for the first): fn must return
// quickly and must not modify what it is given.
func (v *view[E, T]) subscribe(ctx context.Context, s *Store, fn func(T)) {
	key := &fn
	v.mu.Lock()
	if v.subs == nil {
		v.subs = map[*func(T)]struct{}{}
	}
	v.subs[key] = struct{}{}
	if !v.started {
		v.started = true
		go v.run(s)
	}
	if v.loaded {
		fn(v.cur)
	}
	v.mu.Unlock()
	<-ctx.Done()
	v.mu.Lock()
	delete(v.subs, key)
	v.mu.Unlock()
}

// run keeps the set until the Store closes. The watch starts at the
// revision of the full read, so nothing between them is missed; after a
// store failure or a compaction past the watch, it reads the set again.
func (v *view[E, T]) run(s *Store) {
	ctx := s.life
	for ctx.Err() == nil {
		resp, err := s.cli.Get(ctx, v.prefix, clientv3.WithPrefix())
		if err != nil {
			sleep(ctx, time.Second)
			continue
		}
		state := make(map[string]E, len(resp.Kvs))
		for _, kv := range resp.Kvs {
			if e, ok := v.decode(string(kv.Key), kv.Value); ok {
				state[string(kv.Key)] = e
			}
		}
		v.publish(state)
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), v.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
		for wr := range wch {
			if wr.Err() != nil {
				break
			}
			for _, ev := range wr.Events {
				k := string(ev.Kv.Key)
				if ev.Type == mvccpb.DELETE {
					delete(state, k)
					continue
				}
				if e, ok := v.decode(k, ev.Kv.Value); ok {
					state[k] = e
				} else {
					delete(state, k)
				}
			}
			v.publish(state)
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

func (v *view[E, T]) publish(state map[string]E) {
	set := v.build(state)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cur, v.loaded = set, true
	for fn := range v.subs {
		(*fn)(set)
	}
}
