package soak

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// bucket is one second of a phase: HTTP and DNS answers and failures,
// and the worst HTTP p99 of the slices that ended in it.
type bucket struct {
	ok, failed       int64
	dnsOK, dnsFailed int64
	p99              float64
}

// seconds spreads the HTTP slices of a phase over one-second buckets (a
// slice's counts go to the second it ended in).
func (p *Phase) seconds() []bucket {
	n := int(math.Ceil(p.End.Sub(p.Start).Seconds())) + 1
	if n < 1 {
		n = 1
	}
	bs := make([]bucket, n)
	for _, s := range p.HTTP {
		i := int(s.End.Sub(p.Start).Seconds())
		if i < 0 || i >= n {
			continue
		}
		bs[i].ok += s.OK
		bs[i].failed += s.Failed
		if len(s.Pct) >= 99 {
			bs[i].p99 = math.Max(bs[i].p99, s.Pct[98])
		}
	}
	for _, s := range p.DNS {
		if i := int(s.End.Sub(p.Start).Seconds()); i >= 0 && i < n {
			bs[i].dnsOK += s.OK
			bs[i].dnsFailed += s.Failed
		}
	}
	return bs
}

// Plot draws the timeline of a phase to a PNG: the fault windows as
// shaded bands with their kinds, under them the HTTP error rate and the
// p99 latency, second by second.
func (r *Recording) Plot(p *Phase, path string) error {
	bs := p.seconds()
	var errPts, dnsPts, latPts plotter.XYs
	maxErr, maxLat := 1.0, 1.0
	for i, b := range bs {
		if b.ok+b.failed > 0 {
			e := 100 * float64(b.failed) / float64(b.ok+b.failed)
			errPts = append(errPts, plotter.XY{X: float64(i), Y: e})
			maxErr = math.Max(maxErr, e)
		}
		if b.dnsOK+b.dnsFailed > 0 {
			e := 100 * float64(b.dnsFailed) / float64(b.dnsOK+b.dnsFailed)
			dnsPts = append(dnsPts, plotter.XY{X: float64(i), Y: e})
			maxErr = math.Max(maxErr, e)
		}
		if b.p99 > 0 {
			latPts = append(latPts, plotter.XY{X: float64(i), Y: b.p99})
			maxLat = math.Max(maxLat, b.p99)
		}
	}
	errPlot, err := r.panel(p, "error rate (%)", []series{{"HTTP", errPts, color.NRGBA{R: 200, A: 255}}, {"DNS", dnsPts, color.NRGBA{G: 140, A: 255}}}, maxErr, true)
	if err != nil {
		return err
	}
	latPlot, err := r.panel(p, "HTTP p99 latency (ms)", []series{{"HTTP p99", latPts, color.NRGBA{B: 180, A: 255}}}, maxLat, false)
	if err != nil {
		return err
	}
	errPlot.Title.Text = fmt.Sprintf("soak %s: seed %d, %s", p.Name, r.Seed, r.Duration)
	latPlot.X.Label.Text = "seconds since the load began"

	const w, h = 30 * vg.Centimeter, 18 * vg.Centimeter
	img := vgimg.New(w, h)
	dc := draw.New(img)
	t := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadX: vg.Millimeter, PadY: 2 * vg.Millimeter}
	plots := [][]*plot.Plot{{errPlot}, {latPlot}}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("soak: plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("soak: plot %s: %w", path, err)
	}
	return f.Close()
}

// faultColors gives each fault kind its shade, the same in both panels.
var faultColors = []color.NRGBA{
	{R: 255, G: 170, B: 0, A: 70}, {R: 0, G: 170, B: 255, A: 70}, {R: 120, G: 200, B: 0, A: 70},
	{R: 200, G: 0, B: 200, A: 70}, {R: 255, G: 60, B: 60, A: 70}, {R: 100, G: 100, B: 100, A: 70},
}

// series is one line of a panel.
type series struct {
	name string
	pts  plotter.XYs
	c    color.Color
}

func (r *Recording) panel(p *Phase, ylabel string, lines []series, ymax float64, labels bool) (*plot.Plot, error) {
	pl := plot.New()
	pl.Y.Label.Text = ylabel
	pl.X.Min, pl.X.Max = 0, p.End.Sub(p.Start).Seconds()
	pl.Y.Min, pl.Y.Max = 0, ymax*1.15
	kinds := map[string]int{}
	var names []string
	for _, f := range p.Faults {
		if _, ok := kinds[f.Kind]; !ok {
			kinds[f.Kind] = len(kinds)
			names = append(names, f.Kind)
		}
	}
	sort.Strings(names)
	var lbl plotter.XYLabels
	for _, f := range p.Faults {
		s, e := f.Window(r.Slack)
		x0, x1 := s.Sub(p.Start).Seconds(), e.Sub(p.Start).Seconds()
		poly, err := plotter.NewPolygon(plotter.XYs{{X: x0, Y: 0}, {X: x1, Y: 0}, {X: x1, Y: ymax * 1.15}, {X: x0, Y: ymax * 1.15}})
		if err != nil {
			return nil, fmt.Errorf("soak: plot: %w", err)
		}
		poly.Color = faultColors[kinds[f.Kind]%len(faultColors)]
		poly.LineStyle.Width = 0
		poly.LineStyle.Color = color.Transparent
		pl.Add(poly)
		lbl.XYs = append(lbl.XYs, plotter.XY{X: x0, Y: ymax * (1.02 + 0.04*float64(len(lbl.XYs)%3))})
		lbl.Labels = append(lbl.Labels, f.Kind)
	}
	for _, l := range lines {
		if len(l.pts) == 0 {
			continue
		}
		line, err := plotter.NewLine(l.pts)
		if err != nil {
			return nil, fmt.Errorf("soak: plot: %w", err)
		}
		line.Color = l.c
		pl.Add(line)
		pl.Legend.Add(l.name, line)
	}
	pl.Legend.Top = true
	if labels && len(lbl.XYs) > 0 {
		l, err := plotter.NewLabels(lbl)
		if err != nil {
			return nil, fmt.Errorf("soak: plot: %w", err)
		}
		for i := range l.TextStyle {
			l.TextStyle[i].Font.Size = vg.Points(7)
		}
		pl.Add(l)
	}
	return pl, nil
}
