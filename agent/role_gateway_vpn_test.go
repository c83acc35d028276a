package agent

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bgp"
	"github.com/intercloud/intercloud/vpn"
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

// A tunnel reported down takes its BGP neighbor out of the running speaker
// at once, and back when it is up; the dedicated neighbor is untouched.
// Real GoBGP, in process, listening nowhere.
func TestTunnelStateDrivesBGPNeighbor(t *testing.T) {
	tun := netip.MustParseAddr("127.0.0.2")
	dx := netip.MustParseAddr("127.0.0.3")
	cfg := bgp.Config{
		ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1,
		Neighbors: []bgp.Neighbor{
			{Name: "dx", Kind: bgp.KindDedicated, Address: dx, ASN: 65002, Port: 1, ConnectRetry: time.Hour},
			{Name: "vpn", Kind: bgp.KindVPN, Address: tun, ASN: 65002, Port: 1, ConnectRetry: time.Hour},
		},
	}
	srv, err := bgp.New(bgp.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defer srv.Close(ctx)
	var v gatewayVPN
	v.bgp = srv
	if err := srv.Apply(ctx, v.bgpConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		ns, err := srv.Neighbors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range ns {
			out = append(out, n.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(); !slices.Equal(got, []string{"dx", "vpn"}) {
		t.Fatalf("neighbors %v", got)
	}
	v.peerChanged(vpn.PeerState{Address: tun, Up: false, Reason: "nothing received"})
	if got := names(); !slices.Equal(got, []string{"dx"}) {
		t.Fatalf("after the tunnel died: neighbors %v", got)
	}
	// A later config apply keeps it out while the tunnel is down.
	if err := srv.Apply(ctx, v.bgpConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	if got := names(); !slices.Equal(got, []string{"dx"}) {
		t.Fatalf("after a re-apply: neighbors %v", got)
	}
	v.peerChanged(vpn.PeerState{Address: tun, Up: true})
	if got := names(); !slices.Equal(got, []string{"dx", "vpn"}) {
		t.Fatalf("after the tunnel came back: neighbors %v", got)
	}
}
