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
}

// maxCachedObject: larger files are sent by sendfile from the page cache.
const maxCachedObject = 64 << 10

type objKey struct{ version, path string }

type cachedObject struct {
	meta  *fileMeta
	body  []byte
	until atomic.Int64 // unix nanoseconds: valid without a check until then
}

func newObjCache(maxBytes int64, validity time.Duration) *objCache {
	return &objCache{maxBytes: maxBytes, validity: validity}
}

func (c *objCache) enabled() bool { return c != nil && c.validity > 0 && c.maxBytes > 0 }

// get returns a still valid entry, or the expired one (to revalidate) with
// fresh false.
func (c *objCache) get(k objKey, now int64) (o *cachedObject, fresh bool) {
	v, ok := c.m.Load(k)
	if !ok {
		return nil, false
	}
	o = v.(*cachedObject)
	return o, now < o.until.Load()
}

// put stores or renews an entry. When the budget is exceeded the cache
// starts over: simple, and a miss costs no more than an uncached request.
func (c *objCache) put(k objKey, m *fileMeta, body []byte, now int64) *cachedObject {
	o := &cachedObject{meta: m, body: body}
	o.until.Store(now + int64(c.validity))
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
func (c *objCache) renew(o *cachedObject, now int64) {
	o.until.Store(now + int64(c.validity))
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
