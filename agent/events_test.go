package agent

import "testing"

// The loop sees the newest set once, however many came before it looked.
func TestLatestKeepsOnlyTheNewest(t *testing.T) {
	l := newLatest[int]()
	if _, ok := l.take(); ok {
		t.Fatal("take before any put: want nothing")
	}
	for i := 1; i <= 3; i++ {
		l.put(i) // never blocks, though nobody reads ready
	}
	<-l.ready
	if v, ok := l.take(); !ok || v != 3 {
		t.Fatalf("take = %d, %v; want 3, true", v, ok)
	}
	if v, ok := l.take(); ok {
		t.Fatalf("second take = %d; want nothing", v)
	}
	select {
	case <-l.ready:
		t.Fatal("ready still set after the set was taken")
	default:
	}
}
