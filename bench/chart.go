package bench

import (
	"bytes"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"strings"
)

// The chart: deposit throughput and p99 latency against the client count,
// the service beside pgbench. Drawn by hand, once as SVG and once as PNG
// (standard library only, with a small built-in pixel font).

const (
	chartW, chartH = 960, 400
	panelW         = 440
	marginL        = 70
	marginT        = 40
	plotW, plotH   = panelW - marginL - 20, chartH - marginT - 90
)

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
	black  = color.RGBA{0x22, 0x22, 0x22, 0xff}
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

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
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

// canvas is what the chart is drawn on.
type canvas interface {
	line(x1, y1, x2, y2 float64, c color.RGBA, width float64)
	dot(x, y float64, c color.RGBA)
	// text at (x, y) as its baseline; anchor is "start", "middle" or "end".
	text(x, y float64, s, anchor string, c color.RGBA, size float64)
}

func (r *Report) draw(cv canvas) {
	cv.text(chartW/2, 22, "Deposits against clients: the service and pgbench on the same server", "middle", black, 14)
	for i, p := range r.panels() {
		ox := float64(i*(panelW+40)) + marginL
		oy := float64(marginT)
		top := 0.0
		for _, s := range p.ss {
			for _, y := range s.ys {
				if !math.IsNaN(y) {
					top = max(top, y)
				}
			}
		}
		top = niceMax(top * 1.05)
		cv.text(ox+plotW/2, oy-6, p.title+" ("+p.unit+")", "middle", black, 12)
		// Grid and y labels.
		for k := 0; k <= 5; k++ {
			y := oy + plotH - float64(k)*plotH/5
			cv.line(ox, y, ox+plotW, y, grey, 1)
			cv.text(ox-6, y+4, strconv.FormatFloat(top*float64(k)/5, 'f', -1, 64), "end", black, 11)
		}
		cv.line(ox, oy, ox, oy+plotH, black, 1)
		cv.line(ox, oy+plotH, ox+plotW, oy+plotH, black, 1)
		xAt := func(j int) float64 {
			if len(p.xs) <= 1 {
				return ox + plotW/2
			}
			return ox + 20 + float64(j)*(plotW-40)/float64(len(p.xs)-1)
		}
		for j, x := range p.xs {
			cv.line(xAt(j), oy+plotH, xAt(j), oy+plotH+4, black, 1)
			cv.text(xAt(j), oy+plotH+18, strconv.Itoa(x), "middle", black, 11)
		}
		cv.text(ox+plotW/2, oy+plotH+36, "clients", "middle", black, 12)
		for si, s := range p.ss {
			prev := -1
			for j, y := range s.ys {
				if math.IsNaN(y) {
					continue
				}
				py := oy + plotH - y/top*plotH
				if prev >= 0 {
					cv.line(xAt(prev), oy+plotH-s.ys[prev]/top*plotH, xAt(j), py, s.color, 2)
				}
				cv.dot(xAt(j), py, s.color)
				prev = j
			}
			// One legend under both panels, from the first's series.
			if i == 0 {
				lx := float64(marginL + si*280)
				ly := oy + plotH + 62
				cv.line(lx, ly-4, lx+18, ly-4, s.color, 3)
				cv.text(lx+24, ly, s.name, "start", black, 12)
			}
		}
	}
}

// ChartSVG renders the chart as SVG.
func (r *Report) ChartSVG() string {
	s := &svgCanvas{}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", chartW, chartH, chartW, chartH)
	fmt.Fprintf(&s.b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, chartH)
	r.draw(s)
	s.b.WriteString("</svg>\n")
	return s.b.String()
}

type svgCanvas struct{ b strings.Builder }

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func (s *svgCanvas) line(x1, y1, x2, y2 float64, c color.RGBA, w float64) {
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.0f"/>`+"\n", x1, y1, x2, y2, hex(c), w)
}

func (s *svgCanvas) dot(x, y float64, c color.RGBA) {
	fmt.Fprintf(&s.b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", x, y, hex(c))
}

func (s *svgCanvas) text(x, y float64, t, anchor string, c color.RGBA, size float64) {
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%.0f" fill="%s">%s</text>`+"\n", x, y, anchor, size, hex(c), html.EscapeString(t))
}

// ChartPNG renders the chart as PNG.
func (r *Report) ChartPNG() ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	r.draw(&pngCanvas{img: img})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type pngCanvas struct{ img *image.RGBA }

func (p *pngCanvas) line(x1, y1, x2, y2 float64, c color.RGBA, w float64) {
	n := int(math.Max(math.Abs(x2-x1), math.Abs(y2-y1))) + 1
	half := (w - 1) / 2
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		x, y := x1+t*(x2-x1), y1+t*(y2-y1)
		for dx := -half; dx <= half; dx++ {
			for dy := -half; dy <= half; dy++ {
				p.img.SetRGBA(int(math.Round(x+dx)), int(math.Round(y+dy)), c)
			}
		}
	}
}

func (p *pngCanvas) dot(x, y float64, c color.RGBA) {
	for dx := -3; dx <= 3; dx++ {
		for dy := -3; dy <= 3; dy++ {
			if dx*dx+dy*dy <= 10 {
				p.img.SetRGBA(int(x)+dx, int(y)+dy, c)
			}
		}
	}
}

// text draws with the 3x5 pixel font, scaled 2x (3x for titles), upper case.
func (p *pngCanvas) text(x, y float64, s, anchor string, c color.RGBA, size float64) {
	scale := 2
	if size >= 14 {
		scale = 3
	}
	s = strings.ToUpper(s)
	w := float64(len(s)*4*scale - scale)
	switch anchor {
	case "middle":
		x -= w / 2
	case "end":
		x -= w
	}
	top := int(y) - 5*scale
	for i, ch := range s {
		g, ok := font3x5[ch]
		if !ok {
			continue
		}
		gx := int(x) + i*4*scale
		for row := range 5 {
			for col := range 3 {
				if g[row][col] != '1' {
					continue
				}
				for sx := range scale {
					for sy := range scale {
						p.img.SetRGBA(gx+col*scale+sx, top+row*scale+sy, c)
					}
				}
			}
		}
	}
}

var font3x5 = map[rune][5]string{
	'0': {"111", "101", "101", "101", "111"}, '1': {"010", "110", "010", "010", "111"},
	'2': {"111", "001", "111", "100", "111"}, '3': {"111", "001", "111", "001", "111"},
	'4': {"101", "101", "111", "001", "001"}, '5': {"111", "100", "111", "001", "111"},
	'6': {"111", "100", "111", "101", "111"}, '7': {"111", "001", "001", "001", "001"},
	'8': {"111", "101", "111", "101", "111"}, '9': {"111", "101", "111", "001", "111"},
	'A': {"010", "101", "111", "101", "101"}, 'B': {"110", "101", "110", "101", "110"},
	'C': {"011", "100", "100", "100", "011"}, 'D': {"110", "101", "101", "101", "110"},
	'E': {"111", "100", "110", "100", "111"}, 'F': {"111", "100", "110", "100", "100"},
	'G': {"011", "100", "101", "101", "011"}, 'H': {"101", "101", "111", "101", "101"},
	'I': {"111", "010", "010", "010", "111"}, 'J': {"001", "001", "001", "101", "010"},
	'K': {"101", "101", "110", "101", "101"}, 'L': {"100", "100", "100", "100", "111"},
	'M': {"101", "111", "111", "101", "101"}, 'N': {"110", "101", "101", "101", "101"},
	'O': {"010", "101", "101", "101", "010"}, 'P': {"110", "101", "110", "100", "100"},
	'Q': {"010", "101", "101", "110", "011"}, 'R': {"110", "101", "110", "101", "101"},
	'S': {"011", "100", "010", "001", "110"}, 'T': {"111", "010", "010", "010", "010"},
	'U': {"101", "101", "101", "101", "111"}, 'V': {"101", "101", "101", "101", "010"},
	'W': {"101", "101", "111", "111", "101"}, 'X': {"101", "101", "010", "101", "101"},
	'Y': {"101", "101", "010", "010", "010"}, 'Z': {"111", "001", "010", "100", "111"},
	'/': {"001", "001", "010", "100", "100"}, '.': {"000", "000", "000", "000", "010"},
	'-': {"000", "000", "111", "000", "000"}, '(': {"010", "100", "100", "100", "010"},
	')': {"010", "001", "001", "001", "010"}, '%': {"101", "001", "010", "100", "101"},
	':': {"000", "010", "000", "010", "000"},
}
