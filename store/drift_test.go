package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/intercloud/intercloud/status"
)

// The heal log reads newest first, for every node or one, and keeps only
// the last driftEventsKept records of the site.
func TestDriftEvents(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := t.Context()
	old := driftEventsKept
	driftEventsKept = 5
	t.Cleanup(func() { driftEventsKept = old })
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 7 {
		node := "a"
		if i%2 == 1 {
			node = "b"
		}
		ev := status.DriftEvent{Time: t0.Add(time.Duration(i) * time.Second), Node: node, Kind: status.DriftRoute, ID: fmt.Sprint(i), State: status.DriftHealed}
		if err := s.PutDriftEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(evs []status.DriftEvent) string {
		out := ""
		for _, e := range evs {
			out += e.Node + e.ID + " "
		}
		return out
	}
	cases := []struct {
		node  string
		limit int
		want  string
	}{
		{"", 0, "a6 b5 a4 b3 a2 "}, // 0 and 1 pruned
		{"", 2, "a6 b5 "},
		{"a", 0, "a6 a4 a2 "},
		{"b", 1, "b5 "},
		{"c", 0, ""},
	}
	for _, c := range cases {
		evs, err := s.DriftEvents(ctx, c.node, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(evs); got != c.want {
			t.Errorf("DriftEvents(%q, %d) = %q, want %q", c.node, c.limit, got, c.want)
		}
	}
}
