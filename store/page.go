package store

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/intercloud/intercloud/status"
)

// NodesPage returns up to limit registered nodes whose names sort after
// after ("" : from the first), in name order, and whether more follow.
// It asks etcd for that key range with that limit, so a page costs its
// size, not the fleet's. limit <= 0 means no limit.
func (s *Store) NodesPage(ctx context.Context, after string, limit int) ([]status.NodeStatus, bool, error) {
	from := keyNodes
	if after != "" {
		from = keyNodes + after + "\x00" // the first key after the node itself
	}
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(keyNodes))}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(ctx, from, opts...)
	if err != nil {
		return nil, false, fmt.Errorf("store: read nodes after %q: %w", after, err)
	}
	out := make([]status.NodeStatus, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var st status.NodeStatus
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			continue // a node writing garbage is not live for us
		}
		out = append(out, st)
	}
	return out, resp.More, nil
}

// HealthRange returns the health of dist's targets whose names sort after
// after and up to through (both may be ""), keyed "<dist>/<target>": the
// edges of one status page, without reading every edge's.
func (s *Store) HealthRange(ctx context.Context, dist, after, through string) (map[string]status.OriginHealth, error) {
	base := keyHealth + dist + "/"
	from, end := base, clientv3.GetPrefixRangeEnd(base)
	if after != "" {
		from = base + after + "\x00"
	}
	if through != "" {
		end = base + through + "\x00"
	}
	resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end))
	if err != nil {
		return nil, fmt.Errorf("store: read health of %s after %q: %w", dist, after, err)
	}
	out := make(map[string]status.OriginHealth, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var h status.OriginHealth
		if json.Unmarshal(kv.Value, &h) == nil {
			out[h.Distribution+"/"+h.Origin] = h
		}
	}
	return out, nil
}
