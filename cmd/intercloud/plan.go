package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/controller"
)

// printPlan writes a plan for people: each change with its fields, then
// what it touches, then the risks of cutting traffic.
func printPlan(w io.Writer, res *controller.ApplyResult) {
	if !res.Changed {
		fmt.Fprintf(w, "No changes: revision %d already has hash %.12s.\n", res.Revision, res.Hash)
		return
	}
	fmt.Fprintf(w, "Plan against revision %d:\n", res.Revision)
	impact := map[string]*controller.Impact{}
	for i := range res.Impact {
		impact[res.Impact[i].Object] = &res.Impact[i]
	}
	risks := 0
	for _, c := range res.Changes {
		config.FormatDiff(w, []config.Change{c})
		im := impact[c.Object]
		if im == nil {
			continue
		}
		if len(im.Imports) > 0 {
			fmt.Fprintf(w, "  re-rendered: imports %s, which changed\n", strings.Join(im.Imports, ", "))
		}
		if im.NodeCount > 0 {
			fmt.Fprintf(w, "  reapplies on %d node(s): %s\n", im.NodeCount, list(im.Nodes, im.NodeCount, 10))
		}
		for _, d := range im.DNS {
			fmt.Fprintf(w, "  dns: %s\n", d)
		}
		for _, ci := range im.Unreachable {
			fmt.Fprintf(w, "  cache unreachable: %s %s: %s\n", ci.Distribution, strings.Join(ci.Paths, " "), ci.Why)
		}
		for _, ci := range im.Invalidate {
			fmt.Fprintf(w, "  cache to invalidate: %s %s: %s\n    intercloud invalidate %s '%s'\n", ci.Distribution, strings.Join(ci.Paths, " "), ci.Why, ci.Distribution, strings.Join(ci.Paths, "' '"))
		}
		for _, b := range im.BGP {
			fmt.Fprintf(w, "  bgp: %s\n", b)
		}
		for _, r := range im.Reaches {
			fmt.Fprintf(w, "  reaches %s (imports %s)\n", r.Object, strings.Join(r.Via, ", "))
		}
		for _, r := range im.Risks {
			fmt.Fprintf(w, "  RISK: %s\n", r)
			risks++
		}
	}
	if risks > 0 {
		fmt.Fprintf(w, "%d risk(s) of cutting traffic: read them before applying.\n", risks)
	}
}

// list joins names, at most n of them, and counts the rest of total.
func list(names []string, total, n int) string {
	names = names[:min(n, len(names))]
	if total <= len(names) {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names, ", "), total-len(names))
}
