package topology

import (
	"fmt"
	"io"
	"strings"
)

// DOT writes the graph in Graphviz's language (`dot -Tsvg` lays it out):
// a cluster per cloud, links as undirected edges, and the distributions'
// behaviors and origins as a left-to-right flow.
func DOT(w io.Writer, g *Graph) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("digraph intercloud {\n")
	p("  label=%s;\n  labelloc=t;\n  rankdir=LR;\n  fontname=\"sans-serif\";\n", q(title(g)))
	p("  node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"sans-serif\", fontsize=11];\n")
	p("  edge [fontname=\"sans-serif\", fontsize=10];\n")
	for i, c := range g.Clouds {
		name := c.Name
		if name == "" {
			name = "not in the site"
		}
		label := name
		if c.ASN != 0 {
			label += fmt.Sprintf("\nAS%d", c.ASN)
		}
		if len(c.CIDRs) > 0 {
			label += "\n" + strings.Join(c.CIDRs, ", ")
		}
		p("  subgraph cluster_%d {\n    label=%s;\n    style=\"rounded,filled\";\n    fillcolor=\"#f3f6fa\";\n    color=\"#9aa7b8\";\n", i, q(label))
		for _, n := range c.Nodes {
			col, fill := colUp, "white"
			switch {
			case !n.Live:
				col, fill = colDown, "#fdecea"
			case !n.Healthy:
				col = colWarn
			}
			lines := []string{n.Name, strings.Join(n.Roles, " · ")}
			if n.Live {
				lines = append(lines, n.detail())
			} else {
				lines = append(lines, "DOWN: "+n.detail())
			}
			if n.Drifted {
				if n.DriftedResources > 0 {
					lines = append(lines, fmt.Sprintf("DRIFTED: %d resources", n.DriftedResources))
				} else {
					lines = append(lines, "DRIFTED")
				}
			}
			p("    %s [label=%s, color=%q, fillcolor=%q];\n", q("node:"+n.Name), q(strings.Join(lines, "\n")), col, fill)
		}
		p("  }\n")
	}
	for _, l := range g.Links {
		style := "solid"
		if l.Kind == "vpn" {
			style = "dashed"
		}
		width := 1.5
		label := fmt.Sprintf("%s (%s)\nBGP %s", l.Name, l.Kind, orDash(l.Session))
		if l.Carrying {
			width = 3
			label += "\ncarries traffic"
		}
		if l.Kind == "vpn" {
			label += "\n" + handshake(l, g.At)
		}
		p("  %s -> %s [dir=none, style=%s, penwidth=%g, color=%q, fontcolor=%q, label=%s];\n",
			q("node:"+l.A), q("node:"+l.B), style, width, stateColour(l.State), stateColour(l.State), q(label))
	}
	for _, e := range g.External {
		id := q("ext:" + e.Node + ":" + e.Name)
		p("  %s [label=%s, style=dashed, color=%q];\n", id, q(e.Name+"\n"+e.Peer), stateColour(e.State))
		p("  %s -> %s [dir=none, style=dotted, color=%q, label=%s];\n", q("node:"+e.Node), id, stateColour(e.State),
			q(fmt.Sprintf("BGP %s\n%d accepted", e.State, e.Accepted)))
	}
	for _, d := range g.Distributions {
		did := q("dist:" + d.Name)
		label := d.Name + "\n" + d.Domain
		if d.Disabled {
			label += "\n(disabled)"
		}
		p("  %s [label=%s, fillcolor=\"#eef3fb\", color=\"#4a6fa5\"];\n", did, q(label))
		for _, o := range d.Origins {
			col := colUnknown
			switch o.Health {
			case "healthy":
				col = colUp
			case "unhealthy":
				col = colDown
			}
			p("  %s [label=%s, color=%q];\n", q("origin:"+d.Name+":"+o.Name), q(strings.Join(append([]string{o.Name + " (" + o.Health + ")"}, o.Groups...), "\n")+"\n"+o.URL), col)
		}
		for i, bh := range d.Behaviors {
			bid := q(fmt.Sprintf("behavior:%s:%d", d.Name, i))
			cache := "cached"
			if !bh.Cached {
				cache = "not cached"
			}
			p("  %s [label=%s, color=\"#4a6fa5\"];\n", bid, q(bh.Path+"\n→ "+bh.Target+" · "+cache))
			p("  %s -> %s;\n", did, bid)
			for _, r := range bh.Routes {
				col, style, label := colUp, "solid", r.Use
				switch r.Use {
				case "canary":
					col, label = colCanary, fmt.Sprintf("canary %d%%", r.Weight)
				case "standby":
					col, style = colUnknown, "dashed"
				}
				p("  %s -> %s [color=%q, style=%s, label=%s];\n", bid, q("origin:"+d.Name+":"+r.Origin), col, style, q(label))
			}
		}
	}
	p("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// q quotes a DOT ID: backslashes and quotes escaped, newlines as \n.
func q(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
