package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/intercloud/intercloud/status"
)

// Registration keeps a node's key alive on a lease: when the process dies,
// the lease expires and the key disappears, which is how everyone else
// learns the node is down.
type Registration struct {
	store *Store
	name  string
	ttl   time.Duration
	log   *slog.Logger

	mu     sync.Mutex
	status status.NodeStatus
	lease  clientv3.LeaseID
	kick   chan struct{}
	done   chan struct{}
}

// Register starts keeping /intercloud/nodes/<name> alive with status. It
// retries in the background while the store is unreachable.
func (s *Store) Register(ctx context.Context, status status.NodeStatus, ttl time.Duration, log *slog.Logger) *Registration {
	if ttl < 2*time.Second {
		ttl = 2 * time.Second
	}
	r := &Registration{store: s, name: status.Name, ttl: ttl, log: log, status: status,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	go r.run(ctx)
	return r
}

// Update changes the reported status and writes it under the current
// lease when it changed; an unchanged status waits for the periodic
// refresh, so a caller may update as often as it likes.
func (r *Registration) Update(fn func(*status.NodeStatus)) {
	r.mu.Lock()
	before := r.status
	fn(&r.status)
	changed := !reflect.DeepEqual(before, r.status)
	r.mu.Unlock()
	if !changed {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Status returns the status as last set.
func (r *Registration) Status() status.NodeStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Done is closed once the registration has stopped and revoked its lease.
func (r *Registration) Done() <-chan struct{} { return r.done }

func (r *Registration) run(ctx context.Context) {
	defer close(r.done)
	for ctx.Err() == nil {
		err := r.session(ctx)
		if ctx.Err() != nil {
			break
		}
		r.log.Warn("node registration lost; retrying", "node", r.name, "err", err)
		sleep(ctx, time.Second)
	}
	// Revoke so the node disappears at once on a graceful stop instead of
	// after the lease TTL.
	r.mu.Lock()
	lease := r.lease
	r.mu.Unlock()
	if lease != 0 {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, _ = r.store.cli.Revoke(rctx, lease)
		cancel()
	}
}

func (r *Registration) session(ctx context.Context) error {
	gctx, cancel := context.WithTimeout(ctx, r.ttl)
	grant, err := r.store.cli.Grant(gctx, int64(r.ttl/time.Second))
	cancel()
	if err != nil {
		return fmt.Errorf("grant lease: %w", err)
	}
	r.mu.Lock()
	r.lease = grant.ID
	r.mu.Unlock()
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	ka, err := r.store.cli.KeepAlive(kctx, grant.ID)
	if err != nil {
		return fmt.Errorf("keep lease alive: %w", err)
	}
	if err := r.put(ctx, grant.ID); err != nil {
		return err
	}
	refresh := time.NewTicker(r.ttl)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-ka:
			if !ok {
				return fmt.Errorf("lease %x expired or store unreachable", grant.ID)
			}
		case <-r.kick:
			if err := r.put(ctx, grant.ID); err != nil {
				return err
			}
		case <-refresh.C:
			// Updated timestamps let status show when a node last spoke.
			if err := r.put(ctx, grant.ID); err != nil {
				return err
			}
		}
	}
}

func (r *Registration) put(ctx context.Context, lease clientv3.LeaseID) error {
	r.mu.Lock()
	r.status.Updated = time.Now().UTC()
	b, _ := json.Marshal(r.status)
	r.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, r.ttl)
	defer cancel()
	if _, err := r.store.cli.Put(pctx, nodeKey(r.name), string(b), clientv3.WithLease(lease)); err != nil {
		return fmt.Errorf("write node %s: %w", r.name, err)
	}
	return nil
}
