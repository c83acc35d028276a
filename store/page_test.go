package store

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/intercloud/intercloud/status"
)

func TestNodesPageAndHealthRange(t *testing.T) {
	s := openStore(t, startMember(t).Endpoints())
	ctx := context.Background()
	names := []string{"a", "b", "b-1", "c", "d"}
	for _, n := range slices.Backward(names) { // written out of order on purpose
		b, _ := json.Marshal(status.NodeStatus{Name: n})
		if _, err := s.cli.Put(ctx, nodeKey(n), string(b)); err != nil {
			t.Fatal(err)
		}
		if err := s.PutHealth(ctx, status.OriginHealth{Distribution: status.EdgeHealthDistribution, Origin: n, Checked: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	// Keys of other folders that sort next to the nodes' must not leak in.
	if _, err := s.cli.Put(ctx, keyNodes[:len(keyNodes)-1], "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutHealth(ctx, status.OriginHealth{Distribution: "shop", Origin: "blue"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		after string
		limit int
		want  []string
		more  bool
	}{
		{"", 2, []string{"a", "b"}, true},
		{"b", 2, []string{"b-1", "c"}, true},
		{"c", 2, []string{"d"}, false},
		{"d", 2, []string{}, false},
		{"bb", 10, []string{"c", "d"}, false}, // after a name that is not registered
		{"", 0, names, false},
		{"", 5, names, false},
	}
	for _, c := range cases {
		got, more, err := s.NodesPage(ctx, c.after, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		var gotNames []string
		for _, n := range got {
			gotNames = append(gotNames, n.Name)
		}
		if !slices.Equal(gotNames, c.want) && !(len(gotNames) == 0 && len(c.want) == 0) || more != c.more {
			t.Errorf("NodesPage(%q, %d) = %v more %v, want %v more %v", c.after, c.limit, gotNames, more, c.want, c.more)
		}
	}

	health := []struct {
		after, through string
		want           []string
	}{
		{"", "", names},
		{"a", "c", []string{"b", "b-1", "c"}},
		{"", "b", []string{"a", "b"}},
		{"c", "", []string{"d"}},
	}
	for _, c := range health {
		got, err := s.HealthRange(ctx, status.EdgeHealthDistribution, c.after, c.through)
		if err != nil {
			t.Fatal(err)
		}
		var gotNames []string
		for k := range got {
			gotNames = append(gotNames, k[len(status.EdgeHealthDistribution)+1:])
		}
		slices.Sort(gotNames)
		if !slices.Equal(gotNames, c.want) {
			t.Errorf("HealthRange(%q, %q) = %v, want %v", c.after, c.through, gotNames, c.want)
		}
	}
}
