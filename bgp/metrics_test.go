package bgp_test

import (
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/intercloud/intercloud/bgp"
)

// TestMetricNames lints every metric of the package (names, units, help).
func TestMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := bgp.New(bgp.Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Apply(t.Context(), bgp.Config{ASN: 65001, RouterID: netip.MustParseAddr("10.0.0.1"), ListenPort: -1,
		Neighbors: []bgp.Neighbor{{Name: "n", Kind: bgp.KindVPN, ASN: 65002, Address: netip.MustParseAddr("127.0.0.9"), Passive: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"intercloud_bgp_neighbor_up", "intercloud_bgp_neighbor_prefixes", "intercloud_bgp_apply_errors_total"} {
		if !names[want] {
			t.Errorf("metric %s missing (have %v)", want, names)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
}
