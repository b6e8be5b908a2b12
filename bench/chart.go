package bench

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The chart: deposit throughput and p99 latency against the client count,
// the service beside pgbench, in two panels side by side with one legend
// under both. gonum.org/v1/plot lays it out and draws it, once as SVG and
// once as PNG, with the fonts it embeds (nothing to install on the machine).

// The chart's size: 720 x 300 points is 960 x 400 pixels at vgimg's 96 DPI.
const (
	chartW, chartH vg.Length = 720, 300
	titleH         vg.Length = 28 // above the panels, for the chart's title
	legendH        vg.Length = 26 // under the panels, for the legend
)

const chartTitle = "Deposits against clients: the service and pgbench on the same server"

type series struct {
	name  string
	color color.RGBA
	ys    []float64 // one per x; NaN for none
}

type panel struct {
	title string
	unit  string
	xs    []int // the client counts, spaced evenly
	ss    []series
}

var (
	blue   = color.RGBA{0x1f, 0x77, 0xb4, 0xff}
	orange = color.RGBA{0xff, 0x7f, 0x0e, 0xff}
	green  = color.RGBA{0x2c, 0xa0, 0x2c, 0xff}
	grey   = color.RGBA{0xcc, 0xcc, 0xcc, 0xff}
)

func (r *Report) panels() []panel {
	var xs []int
	svc, same, ins := series{name: "service", color: blue}, series{name: "pgbench same SQL", color: orange}, series{name: "pgbench 1-event INSERT", color: green}
	svc99, same99, ins99 := svc, same, ins
	val := func(s Stats, v float64) float64 {
		if s.Skipped != "" || s.OK == 0 {
			return math.NaN()
		}
		return v
	}
	for _, d := range r.Deposits {
		xs = append(xs, d.Clients)
		svc.ys = append(svc.ys, val(d.Service, d.Service.Throughput))
		same.ys = append(same.ys, val(d.PgbenchDeposit, d.PgbenchDeposit.Throughput))
		ins.ys = append(ins.ys, val(d.PgbenchInsert, d.PgbenchInsert.Throughput))
		svc99.ys = append(svc99.ys, val(d.Service, d.Service.P99))
		same99.ys = append(same99.ys, val(d.PgbenchDeposit, d.PgbenchDeposit.P99))
		ins99.ys = append(ins99.ys, val(d.PgbenchInsert, d.PgbenchInsert.P99))
	}
	return []panel{
		{title: "deposits per second", unit: "tx/s", xs: xs, ss: []series{svc, same, ins}},
		{title: "p99 latency", unit: "ms", xs: xs, ss: []series{svc99, same99, ins99}},
	}
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten: the top of a
// panel's y axis, so that it ends on a round figure.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
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

// seriesStyle is how a series looks in its panel and in the legend.
func seriesStyle(s series) (draw.LineStyle, draw.GlyphStyle) {
	return draw.LineStyle{Color: s.color, Width: vg.Points(2)},
		draw.GlyphStyle{Color: s.color, Shape: draw.CircleGlyph{}, Radius: vg.Points(2.5)}
}

// plot builds one panel. The x axis is the index of the client count, so
// the counts are evenly spaced (1, 4, 16, 64 read as a log scale) whatever
// they are; a skipped point (NaN) is left out and the line joins its
// neighbours.
func (p panel) plot() (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.title + " (" + p.unit + ")"
	pl.X.Label.Text = "clients"
	pl.Y.Label.Text = p.unit
	ticks := make(plot.ConstantTicks, len(p.xs))
	for i, x := range p.xs {
		ticks[i] = plot.Tick{Value: float64(i), Label: strconv.Itoa(x)}
	}
	pl.X.Tick.Marker = ticks
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil // horizontal lines only, at the y ticks
	grid.Horizontal = draw.LineStyle{Color: grey, Width: vg.Points(0.5)}
	pl.Add(grid)

	top := 0.0
	for _, s := range p.ss {
		var pts plotter.XYs
		for j, y := range s.ys {
			if !math.IsNaN(y) {
				pts = append(pts, plotter.XY{X: float64(j), Y: y})
				top = max(top, y)
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, dots, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("chart: %s, %s: %w", p.title, s.name, err)
		}
		line.LineStyle, dots.GlyphStyle = seriesStyle(s)
		pl.Add(line, dots)
	}
	// Set after Add, which widens the axes to the data: a margin of a third
	// of a step either side of the first and last client counts, and y from
	// zero so that the panels' heights compare.
	pl.X.Min, pl.X.Max = -0.35, float64(max(len(p.xs)-1, 0))+0.35
	pl.Y.Min, pl.Y.Max = 0, niceMax(top*1.05)
	return pl, nil
}

// drawChart draws the whole chart on c: the title, both panels aligned so
// that their data areas are the same size, and the legend.
func (r *Report) drawChart(c vg.CanvasSizer) error {
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Path())

	ps := r.panels()
	plots := make([]*plot.Plot, len(ps))
	for i, p := range ps {
		var err error
		if plots[i], err = p.plot(); err != nil {
			return err
		}
	}

	title := text.Style{Color: color.Black, Font: font.From(plot.DefaultFont, 14), XAlign: draw.XCenter, YAlign: draw.YTop,
		Handler: plot.DefaultTextHandler}
	dc.FillText(title, vg.Point{X: dc.Center().X, Y: dc.Max.Y - 8}, chartTitle)

	body := draw.Crop(dc, 0, 0, legendH, -titleH)
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: 30, PadLeft: 8, PadRight: 12}
	for i, cv := range plot.Align([][]*plot.Plot{plots}, tiles, body)[0] {
		plots[i].Draw(cv)
	}

	// One legend under both panels, its entries side by side (a
	// plot.Legend stacks its entries, so each gets a legend of its own).
	strip := draw.Crop(dc, 0, 0, 0, legendH-(dc.Max.Y-dc.Min.Y))
	entries := ps[0].ss
	cols := draw.Tiles{Rows: 1, Cols: len(entries), PadLeft: 70, PadRight: 150}
	for i, s := range entries {
		ls, gs := seriesStyle(s)
		l := plot.NewLegend()
		l.Left, l.Top = true, true
		l.Add(s.name, &plotter.Line{LineStyle: ls}, &plotter.Scatter{GlyphStyle: gs})
		l.Draw(cols.At(strip, i, 0))
	}
	return nil
}

// ChartSVG renders the chart as SVG.
func (r *Report) ChartSVG() ([]byte, error) {
	c := vgsvg.New(chartW, chartH)
	if err := r.drawChart(c); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return nil, err
	}
	// vgsvg starts with an XML declaration and a comment; both are optional
	// in a UTF-8 SVG file. Without them the file starts with its <svg>
	// element and can be pasted into HTML as it is.
	out := b.Bytes()
	if i := bytes.Index(out, []byte("<svg")); i > 0 {
		out = out[i:]
	}
	return out, nil
}

// ChartPNG renders the chart as PNG.
func (r *Report) ChartPNG() ([]byte, error) {
	c := vgimg.New(chartW, chartH)
	if err := r.drawChart(c); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
