// Package svgplot draws line charts as SVG with the standard library only:
// the fault suite's convergence plots (time on x, connected pairs on y,
// one line per implementation or round). It is test infrastructure,
// imported from _test.go files.
//
// A chart has axes with "nice" ticks (1, 2 or 5 times a power of ten), a
// title, axis labels, a legend, and optional vertical marks (an event such
// as "last process started"). A series may be drawn as steps (the value
// holds until the next point: a count that changes at events) or as a
// polyline.
package svgplot

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// XY is one point of a series.
type XY struct{ X, Y float64 }

// Series is one line of the chart.
type Series struct {
	Name   string
	Color  string // any SVG colour; "" picks one from the palette
	Points []XY   // in increasing X
	// Steps draws the value as held until the next point, and on to the
	// end of the x axis after the last.
	Steps bool
	// Dashed draws a dashed line (a reference, a bound).
	Dashed bool
}

// Mark is a vertical line at X with a label.
type Mark struct {
	X     float64
	Label string
}

// Chart is what WriteSVG draws.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
	Marks                 []Mark
	// XMin, XMax, YMin, YMax fix the axes' ranges; where both ends of an
	// axis are zero the range is taken from the data.
	XMin, XMax, YMin, YMax float64
	// Width and Height in pixels; 0 means 800 by 450.
	Width, Height int
}

// Palette is the colours series get in turn when they name none.
var Palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

const (
	marginLeft   = 70
	marginRight  = 20
	marginTop    = 40
	marginBottom = 55
	legendLine   = 18
)

// WriteSVG writes the chart as a standalone SVG document.
func (c Chart) WriteSVG(w io.Writer) error {
	width, height := c.Width, c.Height
	if width <= 0 {
		width = 800
	}
	if height <= 0 {
		height = 450
	}
	xmin, xmax, ymin, ymax := c.XMin, c.XMax, c.YMin, c.YMax
	if xmin == 0 && xmax == 0 {
		xmin, xmax = c.extent(func(p XY) float64 { return p.X }, true)
	}
	if ymin == 0 && ymax == 0 {
		ymin, ymax = c.extent(func(p XY) float64 { return p.Y }, false)
	}
	if !(xmax > xmin) {
		xmax = xmin + 1
	}
	if !(ymax > ymin) {
		ymax = ymin + 1
	}
	xt, yt := ticks(xmin, xmax, 10), ticks(ymin, ymax, 8)
	pw := float64(width - marginLeft - marginRight)
	ph := float64(height - marginTop - marginBottom)
	px := func(x float64) float64 { return marginLeft + (x-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 { return marginTop + ph - (y-ymin)/(ymax-ymin)*ph }

	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", marginLeft, esc(c.Title))
	// Grid and ticks.
	for _, x := range xt {
		X := px(x)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", X, marginTop, X, marginTop+ph)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", X, marginTop+ph+16, num(x))
	}
	for _, y := range yt {
		Y := py(y)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e0e0"/>`+"\n", marginLeft, Y, marginLeft+pw, Y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginLeft-6, Y+4, num(y))
	}
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.1f" height="%.1f" fill="none" stroke="black"/>`+"\n", marginLeft, marginTop, pw, ph)
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", marginLeft+pw/2, height-12, esc(c.XLabel))
	fmt.Fprintf(b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginTop+ph/2, esc(c.YLabel))
	// Clip the data to the plot area.
	fmt.Fprintf(b, `<clipPath id="plot"><rect x="%d" y="%d" width="%.1f" height="%.1f"/></clipPath>`+"\n", marginLeft, marginTop, pw, ph)
	for _, m := range c.Marks {
		X := px(m.X)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="2 3"/>`+"\n", X, marginTop, X, marginTop+ph)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="11" fill="#555">%s</text>`+"\n", X+3, marginTop+12, esc(m.Label))
	}
	var legendW float64
	if len(c.Series) > 0 {
		// Legend box, bottom right inside the plot: convergence lines
		// end at the top.
		lh := float64(len(c.Series))*legendLine + 8
		longest := 0
		for _, s := range c.Series {
			longest = max(longest, len([]rune(s.Name)))
		}
		legendW = 46 + 6.8*float64(longest) // 12 px sans-serif: ~6.8 px a character
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="white" fill-opacity="0.85" stroke="#999"/>`+"\n",
			marginLeft+pw-legendW-10, marginTop+ph-lh-10, legendW, lh)
	}
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = Palette[i%len(Palette)]
		}
		var pts []string
		for k, p := range s.Points {
			if s.Steps && k > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.X), py(s.Points[k-1].Y)))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.X), py(p.Y)))
		}
		if s.Steps && len(s.Points) > 0 {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xmax), py(s.Points[len(s.Points)-1].Y)))
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(b, `<polyline clip-path="url(#plot)" fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		ly := marginTop + ph - 10 - float64(len(c.Series)-i)*legendLine + 4
		lx := marginLeft + pw - legendW - 2
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly+legendLine/2, lx+24, ly+legendLine/2, color, dash)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", lx+30, ly+legendLine/2+4, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	return b.Flush()
}

// extent is the range of one coordinate over all series (from zero for y).
func (c Chart) extent(f func(XY) float64, isX bool) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	if !isX {
		lo = 0
	}
	for _, s := range c.Series {
		for _, p := range s.Points {
			lo, hi = math.Min(lo, f(p)), math.Max(hi, f(p))
		}
	}
	for _, m := range c.Marks {
		if isX {
			lo, hi = math.Min(lo, m.X), math.Max(hi, m.X)
		}
	}
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return 0, 1
	}
	if !isX {
		hi *= 1.05 // room above the top line
	}
	return lo, hi
}

// ticks returns about n round values covering [lo, hi].
func ticks(lo, hi float64, n int) []float64 {
	step := niceStep((hi - lo) / float64(n))
	var out []float64
	first := math.Ceil(lo/step-1e-9) * step
	for k := 0; k < 4*n; k++ {
		v := first + float64(k)*step
		if v > hi+step*1e-9 {
			break
		}
		out = append(out, math.Round(v/step)*step)
	}
	return out
}

// niceStep rounds a raw step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// num formats a tick value without needless digits.
func num(v float64) string {
	if math.Abs(v) < 1e-9 {
		return "0"
	}
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func esc(s string) string { return html.EscapeString(s) }
