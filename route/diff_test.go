package route

import (
	"net/netip"
	"slices"
	"testing"
)

// The diff between what the table installed and what the kernel holds,
// expected set against actual set.
func TestDiff(t *testing.T) {
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	type m = map[netip.Prefix]netip.Addr
	none := netip.Addr{}
	cases := []struct {
		name      string
		want, got m
		diffs     []Diff
	}{
		{"equal", m{p("10.2.0.0/16"): a("10.0.0.2")}, m{p("10.2.0.0/16"): a("10.0.0.2")}, nil},
		{"both empty", m{}, m{}, nil},
		{"deleted by hand", m{p("10.2.0.0/16"): a("10.0.0.2"), p("10.3.0.0/16"): a("10.0.0.2")}, m{p("10.3.0.0/16"): a("10.0.0.2")},
			[]Diff{{p("10.2.0.0/16"), a("10.0.0.2"), none}}},
		{"next hop changed", m{p("10.2.0.0/16"): a("10.0.0.2")}, m{p("10.2.0.0/16"): a("10.0.0.9")},
			[]Diff{{p("10.2.0.0/16"), a("10.0.0.2"), a("10.0.0.9")}}},
		{"added with our protocol", m{}, m{p("fd00:2::/48"): a("fd00::2")},
			[]Diff{{p("fd00:2::/48"), none, a("fd00::2")}}},
		{"all three, sorted", m{p("10.9.0.0/16"): a("10.0.0.2"), p("10.2.0.0/16"): a("10.0.0.2")},
			m{p("10.2.0.0/16"): a("10.0.0.3"), p("10.2.0.0/24"): a("10.0.0.2")},
			[]Diff{{p("10.2.0.0/16"), a("10.0.0.2"), a("10.0.0.3")}, {p("10.2.0.0/24"), none, a("10.0.0.2")}, {p("10.9.0.0/16"), a("10.0.0.2"), none}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := diff(c.want, c.got); !slices.Equal(got, c.diffs) {
				t.Fatalf("diff = %v, want %v", got, c.diffs)
			}
		})
	}
	d := Diff{p("10.2.0.0/16"), a("10.0.0.2"), none}
	if d.Expected() != "10.2.0.0/16 via 10.0.0.2" || d.Actual() != "absent" {
		t.Errorf("Expected %q, Actual %q", d.Expected(), d.Actual())
	}
}
