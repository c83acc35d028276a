package topology

import (
	"fmt"
	"html"
	"io"
	"strings"
	"time"
)

// Layout, in pixels. The drawing is computed, never measured: the same
// graph always gives the same bytes.
const (
	margin     = 40
	nodeW      = 220
	nodeH      = 62
	nodeGap    = 14
	cloudPad   = 14
	cloudHead  = 34
	cloudFoot  = 24
	cloudGap   = 90
	linkLevel  = 26 // vertical distance between the horizontal runs of links
	extW       = 250
	extH       = 44
	sectionGap = 50
	distW      = 220
	behW       = 200
	origW      = 280
	rowH       = 50
	colGap     = 90
)

// Colours by meaning.
const (
	colUp      = "#1b7f3b"
	colDown    = "#c62828"
	colUnknown = "#8a8a8a"
	colWarn    = "#b26a00"
	colCanary  = "#b26a00"
	colText    = "#1f2328"
	colMuted   = "#5f6368"
)

type box struct{ x, y, w, h int }

func (b box) cx() int { return b.x + b.w/2 }

// layout places every element of g.
type layout struct {
	g       *Graph
	clouds  []box
	nodes   map[string]box
	slots   map[string]int // links already anchored on a node's top edge
	top     int            // y of the clouds' top edge
	bottom  int            // y below the clouds and external neighbors
	width   int
	height  int
	extBox  []box
	distTop int
}

func newLayout(g *Graph) *layout {
	l := &layout{g: g, nodes: map[string]box{}, slots: map[string]int{}}
	// Room above the clouds for the links' horizontal runs.
	l.top = margin + 30 + linkLevel*len(g.Links)
	x := margin
	maxH := 0
	for _, c := range g.Clouds {
		h := cloudHead + cloudFoot + cloudPad + len(c.Nodes)*(nodeH+nodeGap)
		if len(c.Nodes) == 0 {
			h += nodeH / 2
		}
		b := box{x, l.top, nodeW + 2*cloudPad, h}
		l.clouds = append(l.clouds, b)
		for i, n := range c.Nodes {
			l.nodes[n.Name] = box{x + cloudPad, l.top + cloudHead + i*(nodeH+nodeGap), nodeW, nodeH}
		}
		maxH = max(maxH, h)
		x += b.w + cloudGap
	}
	l.width = max(x-cloudGap+margin, 2*margin+distW+behW+origW+2*colGap)
	y := l.top + maxH + 30
	// External neighbors sit in a row below the clouds.
	ex := margin
	for range g.External {
		l.extBox = append(l.extBox, box{ex, y, extW, extH})
		ex += extW + 30
	}
	if len(g.External) > 0 {
		l.width = max(l.width, ex-30+margin)
		y += extH + 20
	}
	l.bottom = y
	l.distTop = y + sectionGap
	y = l.distTop + 24
	for _, d := range g.Distributions {
		y += distRows(d)*rowH + 30
	}
	l.height = y + margin/2
	return l
}

func distRows(d Distribution) int { return max(1, len(d.Behaviors), len(d.Origins)) }

// SVG writes the graph as a standalone SVG document (also valid inline in
// HTML). Element ids: cloud-NAME, node-NAME, link-NAME,
// ext-NODE-NAME, dist-NAME, behavior-DIST-INDEX, origin-DIST-NAME.
func SVG(w io.Writer, g *Graph) error {
	l := newLayout(g)
	s := &svgWriter{}
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" class="topology" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui,sans-serif" font-size="13">`+"\n",
		l.width, l.height, l.width, l.height)
	s.f(`<title>%s</title>`+"\n", esc(title(g)))
	s.f(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker></defs>`+"\n", colMuted)
	s.f(`<text x="%d" y="%d" font-size="16" font-weight="600" fill="%s">%s</text>`+"\n", margin, margin, colText, esc(title(g)))
	for i, c := range g.Clouds {
		l.drawCloud(s, c, l.clouds[i])
	}
	for i, lk := range g.Links {
		l.drawLink(s, lk, i)
	}
	for i, e := range g.External {
		l.drawExternal(s, e, l.extBox[i], i)
	}
	l.drawDistributions(s)
	s.f("</svg>\n")
	_, err := io.WriteString(w, s.String())
	return err
}

func title(g *Graph) string {
	if g.Revision == 0 {
		return fmt.Sprintf("site %s · nothing applied yet", orDash(g.Site))
	}
	return fmt.Sprintf("site %s · revision %d · %s", g.Site, g.Revision, g.At.UTC().Format(time.DateTime+" MST"))
}

type svgWriter struct{ strings.Builder }

func (s *svgWriter) f(format string, a ...any) { fmt.Fprintf(&s.Builder, format, a...) }

func esc(s string) string { return html.EscapeString(s) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (l *layout) drawCloud(s *svgWriter, c Cloud, b box) {
	name := c.Name
	if name == "" {
		name = "not in the site"
	}
	s.f(`<g id="cloud-%s" class="cloud">`, esc(c.Name))
	s.f(`<rect x="%d" y="%d" width="%d" height="%d" rx="10" fill="#f3f6fa" stroke="#9aa7b8"/>`, b.x, b.y, b.w, b.h)
	s.f(`<text x="%d" y="%d" font-weight="600" fill="%s">%s</text>`, b.x+cloudPad, b.y+22, colText, esc(name))
	var foot []string
	if c.ASN != 0 {
		foot = append(foot, fmt.Sprintf("AS%d", c.ASN))
	}
	foot = append(foot, c.CIDRs...)
	s.f(`<text x="%d" y="%d" font-size="11" fill="%s">%s</text>`, b.x+cloudPad, b.y+b.h-9, colMuted, esc(strings.Join(foot, " · ")))
	s.f("</g>\n")
	for _, n := range c.Nodes {
		drawNode(s, n, l.nodes[n.Name])
	}
}

func drawNode(s *svgWriter, n Node, b box) {
	stroke, fill := colUp, "#ffffff"
	switch {
	case !n.Live:
		stroke, fill = colDown, "#fdecea"
	case !n.Healthy:
		stroke = colWarn
	}
	s.f(`<g id="node-%s" class="node %s" data-state="%s">`, esc(n.Name), esc(strings.Join(n.Roles, " ")), esc(n.State))
	s.f(`<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s" stroke="%s" stroke-width="1.5"/>`, b.x, b.y, b.w, b.h, fill, stroke)
	s.f(`<text x="%d" y="%d" font-weight="600" fill="%s">%s</text>`, b.x+10, b.y+19, colText, esc(n.Name))
	// Badges from the right edge leftwards.
	bx := b.x + b.w - 8
	badge := func(text, col, class string) {
		w := 7*len(text) + 10
		bx -= w
		s.f(`<g class="badge %s"><rect x="%d" y="%d" width="%d" height="16" rx="8" fill="%s"/><text x="%d" y="%d" font-size="10" fill="#fff" text-anchor="middle">%s</text></g>`,
			class, bx, b.y+6, w, col, bx+w/2, b.y+18, esc(text))
		bx -= 4
	}
	if !n.Live {
		badge("down", colDown, "down")
	}
	if n.Drifted {
		text := "drifted"
		if n.DriftedResources > 0 {
			text = fmt.Sprintf("drifted: %d", n.DriftedResources)
		}
		badge(text, colWarn, "drifted")
	}
	s.f(`<text x="%d" y="%d" font-size="11" fill="%s">%s</text>`, b.x+10, b.y+36, colMuted, esc(strings.Join(n.Roles, " · ")))
	s.f(`<text x="%d" y="%d" font-size="11" fill="%s" class="detail">%s</text>`, b.x+10, b.y+53, colText, esc(n.detail()))
	if n.Message != "" {
		s.f(`<title>%s</title>`, esc(n.Message))
	}
	s.f("</g>\n")
}

func stateColour(state string) string {
	switch state {
	case Up, "established":
		return colUp
	case Down:
		return colDown
	}
	return colUnknown
}

// drawLink runs a link from the top edge of one gateway, up to its own
// level above the clouds, across, and down to the other gateway. Each
// link has its level and each node end its slot, so no two overlap.
func (l *layout) drawLink(s *svgWriter, lk Link, i int) {
	a, okA := l.nodes[lk.A]
	b, okB := l.nodes[lk.B]
	if !okA || !okB {
		return
	}
	ax := a.x + a.w - 20 - 14*l.slots[lk.A]
	bx := b.x + b.w - 20 - 14*l.slots[lk.B]
	l.slots[lk.A]++
	l.slots[lk.B]++
	y := l.top - 16 - linkLevel*i
	col := stateColour(lk.State)
	width := 2.0
	if lk.Carrying {
		width = 4
	}
	dash := ""
	if lk.Kind == "vpn" {
		dash = ` stroke-dasharray="7 5"`
	}
	s.f(`<g id="link-%s" class="link %s %s" data-state="%s">`, esc(lk.Name), esc(lk.Kind), esc(lk.State), esc(lk.State))
	s.f(`<path d="M%d,%d V%d H%d V%d" fill="none" stroke="%s" stroke-width="%g"%s/>`, ax, a.y, y, bx, b.y, col, width, dash)
	label := fmt.Sprintf("%s · %s · BGP %s", lk.Name, lk.Kind, orDash(lk.Session))
	if lk.Carrying {
		label += " · carries traffic"
	}
	if lk.Kind == "vpn" {
		label += " · " + handshake(lk, l.g.At)
	}
	s.f(`<text x="%d" y="%d" font-size="11" fill="%s">%s</text>`, min(ax, bx)+6, y-5, col, esc(label))
	s.f("</g>\n")
}

func handshake(lk Link, at time.Time) string {
	switch {
	case lk.LastHandshake.IsZero():
		return "no handshake"
	case !lk.TunnelUp:
		return "tunnel down, handshake " + ago(lk.LastHandshake, at)
	}
	return "handshake " + ago(lk.LastHandshake, at)
}

func ago(t, at time.Time) string {
	d := at.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func (l *layout) drawExternal(s *svgWriter, e External, b box, i int) {
	col := stateColour(e.State)
	s.f(`<g id="ext-%s-%s" class="external" data-state="%s">`, esc(e.Node), esc(e.Name), esc(e.State))
	s.f(`<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#fff" stroke="%s" stroke-dasharray="3 3"/>`, b.x, b.y, b.w, b.h, col)
	s.f(`<text x="%d" y="%d" font-weight="600" fill="%s">%s</text>`, b.x+10, b.y+18, colText, esc(e.Name))
	s.f(`<text x="%d" y="%d" font-size="11" fill="%s">%s · BGP %s · %d accepted</text>`, b.x+10, b.y+35, colMuted, esc(e.Peer), esc(e.State), e.Accepted)
	if n, ok := l.nodes[e.Node]; ok {
		// Down the gap left of the gateway's cloud, then across.
		gx := n.x - cloudPad - 12 - 6*(i%8)
		s.f(`<path d="M%d,%d H%d V%d H%d V%d" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="3 3"/>`,
			n.x, n.y+n.h/2, gx, b.y-10, b.cx(), b.y, col)
	}
	s.f("</g>\n")
}

func (l *layout) drawDistributions(s *svgWriter) {
	y := l.distTop
	if len(l.g.Distributions) == 0 {
		s.f(`<text x="%d" y="%d" fill="%s">no distributions</text>`+"\n", margin, y+16, colMuted)
		return
	}
	xd, xb, xo := margin, margin+distW+colGap, margin+distW+behW+2*colGap
	s.f(`<text x="%d" y="%d" font-weight="600" fill="%s">distributions</text><text x="%d" y="%d" font-weight="600" fill="%s">behaviors</text><text x="%d" y="%d" font-weight="600" fill="%s">origins</text>`+"\n",
		xd, y+12, colMuted, xb, y+12, colMuted, xo, y+12, colMuted)
	y += 24
	bh := rowH - 12
	for _, d := range l.g.Distributions {
		rows := distRows(d)
		db := box{xd, y + (rows*rowH-12-bh)/2, distW, bh}
		s.f(`<g id="dist-%s" class="distribution">`, esc(d.Name))
		stroke := "#4a6fa5"
		if d.Disabled {
			stroke = colUnknown
		}
		s.f(`<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#eef3fb" stroke="%s"/>`, db.x, db.y, db.w, db.h, stroke)
		s.f(`<text x="%d" y="%d" font-weight="600" fill="%s">%s</text>`, db.x+10, db.y+16, colText, esc(d.Name))
		dom := d.Domain
		if d.Disabled {
			dom += " (disabled)"
		}
		s.f(`<text x="%d" y="%d" font-size="11" fill="%s">%s</text>`, db.x+10, db.y+31, colMuted, esc(dom))
		s.f("</g>\n")
		origins := map[string]box{}
		for i, o := range d.Origins {
			ob := box{xo, y + i*rowH, origW, bh}
			origins[o.Name] = ob
			col := colUnknown
			switch o.Health {
			case "healthy":
				col = colUp
			case "unhealthy":
				col = colDown
			}
			s.f(`<g id="origin-%s-%s" class="origin %s">`, esc(d.Name), esc(o.Name), esc(o.Health))
			s.f(`<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#fff" stroke="%s" stroke-width="1.5"/>`, ob.x, ob.y, ob.w, ob.h, col)
			s.f(`<text x="%d" y="%d" font-weight="600" fill="%s">%s <tspan font-weight="400" font-size="11" fill="%s">%s</tspan></text>`, ob.x+10, ob.y+16, colText, esc(o.Name), col, esc(strings.Join(append([]string{o.Health}, o.Groups...), " · ")))
			s.f(`<text x="%d" y="%d" font-size="11" fill="%s">%s</text>`, ob.x+10, ob.y+31, colMuted, esc(o.URL))
			if o.Reason != "" {
				s.f(`<title>%s</title>`, esc(o.Reason))
			}
			s.f("</g>\n")
		}
		for i, b := range d.Behaviors {
			bb := box{xb, y + i*rowH, behW, bh}
			s.f(`<g id="behavior-%s-%d" class="behavior">`, esc(d.Name), i)
			s.f(`<path d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" stroke="%s" stroke-width="1.5" marker-end="url(#arrow)"/>`,
				db.x+db.w, db.y+db.h/2, db.x+db.w+colGap/2, db.y+db.h/2, bb.x-colGap/2, bb.y+bh/2, bb.x, bb.y+bh/2, colMuted)
			s.f(`<rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#fff" stroke="#4a6fa5"/>`, bb.x, bb.y, bb.w, bb.h)
			cache := "cached"
			if !b.Cached {
				cache = "not cached"
			}
			s.f(`<text x="%d" y="%d" font-weight="600" fill="%s">%s</text>`, bb.x+10, bb.y+16, colText, esc(b.Path))
			s.f(`<text x="%d" y="%d" font-size="11" fill="%s">→ %s · %s</text>`, bb.x+10, bb.y+31, colMuted, esc(b.Target), cache)
			for _, r := range b.Routes {
				ob, ok := origins[r.Origin]
				if !ok {
					continue
				}
				col, dash, label := colUp, "", r.Use
				switch r.Use {
				case "canary":
					col, label = colCanary, fmt.Sprintf("canary %d%%", r.Weight)
				case "standby":
					col, dash = colUnknown, ` stroke-dasharray="4 4"`
				}
				x1, y1, x2, y2 := bb.x+bb.w, bb.y+bh/2, ob.x, ob.y+bh/2
				s.f(`<path class="route %s" d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" stroke="%s" stroke-width="1.5"%s marker-end="url(#arrow)"><title>%s</title></path>`,
					esc(r.Use), x1, y1, x1+colGap/2, y1, x2-colGap/2, y2, x2, y2, col, dash, esc(b.Path+" → "+r.Origin+": "+label))
			}
			s.f("</g>\n")
		}
		y += rows*rowH + 30
	}
}
