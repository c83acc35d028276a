package dns

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

// A distribution with dns.policy latency sends a client to the cloud
// whose edges measured the lowest RTT towards its network, and by
// geography when no edge measured it.
func TestLatencyPolicy(t *testing.T) {
	snap := testSnapshot("")
	snap.Distributions[0].Spec.DNS = &config.DistributionDNS{Policy: config.DNSPolicyLatency}
	s, addr := startServer(t, snap)
	shop := "shop." + zone
	answer := func() []string { return rrStrings(exchange(t, addr, "udp", qA(shop)).Answer) }
	if got := answer(); !slices.Equal(got, shopKR) {
		t.Fatalf("nothing measured: got %v, want seoul (geography)", got)
	}
	client := netip.MustParsePrefix("127.0.0.0/24")
	measured := func(rtts map[string]time.Duration) map[string]status.NodeStatus {
		live := liveAll(snap)
		for n, rtt := range rtts {
			st := live[n]
			st.Report.ClientRTT = []status.NetRTT{{Network: client, RTT: rtt, Samples: 10}}
			live[n] = st
		}
		return live
	}
	// Tokyo's edge measured the client's network closer than seoul's.
	s.SetNodes(measured(map[string]time.Duration{"seoul-edge-1": 40 * time.Millisecond, "tokyo-edge-1": 3 * time.Millisecond}))
	if got := answer(); !slices.Equal(got, shopJP) {
		t.Fatalf("tokyo measured closer: got %v, want tokyo", got)
	}
	x, err := s.Explain(shop, mdns.TypeA, netip.MustParseAddr("127.0.0.1"), netip.Prefix{})
	if err != nil || !x.ByLatency || x.Pool != "tokyo" || len(x.Measured) != 2 || !strings.Contains(x.Measured[0], "3ms from cloud tokyo") {
		t.Fatalf("explanation %+v (%v)", x, err)
	}
	// Tokyo's edge dead: the next measured cloud, seoul.
	live := measured(map[string]time.Duration{"seoul-edge-1": 40 * time.Millisecond, "tokyo-edge-1": 3 * time.Millisecond})
	delete(live, "tokyo-edge-1")
	s.SetNodes(live)
	if got := answer(); !slices.Equal(got, shopKR) {
		t.Fatalf("tokyo dead: got %v, want seoul", got)
	}
	// Measurements of another network do not count: geography again.
	client = netip.MustParsePrefix("10.9.9.0/24")
	s.SetNodes(measured(map[string]time.Duration{"tokyo-edge-1": time.Millisecond}))
	if got := answer(); !slices.Equal(got, shopKR) {
		t.Fatalf("another network measured: got %v, want seoul", got)
	}
}

// The latency table belongs to the committed revision: a Prepare of a
// revision that moves tokyo's edge to another cloud leaves the running
// answers (by tokyo's measurement) alone, Abort keeps them, and Commit
// rebuilds the table from the new site.
func TestLatencyTableFollowsCommit(t *testing.T) {
	snap := testSnapshot("")
	snap.Distributions[0].Spec.DNS = &config.DistributionDNS{Policy: config.DNSPolicyLatency}
	s, _ := startServer(t, snap)
	live := liveAll(snap)
	for n, rtt := range map[string]time.Duration{"seoul-edge-1": 40 * time.Millisecond, "tokyo-edge-1": 3 * time.Millisecond} {
		st := live[n]
		st.Report.ClientRTT = []status.NetRTT{{Network: netip.MustParsePrefix("127.0.0.0/24"), RTT: rtt, Samples: 10}}
		live[n] = st
	}
	s.SetNodes(live)
	pool := func() string {
		x, err := s.Explain("shop."+zone, mdns.TypeA, netip.MustParseAddr("127.0.0.1"), netip.Prefix{})
		if err != nil || !x.ByLatency {
			t.Fatalf("explain: %+v, %v", x, err)
		}
		return x.Pool
	}
	if got := pool(); got != "tokyo" {
		t.Fatalf("tokyo measured closer: pool %q", got)
	}

	next := *snap
	next.Revision++
	next.Site.Nodes = slices.Clone(snap.Site.Nodes)
	for i := range next.Site.Nodes {
		if next.Site.Nodes[i].Name == "tokyo-edge-1" {
			next.Site.Nodes[i].Cloud = "virginia"
		}
	}
	for _, end := range []string{"abort", "commit"} {
		c, err := s.Prepare(t.Context(), &next)
		if err != nil {
			t.Fatal(err)
		}
		if got := pool(); got != "tokyo" {
			t.Fatalf("prepared, before %s: pool %q; want the running table's tokyo", end, got)
		}
		if end == "abort" {
			c.Abort()
			if got := pool(); got != "tokyo" {
				t.Fatalf("aborted: pool %q, want tokyo", got)
			}
			continue
		}
		c.Commit()
		if got := pool(); got != "virginia" {
			t.Fatalf("committed with tokyo's edge in virginia: pool %q, want virginia", got)
		}
	}
}

// The table holds what live, healthy edges measured, the closest cloud
// per network; a site where no distribution asks for latency has none.
func TestBuildLatency(t *testing.T) {
	client := netip.MustParsePrefix("127.0.0.0/24")
	withRTT := func(snap *config.Snapshot, healthy bool) map[string]status.NodeStatus {
		live := liveAll(snap)
		for n, st := range live {
			st.Healthy = healthy
			st.Report.ClientRTT = []status.NetRTT{{Network: client, RTT: time.Millisecond, Samples: 10}}
			live[n] = st
		}
		return live
	}
	latency := testSnapshot("")
	latency.Distributions[0].Spec.DNS = &config.DistributionDNS{Policy: config.DNSPolicyLatency}
	for _, tc := range []struct {
		name string
		snap *config.Snapshot
		live map[string]status.NodeStatus
		nets int
	}{
		{"latency asked, edges measured", latency, withRTT(latency, true), 1},
		{"latency asked, edges unhealthy", latency, withRTT(latency, false), 0},
		{"nobody asks", testSnapshot(""), withRTT(testSnapshot(""), true), 0},
	} {
		if got := len(buildLatency(tc.snap, tc.live).nets); got != tc.nets {
			t.Errorf("%s: %d networks, want %d", tc.name, got, tc.nets)
		}
	}
}
