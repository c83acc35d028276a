package agent

import (
	"testing"

	"github.com/intercloud/intercloud/status"
)

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

// The controller's failed probe of an edge marks it unhealthy for the
// roles; the watched set itself, shared with other agents, is never
// written to.
func TestMergeEdgeHealth(t *testing.T) {
	nodes := map[string]status.NodeStatus{"e1": {Name: "e1", Healthy: true}, "e2": {Name: "e2", Healthy: true}}
	key := func(n string) string { return status.EdgeHealthDistribution + "/" + n }
	for _, tc := range []struct {
		name   string
		health map[string]status.OriginHealth
		want   map[string]bool
	}{
		{"no verdicts", nil, map[string]bool{"e1": true, "e2": true}},
		{"probes pass", map[string]status.OriginHealth{key("e1"): {Healthy: true}}, map[string]bool{"e1": true, "e2": true}},
		{"a probe fails", map[string]status.OriginHealth{key("e2"): {Healthy: false}}, map[string]bool{"e1": true, "e2": false}},
		{"an origin's verdict is not an edge's", map[string]status.OriginHealth{"shop/e1": {Healthy: false}}, map[string]bool{"e1": true, "e2": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mergeEdgeHealth(nodes, tc.health)
			for n, want := range tc.want {
				if got[n].Healthy != want {
					t.Errorf("%s healthy = %v, want %v", n, got[n].Healthy, want)
				}
			}
			if !nodes["e1"].Healthy || !nodes["e2"].Healthy {
				t.Fatal("the watched set was modified")
			}
		})
	}
}
