package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/intercloud/intercloud/status"
)

// keyDriftEvents holds the heal log, oldest first:
// /intercloud/events/drift/<unix nanos, 19 digits>/<node>.
const keyDriftEvents = prefix + "events/drift/"

// driftEventsKept is how many heal records the site keeps; older ones are
// removed as new ones are written, so a long fight cannot grow the store,
// and reading the log costs at most this many small values. A variable
// only for the test.
var driftEventsKept = 1000

func driftEventKey(ev status.DriftEvent) string {
	// One check heals several resources at the same time: kind and id
	// keep their records apart.
	return fmt.Sprintf("%s%019d/%s/%s/%s", keyDriftEvents, ev.Time.UnixNano(), ev.Node, ev.Kind, url.PathEscape(ev.ID))
}

// PutDriftEvent records a heal (or a heal suspended) of ev.Node's and drops
// the records beyond driftEventsKept. The records outlive the node's lease:
// they are the site's history of what was put back.
func (s *Store) PutDriftEvent(ctx context.Context, ev status.DriftEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("store: encode drift event: %w", err)
	}
	if _, err := s.cli.Put(ctx, driftEventKey(ev), string(b)); err != nil {
		return fmt.Errorf("store: record drift event: %w", err)
	}
	resp, err := s.cli.Get(ctx, keyDriftEvents, clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(int64(driftEventsKept)+1))
	if err != nil {
		return fmt.Errorf("store: list drift events: %w", err)
	}
	if len(resp.Kvs) <= driftEventsKept {
		return nil
	}
	// Keys sort by time: everything up to the first one past the limit goes.
	oldest := resp.Kvs[driftEventsKept].Key
	if _, err := s.cli.Delete(ctx, keyDriftEvents, clientv3.WithRange(string(oldest)+"\x00")); err != nil {
		return fmt.Errorf("store: prune drift events: %w", err)
	}
	return nil
}

// DriftEvents returns the heal records of node ("": every node), newest
// first, at most limit of them (<= 0: all kept).
func (s *Store) DriftEvents(ctx context.Context, node string, limit int) ([]status.DriftEvent, error) {
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
	if node == "" && limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	resp, err := s.cli.Get(ctx, keyDriftEvents, opts...)
	if err != nil {
		return nil, fmt.Errorf("store: read drift events: %w", err)
	}
	out := []status.DriftEvent{}
	for _, kv := range resp.Kvs {
		var ev status.DriftEvent
		if json.Unmarshal(kv.Value, &ev) != nil || (node != "" && ev.Node != node) {
			continue
		}
		out = append(out, ev)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}
