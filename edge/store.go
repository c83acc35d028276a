package edge

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/intercloud/intercloud/edge/disk"
)

// cacheStore holds cached objects. It is small on purpose so that another
// backend (disk, a shared tier) can replace the memory one.
type cacheStore interface {
	// Get must not keep key: a hit passes a view of a request's buffer.
	Get(key string) (*entry, bool)
	// Set stores e under e.key for at most ttl; it may refuse (admission).
	Set(e *entry, ttl time.Duration) bool
	Del(key string)
	// Each visits every stored object once; f must not call the store.
	Each(f func(*entry))
	Stats() StoreStats
	SetCapacity(bytes int64)
	Close()
}

// StoreStats is the store's accounting.
type StoreStats struct {
	Capacity  int64  `json:"capacity"`
	Bytes     int64  `json:"bytes"`
	Entries   int    `json:"entries"`
	Evictions uint64 `json:"evictions"`
	Rejected  uint64 `json:"rejected"`
	// Disk is the disk tier's, when there is one.
	Disk *disk.Stats `json:"disk,omitempty"`
}

// memStore is a cacheStore on ristretto with cost = bytes.
type memStore struct {
	c         *ristretto.Cache[string, *entry]
	evictions atomic.Uint64
	rejected  atomic.Uint64
}

func newMemStore(capacity int64) (*memStore, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("cache memory must be positive, got %d", capacity)
	}
	s := &memStore{}
	// About ten counters per expected object, objects averaging ~8 KiB.
	counters := min(max(capacity/8192*10, 10_000), 50_000_000)
	c, err := ristretto.NewCache(&ristretto.Config[string, *entry]{
		NumCounters: counters,
		MaxCost:     capacity,
		BufferItems: 64,
		OnEvict:     func(*ristretto.Item[*entry]) { s.evictions.Add(1) },
		OnReject:    func(*ristretto.Item[*entry]) { s.rejected.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("create ristretto cache: %w", err)
	}
	s.c = c
	return s, nil
}

func (s *memStore) Get(key string) (*entry, bool) { return s.c.Get(key) }

func (s *memStore) Set(e *entry, ttl time.Duration) bool {
	if ttl <= 0 {
		return false
	}
	ok := s.c.SetWithTTL(e.key, e, e.cost(), ttl)
	// Make the object visible before the collapsed waiters look it up.
	s.c.Wait()
	return ok
}

func (s *memStore) Del(key string) { s.c.Del(key) }

func (s *memStore) Each(f func(*entry)) {
	s.c.IterValues(func(e *entry) bool { f(e); return false })
}

func (s *memStore) Stats() StoreStats {
	n := 0
	s.c.IterValues(func(*entry) bool { n++; return false })
	return StoreStats{
		Capacity:  s.c.MaxCost(),
		Bytes:     s.c.MaxCost() - s.c.RemainingCost(),
		Entries:   n,
		Evictions: s.evictions.Load(),
		Rejected:  s.rejected.Load(),
	}
}

func (s *memStore) SetCapacity(b int64) {
	if b > 0 && b != s.c.MaxCost() {
		s.c.UpdateMaxCost(b)
	}
}

func (s *memStore) Close() { s.c.Close() }
