package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/intercloud/intercloud/status"
)

// keyDriftEvents holds the heal log: /intercloud/events/drift/<node>/<time>.
const keyDriftEvents = prefix + "events/drift/"

// DriftEventsKept is how many heal records a node keeps; older ones are
// removed as new ones are written, so a long fight cannot grow the store.
const DriftEventsKept = 100

func driftEventKey(ev status.DriftEvent) string {
	return fmt.Sprintf("%s%s/%019d", keyDriftEvents, ev.Node, ev.Time.UnixNano())
}

// PutDriftEvent records a heal (or a heal suspended) of ev.Node's and
// drops that node's records beyond DriftEventsKept. The records outlive
// the node's lease: they are the site's history of what was put back.
func (s *Store) PutDriftEvent(ctx context.Context, ev status.DriftEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("store: encode drift event: %w", err)
	}
	if _, err := s.cli.Put(ctx, driftEventKey(ev), string(b)); err != nil {
		return fmt.Errorf("store: record drift event: %w", err)
	}
	dir := keyDriftEvents + ev.Node + "/"
	// Keys sort by time: the newest DriftEventsKept stay.
	resp, err := s.cli.Get(ctx, dir, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	if err != nil {
		return fmt.Errorf("store: list drift events of %s: %w", ev.Node, err)
	}
	if len(resp.Kvs) <= DriftEventsKept {
		return nil
	}
	oldest := resp.Kvs[DriftEventsKept].Key
	if _, err := s.cli.Delete(ctx, dir, clientv3.WithRange(string(oldest)+"\x00")); err != nil {
		return fmt.Errorf("store: prune drift events of %s: %w", ev.Node, err)
	}
	return nil
}

// DriftEvents returns the heal records of node ("": every node), newest
// first, at most limit of them (<= 0: all kept).
func (s *Store) DriftEvents(ctx context.Context, node string, limit int) ([]status.DriftEvent, error) {
	dir := keyDriftEvents
	if node != "" {
		dir += node + "/"
	}
	resp, err := s.cli.Get(ctx, dir, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("store: read drift events: %w", err)
	}
	out := make([]status.DriftEvent, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var ev status.DriftEvent
		if json.Unmarshal(kv.Value, &ev) == nil {
			out = append(out, ev)
		}
	}
	slices.SortStableFunc(out, func(a, b status.DriftEvent) int { return b.Time.Compare(a.Time) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
