package edge

import (
	"testing"
	"time"
)

// FuzzDiskMeta: whatever metadata a disk file holds, reading it back as
// an entry and preparing it for hits never panics.
func FuzzDiskMeta(f *testing.F) {
	tr := newTiered(nil, func() int64 { return 1 << 20 }, newMemberIDs(), time.Now, nil)
	good, _ := tr.encode(&entry{dist: "shop", path: "/a", status: 200, header: map[string][]string{"Etag": {`"x"`}, "Via": {"1.1 a"}}})
	marker, _ := tr.encode(&entry{dist: "shop", path: "/a", marker: true, varyNames: []string{"Accept-Language"}, gen: 7})
	for _, s := range [][]byte{good, marker, []byte(`{}`), []byte(`{"status":200,"header":{}}`), []byte(`{"status":200,"header":{"Last-Modified":["x"]},"marker":false}`), []byte(`null`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, meta []byte) {
		e, err := tr.decode("k", meta)
		if err != nil {
			return
		}
		if !e.marker {
			e.size = 0
			e.body = []byte{}
			e.finalize()
			e.retention(time.Hour)
		}
	})
}
