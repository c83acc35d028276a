package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterIsAllOrNothingAndReusable(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := prometheus.NewCounter(prometheus.CounterOpts{Name: "a_total", Help: "a"})
	b := prometheus.NewCounter(prometheus.CounterOpts{Name: "b_total", Help: "b"})
	taken := prometheus.NewCounter(prometheus.CounterOpts{Name: "b_total", Help: "b"})

	first, err := Register(reg, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Register(reg, a, taken); err == nil {
		t.Fatal("registering a name twice succeeded")
	}
	if n := testutil.CollectAndCount(reg); n != 1 {
		t.Fatalf("a failed group left %d collectors behind, want only the first group's 1", n)
	}
	first.Unregister()
	first.Unregister()
	again, err := Register(reg, a, taken)
	if err != nil {
		t.Fatalf("after Unregister the names are free again: %v", err)
	}
	if n := testutil.CollectAndCount(reg); n != 2 {
		t.Fatalf("collectors after re-registration: %d, want 2", n)
	}
	again.Unregister()
	var none *Group
	none.Unregister()
	if g, err := Register(nil, a); err != nil || g == nil {
		t.Fatalf("nil registry: %v %v", g, err)
	}
}
