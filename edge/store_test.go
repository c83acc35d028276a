package edge

import (
	"net/http"
	"testing"
	"time"
)

func TestMemStore(t *testing.T) {
	if _, err := newMemStore(0); err == nil {
		t.Fatal("zero capacity accepted")
	}
	s, err := newMemStore(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mk := func(key, path string, size int) *entry {
		return &entry{key: key, dist: "d", path: path, status: 200, header: http.Header{}, body: make([]byte, size)}
	}
	if !s.Set(mk("a", "/a", 100), time.Minute) || !s.Set(mk("b", "/b", 100), time.Minute) {
		t.Fatal("set refused")
	}
	if s.Set(mk("z", "/z", 1), 0) {
		t.Fatal("zero ttl stored")
	}
	if e, ok := s.Get("a"); !ok || e.path != "/a" {
		t.Fatal("get a")
	}
	st := s.Stats()
	if st.Entries != 2 || st.Bytes < 200 || st.Capacity != 1<<20 {
		t.Fatalf("stats %+v", st)
	}
	n := 0
	s.Each(func(*entry) { n++ })
	if n != 2 {
		t.Fatalf("Each visited %d", n)
	}
	s.Del("a")
	if _, ok := s.Get("a"); ok {
		t.Fatal("deleted entry still there")
	}
	// Filling far beyond capacity evicts: bytes stay within the capacity.
	for i := 0; i < 200; i++ {
		s.Set(mk("big"+itoa(i), "/big", 16<<10), time.Minute)
	}
	if st := s.Stats(); st.Bytes > 1<<20 || st.Evictions+st.Rejected == 0 {
		t.Fatalf("after overflow: %+v", st)
	}
	s.SetCapacity(2 << 20)
	if s.Stats().Capacity != 2<<20 {
		t.Fatal("capacity not updated")
	}
}
