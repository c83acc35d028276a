package bgp

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/osrg/gobgp/v4/api"
	"github.com/prometheus/client_golang/prometheus"
)

// The embedded speaker has no API another tool could use, so each case
// changes GoBGP from inside the process, as a bug or a stray caller
// would; Drift must name exactly that part and Heal put it back.
func TestDriftAndHeal(t *testing.T) {
	s, err := New(Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	ctx := t.Context()
	nb := func(name, addr string, asn uint32) Neighbor {
		return Neighbor{Name: name, Kind: KindVPN, ASN: asn, Address: netip.MustParseAddr(addr), Port: 1,
			Allowed: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}}
	}
	cfg := Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1,
		Announce:  []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
		Neighbors: []Neighbor{nb("b", "127.0.0.2", 65002), nb("c", "127.0.0.3", 65003), nb("d", "127.0.0.4", 65004)}}
	// A site renders the default port, which GoBGP shows as 179 too.
	cfg.Neighbors[2].Port = 179
	if err := s.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		break_ func(t *testing.T)
		what   string
	}{
		{"neighbor removed", func(t *testing.T) {
			must(t, s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: "127.0.0.2"}))
		}, "neighbor b 127.0.0.2"},
		{"neighbor added", func(t *testing.T) {
			must(t, s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(nb("x", "127.0.0.9", 65099))}))
		}, "neighbor 127.0.0.9"},
		{"neighbor re-created with another ASN", func(t *testing.T) {
			must(t, s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: "127.0.0.3"}))
			must(t, s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(nb("c", "127.0.0.3", 65333))}))
		}, "neighbor c 127.0.0.3"},
		{"prefix set widened", func(t *testing.T) {
			must(t, s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
				DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: "allow-127.0.0.2-v4",
				Prefixes: []*api.Prefix{{IpPrefix: "0.0.0.0/0", MaskLengthMin: 0, MaskLengthMax: 32}}}}))
		}, "defined-set allow-127.0.0.2-v4"},
		{"import assignment removed", func(t *testing.T) {
			must(t, s.srv.DeletePolicyAssignment(ctx, &api.DeletePolicyAssignmentRequest{Assignment: assignments()[0], All: true}))
		}, "assignment global import"},
	}
	if d, err := s.Drift(ctx); err != nil || len(d) != 0 {
		t.Fatalf("fresh speaker: %+v, %v", d, err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.break_(t)
			d, err := s.Drift(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(d) != 1 || d[0].What != c.what || d[0].Expected == d[0].Actual {
				t.Fatalf("drift %+v, want only %q", d, c.what)
			}
			if err := s.Heal(ctx); err != nil {
				t.Fatal(err)
			}
			if d, err := s.Drift(ctx); err != nil || len(d) != 0 {
				t.Fatalf("after heal: %+v, %v", d, err)
			}
		})
	}
	ns, err := s.Neighbors(ctx)
	if err != nil || len(ns) != 3 || !strings.Contains(ns[0].Name+ns[1].Name, "b") {
		t.Fatalf("neighbors after the heals: %+v, %v", ns, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A Heal whose SetPolicies fails must leave the policies watched: the next
// Drift still shows what differs, and the next Heal or an Apply of the
// same config puts them back. (Before, the failed Heal left the
// assignments marked unset, so Drift stopped comparing policies and an
// unchanged Apply skipped them, for good.)
func TestHealPolicyFailureKeepsDriftWatched(t *testing.T) {
	cases := []struct {
		name    string
		recover func(t *testing.T, s *Server, cfg Config)
	}{
		{"next heal", func(t *testing.T, s *Server, _ Config) { must(t, s.Heal(t.Context())) }},
		{"apply of the same config", func(t *testing.T, s *Server, cfg Config) { must(t, s.Apply(t.Context(), cfg)) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(Options{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(context.Background())
			ctx := t.Context()
			cfg := Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1,
				Announce: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
				Neighbors: []Neighbor{{Name: "b", Kind: KindVPN, ASN: 65002, Address: netip.MustParseAddr("127.0.0.2"), Port: 1,
					Allowed: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}}}}
			must(t, s.Apply(ctx, cfg))
			must(t, s.srv.DeletePolicyAssignment(ctx, &api.DeletePolicyAssignmentRequest{Assignment: assignments()[0], All: true}))

			// GoBGP refuses a neighbor set without a valid address, so
			// the heal's SetPolicies fails in GoBGP itself. Apply's
			// validation never lets such a config through; it stands in
			// here for any SetPolicies failure.
			bad := cfg
			bad.Neighbors = append(slices.Clone(cfg.Neighbors), Neighbor{Name: "bad", Kind: KindVPN, ASN: 65009})
			s.cfg.Store(&bad)
			if err := s.Heal(ctx); err == nil || !strings.Contains(err.Error(), "set policies") {
				t.Fatalf("heal with a config GoBGP refuses: %v, want a set policies error", err)
			}
			good := cfg
			s.cfg.Store(&good)

			d, err := s.Drift(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !hasDiff(d, "assignment global import") {
				t.Fatalf("drift after the failed heal: %+v, want the import assignment", d)
			}
			c.recover(t, s, cfg)
			if d, err := s.Drift(ctx); err != nil || len(d) != 0 {
				t.Fatalf("after %s: %+v, %v", c.name, d, err)
			}
		})
	}
}

func hasDiff(d []Diff, what string) bool {
	for _, x := range d {
		if x.What == what {
			return true
		}
	}
	return false
}
