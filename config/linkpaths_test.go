package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// linkSite is a site of three clouds: seoul-gw joined to tokyo-gw by
// links named in ab, and to osaka-gw by those in ac.
func linkSite(ab, ac []string) *Site {
	s := &Site{Clouds: []Cloud{{Name: "seoul"}, {Name: "tokyo"}, {Name: "osaka"}}}
	for _, c := range []string{"seoul", "tokyo", "osaka"} {
		s.Nodes = append(s.Nodes, Node{Name: c + "-gw", Cloud: c, Roles: []Role{RoleGateway}, Gateway: &Gateway{}})
	}
	for _, n := range ab {
		s.Links = append(s.Links, Link{Name: n, Kind: LinkDedicated, A: LinkEnd{Node: "seoul-gw"}, B: LinkEnd{Node: "tokyo-gw"}})
	}
	for _, n := range ac {
		s.Links = append(s.Links, Link{Name: n, Kind: LinkVPN, A: LinkEnd{Node: "osaka-gw"}, B: LinkEnd{Node: "seoul-gw"}})
	}
	return s
}

func TestLinkPaths(t *testing.T) {
	tests := []struct {
		name   string
		ab, ac []string
		a, b   string
		want   []LinkPath
	}{
		{"one link: nothing to choose", []string{"dx"}, nil, "seoul", "tokyo", nil},
		{"same cloud", []string{"dx", "vpn"}, nil, "seoul", "seoul", nil},
		{"two links, in site order", []string{"dx", "vpn"}, nil, "seoul", "tokyo", []LinkPath{
			{Link: "dx", Kind: LinkDedicated, DSCP: 2, Table: 25000},
			{Link: "vpn", Kind: LinkDedicated, DSCP: 3, Table: 25001},
		}},
		{"either direction", []string{"dx", "vpn"}, nil, "tokyo", "seoul", []LinkPath{
			{Link: "dx", Kind: LinkDedicated, DSCP: 2, Table: 25000},
			{Link: "vpn", Kind: LinkDedicated, DSCP: 3, Table: 25001},
		}},
		{"another pair reuses the DSCP values, not the tables", []string{"dx", "vpn"}, []string{"o1", "o2"}, "osaka", "seoul", []LinkPath{
			{Link: "o1", Kind: LinkVPN, DSCP: 2, Table: 25002},
			{Link: "o2", Kind: LinkVPN, DSCP: 3, Table: 25003},
		}},
		{"no links between them", []string{"dx", "vpn"}, nil, "tokyo", "osaka", nil},
		{"beyond the DSCP values: left out", []string{"l1", "l2", "l3", "l4", "l5", "l6", "l7"}, nil, "seoul", "tokyo", []LinkPath{
			{Link: "l1", Kind: LinkDedicated, DSCP: 2, Table: 25000},
			{Link: "l2", Kind: LinkDedicated, DSCP: 3, Table: 25001},
			{Link: "l3", Kind: LinkDedicated, DSCP: 4, Table: 25002},
			{Link: "l4", Kind: LinkDedicated, DSCP: 5, Table: 25003},
			{Link: "l5", Kind: LinkDedicated, DSCP: 6, Table: 25004},
			{Link: "l6", Kind: LinkDedicated, DSCP: 7, Table: 25005},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := linkSite(tc.ab, tc.ac).LinkPaths(tc.a, tc.b)
			if !slices.Equal(got, tc.want) {
				t.Errorf("LinkPaths(%s, %s) = %+v, want %+v", tc.a, tc.b, got, tc.want)
			}
			for _, p := range got {
				// The kernel's tos selector takes only the bits 0x1c.
				if p.TOS()&^0x1c != 0 || p.TOS() == 0 {
					t.Errorf("%s: TOS %#x outside what `ip rule tos` matches", p.Link, p.TOS())
				}
				if p.Mark()&^LinkMarkMask != 0 || p.Mark()&^uint32(LinkMarkBase) == 0 {
					t.Errorf("%s: mark %#x not under the mask", p.Link, p.Mark())
				}
			}
		})
	}
}

func TestLinkPathsOf(t *testing.T) {
	s := linkSite([]string{"dx", "vpn"}, []string{"solo"})
	names := func(ps []LinkPath) []string {
		var out []string
		for _, p := range ps {
			out = append(out, fmt.Sprintf("%s/%d/%d", p.Link, p.DSCP, p.Table))
		}
		return out
	}
	for node, want := range map[string][]string{
		"seoul-gw": {"dx/2/25000", "vpn/3/25001"}, // osaka has one link: no choice
		"tokyo-gw": {"dx/2/25000", "vpn/3/25001"},
		"osaka-gw": nil,
		"nobody":   nil,
	} {
		if got := names(s.LinkPathsOf(node)); !slices.Equal(got, want) {
			t.Errorf("LinkPathsOf(%s) = %v, want %v", node, got, want)
		}
	}
}

func TestValidateLinkPaths(t *testing.T) {
	tests := []struct {
		name  string
		links int
		table int
		want  []string
	}{
		{"six links fit", 6, 0, nil},
		{"seven do not", 7, 0, []string{`site: links[6]: more than 6 links join clouds "seoul" and "tokyo": each needs a DSCP value of 2..7 to be a path edges can choose`}},
		{"gateway table is a link's", 2, 25001, []string{`site: nodes[0].gateway.table: table 25001 is link "l2"'s (links use tables 25000..25001)`}},
		{"gateway table past the links", 2, 25002, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var names []string
			for i := range tc.links {
				names = append(names, fmt.Sprintf("l%d", i+1))
			}
			s := linkSite(names, nil)
			s.Nodes[0].Gateway.Table = tc.table
			c := &checker{}
			c.linkPaths(s)
			var got []string
			if len(c.errs) > 0 {
				got = strings.Split(c.errs.Error(), "\n")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
