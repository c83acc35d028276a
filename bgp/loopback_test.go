package bgp_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/intercloud/intercloud/bgp"
)

func freePort(t *testing.T, addr string) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newServer(t *testing.T, cfg bgp.Config) *bgp.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := bgp.New(bgp.Options{Logger: log.With("asn", cfg.ASN), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func waitPaths(t *testing.T, s *bgp.Server, want map[string]bool) []bgp.Path {
	t.Helper()
	var got []bgp.Path
	eventually(t, 15*time.Second, "learned paths", func() error {
		var err error
		got, err = s.Best(t.Context())
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, p := range got {
			seen[p.Prefix.String()] = true
		}
		for p, w := range want {
			if seen[p] != w {
				return fmt.Errorf("%s learned=%v, want %v (have %v)", p, seen[p], w, got)
			}
		}
		return nil
	})
	return got
}

// TestLoopbackPair runs two speakers of ours in this process on 127.0.0.1
// and 127.0.0.2: each learns the other's CIDR and nothing else.
func TestLoopbackPair(t *testing.T) {
	pa, pb := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.2")
	a1, a2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	short := func(n bgp.Neighbor) bgp.Neighbor {
		n.HoldTime, n.Keepalive, n.ConnectRetry = 3*time.Second, time.Second, time.Second
		return n
	}
	a := newServer(t, bgp.Config{
		ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: pa, ListenAddresses: []netip.Addr{a1},
		Announce: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00:1::/48")},
		Neighbors: []bgp.Neighbor{short(bgp.Neighbor{Name: "b", Kind: bgp.KindDedicated, ASN: 65002, Address: a2, LocalAddress: a1, Port: pb,
			Allowed: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}})},
	})
	b := newServer(t, bgp.Config{
		ASN: 65002, RouterID: netip.MustParseAddr("10.0.0.2"), ListenPort: pb, ListenAddresses: []netip.Addr{a2},
		// 10.1.5.0/24 is inside a's space: a must reject it.
		Announce: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("10.1.5.0/24")},
		Neighbors: []bgp.Neighbor{short(bgp.Neighbor{Name: "a", Kind: bgp.KindVPN, ASN: 65001, Address: a1, LocalAddress: a2, Port: pa,
			Allowed: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}})},
	})
	got := waitPaths(t, a, map[string]bool{"10.2.0.0/16": true, "10.1.5.0/24": false})
	for _, p := range got {
		if p.Prefix.String() == "10.2.0.0/16" && (p.NextHop != a2 || p.Neighbor != "b" || p.LocalPref != 200 || p.Kind != bgp.KindDedicated) {
			t.Errorf("path from b: %+v", p)
		}
	}
	waitPaths(t, b, map[string]bool{"10.1.0.0/16": true, "10.2.0.0/16": false})
}
