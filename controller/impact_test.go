package controller

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/intercloud/intercloud/config"
)

func render(t *testing.T, dir string, params map[string]string) *config.Snapshot {
	t.Helper()
	b, err := config.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Render(params)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// view is a health view: origins "dist/origin" -> healthy (absent:
// unknown), and the live nodes.
func view(origins map[string]bool, live ...string) healthView {
	return healthView{
		origin: func(d, o string) (bool, bool) { h, ok := origins[d+"/"+o]; return h, ok },
		live: func() (map[string]bool, error) {
			m := map[string]bool{}
			for _, n := range live {
				m[n] = true
			}
			return m, nil
		},
	}
}

func TestImpact(t *testing.T) {
	qs := render(t, "../examples/quickstart", nil)
	stacks := render(t, "../examples/stacks", nil)
	edges := []string{"seoul-edge-1", "tokyo-edge-1"}
	healthy := map[string]bool{"shop/blue": true, "shop/green": true, "static/files": true}
	cases := []struct {
		name string
		cur  *config.Snapshot
		next func() *config.Snapshot
		hv   healthView
		want func(t *testing.T, im []Impact)
	}{
		{name: "group switch: blue's copies unreachable", cur: qs,
			next: func() *config.Snapshot {
				return render(t, "../examples/quickstart", map[string]string{"shop.active": "green"})
			},
			hv: view(healthy, edges...),
			want: func(t *testing.T, im []Impact) {
				one(t, im, "distribution shop")
				if !slices.Equal(im[0].Nodes, edges) || im[0].NodeCount != 2 {
					t.Errorf("nodes %v", im[0].Nodes)
				}
				if len(im[0].Unreachable) != 1 || !slices.Equal(im[0].Unreachable[0].Paths, []string{"/api/*", "/static/*", "/*"}) || !strings.Contains(im[0].Unreachable[0].Why, "blue -> green") {
					t.Errorf("unreachable %+v", im[0].Unreachable)
				}
				none(t, "risks", im[0].Risks)
			}},
		{name: "group switch to an unhealthy member is a risk", cur: qs,
			next: func() *config.Snapshot {
				return render(t, "../examples/quickstart", map[string]string{"shop.active": "green"})
			},
			hv: view(map[string]bool{"shop/blue": true, "shop/green": false}, edges...),
			want: func(t *testing.T, im []Impact) {
				has(t, im[0].Risks, "makes green active, which is unhealthy")
			}},
		{name: "origin moves: its paths to invalidate", cur: qs,
			next: func() *config.Snapshot {
				return render(t, "../examples/quickstart", map[string]string{"static.origin": "http://127.0.0.1:9003"})
			},
			hv: view(healthy, edges...),
			want: func(t *testing.T, im []Impact) {
				one(t, im, "distribution static")
				if len(im[0].Invalidate) != 1 || !slices.Equal(im[0].Invalidate[0].Paths, []string{"/static/*", "/*"}) {
					t.Errorf("invalidate %+v", im[0].Invalidate)
				}
				// Its only member was healthy; the new URL is not known yet.
				none(t, "risks", im[0].Risks) // a lone origin is not a group
			}},
		{name: "the last healthy member moves away", cur: qs,
			next: func() *config.Snapshot {
				return render(t, "../examples/quickstart", map[string]string{"shop.blue": "http://127.0.0.1:9005"})
			},
			hv: view(map[string]bool{"shop/blue": true, "shop/green": false}, edges...),
			want: func(t *testing.T, im []Impact) {
				has(t, im[0].Risks, "shop/web loses its last healthy member")
			}},
		{name: "cache key change", cur: qs,
			next: func() *config.Snapshot {
				s := cloneSnapshot(qs)
				s.Distribution("shop").Spec.Behaviors[2].Forward.Query = config.Selection{All: true}
				return s
			},
			hv: view(healthy, edges...),
			want: func(t *testing.T, im []Impact) {
				if len(im[0].Unreachable) != 1 || im[0].Unreachable[0].Paths[0] != "/*" || !strings.Contains(im[0].Unreachable[0].Why, "cache key") {
					t.Errorf("unreachable %+v", im[0].Unreachable)
				}
			}},
		{name: "a new distribution with no live edge", cur: qs,
			next: func() *config.Snapshot {
				s := cloneSnapshot(qs)
				d := *cloneSnapshot(qs).Distribution("static")
				d.Name, d.Spec.Aliases = "blog", nil
				s.Distributions = append(s.Distributions, d)
				s.SortDistributions()
				return s
			},
			hv: view(healthy), // nothing live
			want: func(t *testing.T, im []Impact) {
				one(t, im, "distribution blog")
				has(t, im[0].DNS, "blog.cdn.example.test: starts answering")
				has(t, im[0].Risks, "blog has no live edge")
			}},
		{name: "a removed distribution", cur: qs,
			next: func() *config.Snapshot {
				s := cloneSnapshot(qs)
				s.Distributions = slices.DeleteFunc(s.Distributions, func(d config.Distribution) bool { return d.Name == "static" })
				return s
			},
			hv: view(healthy, edges...),
			want: func(t *testing.T, im []Impact) {
				has(t, im[0].DNS, "static.example.test: stops answering")
				has(t, im[0].Risks, "static.cdn.example.test stops answering")
				if len(im[0].Unreachable) != 1 || im[0].Unreachable[0].Paths[0] != "/*" {
					t.Errorf("unreachable %+v", im[0].Unreachable)
				}
			}},
		{name: "a cloud's prefixes", cur: qs,
			next: func() *config.Snapshot {
				s := cloneSnapshot(qs)
				s.Site.Clouds[0].CIDRs = append(s.Site.Clouds[0].CIDRs, netip.MustParsePrefix("10.3.0.0/16"))
				return s
			},
			hv: view(healthy, edges...),
			want: func(t *testing.T, im []Impact) {
				one(t, im, "site")
				has(t, im[0].BGP, "gateways of seoul announce 10.3.0.0/16")
				none(t, "nodes", im[0].Nodes) // the quickstart has no gateways
			}},
		{name: "draining every edge", cur: qs,
			next: func() *config.Snapshot {
				s := cloneSnapshot(qs)
				zero := 0
				s.Site.Nodes[0].Weight, s.Site.Nodes[1].Weight = &zero, &zero
				return s
			},
			hv: view(healthy, edges...),
			want: func(t *testing.T, im []Impact) {
				if !slices.Equal(im[0].Nodes, edges) {
					t.Errorf("nodes %v", im[0].Nodes)
				}
				has(t, im[0].DNS, "every name: answers change (edge seoul-edge-1")
				has(t, im[0].Risks, "no live edge with weight above 0 is left")
			}},
		{name: "a stack output reaches its importers", cur: stacks,
			next: func() *config.Snapshot {
				return render(t, "../examples/stacks", map[string]string{"shared.active": "green"})
			},
			hv: view(map[string]bool{"shop/blue": true, "shop/green": true}, edges...),
			want: func(t *testing.T, im []Impact) {
				var st *Impact
				for i := range im {
					if im[i].Object == "stack shared" {
						st = &im[i]
					}
				}
				if st == nil || len(st.Reaches) != 1 || st.Reaches[0].Object != "distribution shop" || !slices.Equal(st.Reaches[0].Via, []string{"shared.active"}) {
					t.Fatalf("impacts %+v", im)
				}
				none(t, "stack nodes", st.Nodes)
				if im[0].Object != "distribution shop" || !slices.Equal(im[0].Imports, []string{"shared.active"}) {
					t.Errorf("shop's impact %+v", im[0])
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := tc.next()
			im, err := impactOf(tc.cur, next, config.Diff(tc.cur, next), tc.hv)
			if err != nil {
				t.Fatal(err)
			}
			tc.want(t, im)
		})
	}
}

func one(t *testing.T, im []Impact, object string) {
	t.Helper()
	if len(im) != 1 || im[0].Object != object {
		t.Fatalf("impacts %+v, want one for %s", im, object)
	}
}

func has(t *testing.T, list []string, sub string) {
	t.Helper()
	for _, s := range list {
		if strings.Contains(s, sub) {
			return
		}
	}
	t.Errorf("%q not in %q", sub, list)
}

func none(t *testing.T, what string, list []string) {
	t.Helper()
	if len(list) > 0 {
		t.Errorf("%s: %q, want none", what, list)
	}
}
