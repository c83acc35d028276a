package agent

import (
	"net/netip"
	"testing"

	"github.com/intercloud/intercloud/bgp"
)

func TestWithoutDeadTunnels(t *testing.T) {
	tun := netip.MustParseAddr("100.64.0.2")
	dx := netip.MustParseAddr("172.31.0.2")
	cfg := bgp.Config{Neighbors: []bgp.Neighbor{
		{Name: "dx", Kind: bgp.KindDedicated, Address: dx},
		{Name: "vpn", Kind: bgp.KindVPN, Address: tun},
	}}
	tests := []struct {
		name string
		down map[netip.Addr]bool
		want []string
	}{
		{"all up", nil, []string{"dx", "vpn"}},
		{"tunnel down", map[netip.Addr]bool{tun: true}, []string{"dx"}},
		{"only tunnels are filtered", map[netip.Addr]bool{dx: true}, []string{"dx", "vpn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withoutDeadTunnels(cfg, tt.down)
			var names []string
			for _, n := range got.Neighbors {
				names = append(names, n.Name)
			}
			if len(names) != len(tt.want) {
				t.Fatalf("neighbors %v, want %v", names, tt.want)
			}
			for i := range names {
				if names[i] != tt.want[i] {
					t.Fatalf("neighbors %v, want %v", names, tt.want)
				}
			}
			if len(cfg.Neighbors) != 2 {
				t.Fatal("the recorded config was modified")
			}
		})
	}
}
