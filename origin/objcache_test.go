package origin

import (
	"testing"
	"time"
)

// An entry is trusted for the validity measured between the server's own
// readings of the clock (their monotonic part), and a renewal extends it
// from the renewal.
func TestObjCacheValidity(t *testing.T) {
	c := newObjCache(1<<20, time.Second)
	t0 := time.Now()
	k := objKey{"v1", "/a.css"}
	c.put(k, &fileMeta{}, []byte("body"), t0)
	if _, fresh := c.get(k, t0.Add(900*time.Millisecond)); !fresh {
		t.Fatal("stale 0.9 s after the put, validity 1 s")
	}
	o, fresh := c.get(k, t0.Add(1100*time.Millisecond))
	if fresh || o == nil {
		t.Fatalf("1.1 s after the put: fresh %v, entry %v", fresh, o != nil)
	}
	c.renew(o, t0.Add(2*time.Second))
	if _, fresh := c.get(k, t0.Add(2900*time.Millisecond)); !fresh {
		t.Fatal("stale 0.9 s after the renewal")
	}
	if _, fresh := c.get(k, t0.Add(3100*time.Millisecond)); fresh {
		t.Fatal("fresh 1.1 s after the renewal")
	}
	if _, fresh := c.get(objKey{"v2", "/a.css"}, t0); fresh {
		t.Fatal("another version's entry")
	}
}
