package gateway

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/intercloud/intercloud/bgp"
)

func TestWithoutDeadPaths(t *testing.T) {
	tun := netip.MustParseAddr("100.64.0.2")
	dx := netip.MustParseAddr("172.31.0.2")
	cfg := bgp.Config{Neighbors: []bgp.Neighbor{
		{Name: "dx", Kind: bgp.KindDedicated, Address: dx},
		{Name: "vpn", Kind: bgp.KindVPN, Address: tun},
	}}
	tests := []struct {
		name       string
		down, link map[netip.Addr]bool
		want       []string
	}{
		{"all up", nil, nil, []string{"dx", "vpn"}},
		{"tunnel down", map[netip.Addr]bool{tun: true}, nil, []string{"dx"}},
		{"a tunnel verdict does not touch a dedicated line", map[netip.Addr]bool{dx: true}, nil, []string{"dx", "vpn"}},
		{"line down", nil, map[netip.Addr]bool{dx: true}, []string{"vpn"}},
		{"a link verdict does not touch a tunnel", nil, map[netip.Addr]bool{tun: true}, []string{"dx", "vpn"}},
		{"both down", map[netip.Addr]bool{tun: true}, map[netip.Addr]bool{dx: true}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withoutDeadPaths(cfg, tt.down, tt.link)
			var names []string
			for _, n := range got.Neighbors {
				names = append(names, n.Name)
			}
			if !slices.Equal(names, tt.want) {
				t.Fatalf("neighbors %v, want %v", names, tt.want)
			}
			if len(cfg.Neighbors) != 2 {
				t.Fatal("the recorded config was modified")
			}
		})
	}
}

func TestDeadPathsVerdicts(t *testing.T) {
	dx := netip.MustParseAddr("172.31.0.2")
	d := deadPaths{links: map[netip.Addr]int{dx: 7}}
	steps := []struct {
		name        string
		ev          linkEvent
		wantChanged bool
		wantDown    bool
	}{
		{"another link goes down", linkEvent{index: 8, up: false}, false, false},
		{"our link goes down", linkEvent{index: 7, up: false}, true, true},
		{"down again changes nothing", linkEvent{index: 7, up: false}, false, true},
		{"our link comes back", linkEvent{index: 7, up: true}, true, false},
	}
	for _, s := range steps {
		if got := d.link(s.ev); got != s.wantChanged {
			t.Fatalf("%s: changed %v, want %v", s.name, got, s.wantChanged)
		}
		if d.linkDown[dx] != s.wantDown {
			t.Fatalf("%s: down %v, want %v", s.name, d.linkDown[dx], s.wantDown)
		}
	}
}
