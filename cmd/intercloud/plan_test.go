package main

import (
	"strings"
	"testing"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/controller"
)

func TestPrintPlan(t *testing.T) {
	cases := []struct {
		name string
		res  controller.ApplyResult
		want []string
	}{
		{"no changes", controller.ApplyResult{Revision: 3, Hash: "0123456789abcdef"}, []string{"No changes: revision 3 already has hash 0123456789ab."}},
		{"a switch", controller.ApplyResult{Revision: 3, Hash: "0123456789abcdef", Changed: true,
			Changes: []config.Change{{Kind: config.Changed, Object: "distribution shop", Fields: []string{"spec.originGroups.web.active: blue -> green"}}},
			Impact: []controller.Impact{{Object: "distribution shop", Kind: config.Changed,
				Nodes: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"}, NodeCount: 25,
				Invalidate: []controller.CacheImpact{{Distribution: "shop", Paths: []string{"/api/*", "/*"}, Why: "origin moved"}},
				Reaches:    []config.Reach{{Object: "distribution blog", Via: []string{"shop.domain"}}},
				Risks:      []string{"origin group shop/web loses its last healthy member"}}}},
			[]string{
				"Plan against revision 3:",
				"~ distribution shop",
				"    spec.originGroups.web.active: blue -> green",
				"  reapplies on 25 node(s): a, b, c, d, e, f, g, h, i, j and 15 more",
				"  cache to invalidate: shop /api/* /*: origin moved",
				"    intercloud invalidate shop '/api/*' '/*'",
				"  reaches distribution blog (imports shop.domain)",
				"  RISK: origin group shop/web loses its last healthy member",
				"1 risk(s) of cutting traffic: read them before applying.",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			printPlan(&b, &tc.res)
			if got := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
