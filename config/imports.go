package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The import graph: every stack and distribution is a vertex, every
// ${stack.NAME.outputs.KEY} an edge from the importer to NAME. Rendering
// walks it exporters first, so each import reads a rendered output.

// importEdge is one import as written.
type importEdge struct {
	from, to string
	ref      importRef
	doc      *document
	node     *yaml.Node
	path     string
}

// importOrder returns the stacks and distributions exporters first (by
// depth in the graph, then by name), and reports every import cycle at the position of each import
// that closes it. Documents in or behind a cycle are left out of the
// order: they cannot be rendered until it is broken.
func (b *Bundle) importOrder(errs *ErrorList) []*document {
	docs := make(map[string]*document, len(b.stacks)+len(b.dists))
	var names []string
	for _, list := range [][]*document{b.stacks, b.dists} {
		for _, d := range list {
			docs[d.name] = d
			names = append(names, d.name)
		}
	}
	slices.Sort(names)
	edges := map[string][]importEdge{} // importer -> its imports of known documents
	for _, n := range names {
		d := docs[n]
		for _, e := range scanImports(d) {
			if docs[e.to] != nil {
				edges[n] = append(edges[n], e)
			}
		}
	}
	if len(edges) == 0 {
		out := make([]*document, 0, len(names))
		for _, n := range names {
			out = append(out, docs[n])
		}
		return out
	}
	// Kahn's algorithm over "exporter before importer".
	pending := map[string]int{} // importer -> exporters not yet ordered
	importers := map[string][]string{}
	for _, n := range names {
		seen := map[string]bool{}
		for _, e := range edges[n] {
			if !seen[e.to] {
				seen[e.to] = true
				pending[n]++
				importers[e.to] = append(importers[e.to], n)
			}
		}
	}
	// Level by level, each level in name order: deterministic, and
	// O(n log n) where a queue kept sorted would be O(n²) for a site whose
	// thousands of distributions import one stack.
	var level, order []string
	for _, n := range names {
		if pending[n] == 0 {
			level = append(level, n)
		}
	}
	for len(level) > 0 {
		order = append(order, level...)
		var next []string
		for _, n := range level {
			for _, m := range importers[n] {
				if pending[m]--; pending[m] == 0 {
					next = append(next, m)
				}
			}
		}
		slices.Sort(next)
		level = next
	}
	out := make([]*document, 0, len(order))
	for _, n := range order {
		out = append(out, docs[n])
	}
	if len(order) < len(names) {
		reportCycles(names, pending, edges, errs)
	}
	return out
}

// reportCycles finds the cycles among the documents Kahn's algorithm could
// not order and reports each import on each cycle once.
func reportCycles(names []string, pending map[string]int, edges map[string][]importEdge, errs *ErrorList) {
	left := map[string]bool{}
	for _, n := range names {
		if pending[n] > 0 {
			left[n] = true
		}
	}
	done := map[string]bool{}
	for _, start := range names {
		if !left[start] || done[start] {
			continue
		}
		// Walk from start until a document repeats: from there on the
		// path is a cycle (every document left imports one left).
		var path []importEdge
		at := map[string]int{start: 0}
		cur := start
		for {
			var next *importEdge
			for i := range edges[cur] {
				if e := &edges[cur][i]; left[e.to] && !done[e.to] {
					next = e
					break
				}
			}
			if next == nil {
				break // behind a cycle reported already
			}
			path = append(path, *next)
			if i, ok := at[next.to]; ok {
				cycle := path[i:]
				desc := make([]string, 0, len(cycle)+1)
				for _, e := range cycle {
					desc = append(desc, e.from)
				}
				desc = append(desc, cycle[0].from)
				for _, e := range cycle {
					*errs = append(*errs, docErr(e.doc, e.node, e.path, "imports %s, which closes an import cycle: %s", e.ref, strings.Join(desc, " -> ")))
					done[e.from] = true
				}
				break
			}
			at[next.to] = len(path)
			cur = next.to
		}
		done[start] = true
	}
}

// scanImports lists a document's imports of other stacks, with the
// position of each.
func scanImports(d *document) []importEdge {
	var out []importEdge
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], join(path, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			for _, name := range references(n.Value) {
				if r, ok, err := parseImport(name); ok && err == nil {
					out = append(out, importEdge{from: d.name, to: r.stack, ref: r, doc: d, node: n, path: path})
				}
			}
		}
	}
	for i := 0; i+1 < len(d.root.Content); i += 2 {
		if k := d.root.Content[i].Value; k == "spec" || k == "outputs" {
			walk(d.root.Content[i+1], k)
		}
	}
	return out
}
