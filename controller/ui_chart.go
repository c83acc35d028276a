package controller

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"time"
)

// Chart geometry, in pixels.
const (
	chartW, chartH = 520, 200
	plotL, plotR   = 56, 12
	plotT, plotB   = 28, 26
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// writeChart draws one chart of the window ending at to as inline SVG, with
// its legend (series name and last value) below it as HTML.
func writeChart(w io.Writer, c Chart, interval time.Duration, to time.Time) {
	from := to.Add(-seriesWindow)
	top := 0.0
	for _, s := range c.Series {
		for _, p := range s.Points {
			top = max(top, p.V)
		}
	}
	top = niceCeil(top)
	if c.Unit == "%" {
		top = 100
	}
	pw, ph := float64(chartW-plotL-plotR), float64(chartH-plotT-plotB)
	x := func(t time.Time) float64 { return plotL + pw*t.Sub(from).Seconds()/seriesWindow.Seconds() }
	y := func(v float64) float64 { return plotT + ph*(1-v/top) }
	fmt.Fprintf(w, `<figure class="chart" id="chart-%s"><svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui,sans-serif" font-size="11">`,
		html.EscapeString(c.ID), chartW, chartH, chartW, chartH)
	fmt.Fprintf(w, `<text x="%d" y="16" font-size="13" font-weight="600" fill="#1f2328">%s</text>`, plotL, html.EscapeString(c.Title))
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e3e6ea"/><text x="%d" y="%.1f" text-anchor="end" fill="#5f6368">%s</text>`,
			plotL, chartW-plotR, y(v), y(v), plotL-6, y(v)+4, fmtValue(v))
	}
	for m := 0; m <= 60; m += 15 {
		t := from.Add(time.Duration(m) * time.Minute)
		label := fmt.Sprintf("-%dm", 60-m)
		if m == 60 {
			label = "now"
		}
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle" fill="#5f6368">%s</text>`, x(t), chartH-8, label)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" fill="#5f6368" transform="rotate(-90 12 %d)">%s</text>`, 12, plotT+int(ph)/2, plotT+int(ph)/2, html.EscapeString(c.Unit))
	if len(c.Series) == 0 {
		fmt.Fprintf(w, `<text class="nodata" x="%.1f" y="%.1f" text-anchor="middle" fill="#5f6368">no data yet</text>`, plotL+pw/2, plotT+ph/2)
	}
	for i, s := range c.Series {
		col := palette[i%len(palette)]
		// A gap of more than two intervals (a node down, no traffic
		// measured) breaks the line.
		var d []byte
		var last time.Time
		var lx, ly float64
		for _, p := range s.Points {
			if p.T.Before(from) {
				continue
			}
			cmd := byte('L')
			if last.IsZero() || p.T.Sub(last) > 2*interval {
				cmd = 'M'
			}
			d = append(d, cmd)
			d = strconv.AppendFloat(d, x(p.T), 'f', 1, 64)
			d = append(d, ',')
			d = strconv.AppendFloat(d, y(p.V), 'f', 1, 64)
			last, lx, ly = p.T, x(p.T), y(p.V)
		}
		if len(d) > 0 {
			// The last value gets a dot: a line a few minutes old is
			// only a few pixels wide on an hour.
			fmt.Fprintf(w, `<path class="series" d="%s" fill="none" stroke="%s" stroke-width="1.8"><title>%s</title></path><circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`,
				d, col, html.EscapeString(s.Name), lx, ly, col)
		}
	}
	fmt.Fprint(w, `</svg><figcaption>`)
	for i, s := range c.Series {
		lastV := "-"
		if n := len(s.Points); n > 0 {
			lastV = fmtValue(s.Points[n-1].V) + " " + c.Unit
		}
		fmt.Fprintf(w, `<span class="legend"><i style="background:%s"></i>%s <b>%s</b></span> `, palette[i%len(palette)], html.EscapeString(s.Name), html.EscapeString(lastV))
	}
	fmt.Fprint(w, `</figcaption></figure>`)
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtValue(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
