package origin

import (
	"sync"
	"sync/atomic"
	"time"
)

// objCache keeps the bytes of small files in memory, by version and request
// path, so that a hit costs no filesystem call at all (the current pointer
// is still read per request). An entry is trusted for a short validity,
// then checked against the file again (open and fstat: same inode, size
// and times keep it), the way nginx's open_file_cache_valid works. Writes
// through this server drop their version's entries at once.
type objCache struct {
	m        sync.Map // objKey → *cachedObject
	bytes    atomic.Int64
	maxBytes int64
	validity time.Duration
	// epoch is the cache's zero on the monotonic clock: validity is
	// measured from it, not in wall-clock time, so a step of the host
	// clock back does not keep entries unchecked for as long as the step
	// (nor a step forward drop them all at once).
	epoch time.Time
}

// maxCachedObject: larger files are sent by sendfile from the page cache.
const maxCachedObject = 64 << 10

type objKey struct{ version, path string }

type cachedObject struct {
	meta  *fileMeta
	body  []byte
	until atomic.Int64 // nanoseconds since the cache's epoch: valid without a check until then
}

func newObjCache(maxBytes int64, validity time.Duration) *objCache {
	return &objCache{maxBytes: maxBytes, validity: validity, epoch: time.Now()}
}

func (c *objCache) enabled() bool { return c != nil && c.validity > 0 && c.maxBytes > 0 }

// get returns a still valid entry, or the expired one (to revalidate) with
// fresh false.
func (c *objCache) get(k objKey, at time.Time) (o *cachedObject, fresh bool) {
	v, ok := c.m.Load(k)
	if !ok {
		return nil, false
	}
	o = v.(*cachedObject)
	return o, c.since(at) < o.until.Load()
}

// since is at on the cache's clock. at must come from time.Now (it
// carries the monotonic reading the difference is taken on).
func (c *objCache) since(at time.Time) int64 { return int64(at.Sub(c.epoch)) }

// put stores or renews an entry. When the budget is exceeded the cache
// starts over: simple, and a miss costs no more than an uncached request.
func (c *objCache) put(k objKey, m *fileMeta, body []byte, at time.Time) *cachedObject {
	o := &cachedObject{meta: m, body: body}
	o.until.Store(c.since(at) + int64(c.validity))
	if old, loaded := c.m.Swap(k, o); loaded {
		c.bytes.Add(-int64(len(old.(*cachedObject).body)))
	}
	if c.bytes.Add(int64(len(body))) > c.maxBytes {
		c.m.Clear()
		c.bytes.Store(0)
	}
	return o
}

// renew extends a revalidated entry.
func (c *objCache) renew(o *cachedObject, at time.Time) {
	o.until.Store(c.since(at) + int64(c.validity))
}

// dropVersion forgets every entry of a version (after a write into it).
func (c *objCache) dropVersion(version string) {
	c.m.Range(func(k, v any) bool {
		if k.(objKey).version == version {
			if _, ok := c.m.LoadAndDelete(k); ok {
				c.bytes.Add(-int64(len(v.(*cachedObject).body)))
			}
		}
		return true
	})
}
