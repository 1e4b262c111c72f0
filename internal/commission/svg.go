package commission

import (
	"fmt"
	"html/template"
	"math"
	"strings"
	"time"
)

// Inline SVG charts: the report is one file a site engineer can mail or
// archive, so it draws its own plots and loads nothing.

const (
	plotW, plotH                   = 720.0, 220.0
	padL, padR, padT, padB float64 = 78, 14, 26, 36
)

// niceStep is a round step (1, 2 or 5 times a power of ten) giving about
// n intervals over span.
func niceStep(span float64, n int) float64 {
	if span <= 0 || math.IsNaN(span) || math.IsInf(span, 0) {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// axis is a value range with round ends and its ticks.
type axis struct{ lo, hi, step float64 }

func newAxis(lo, hi float64, n int) axis {
	if hi <= lo {
		d := math.Max(math.Abs(lo)*0.1, 1)
		lo, hi = lo-d, hi+d
	}
	st := niceStep(hi-lo, n)
	return axis{lo: math.Floor(lo/st) * st, hi: math.Ceil(hi/st) * st, step: st}
}

func (a axis) ticks() []float64 {
	var t []float64
	for v := a.lo; v <= a.hi+a.step/2 && len(t) < 40; v += a.step {
		t = append(t, v)
	}
	return t
}

// nsLabel shows a value in ns with its unit.
func nsLabel(v float64) string {
	if v == 0 {
		return "0"
	}
	return time.Duration(math.Round(v)).String()
}

// secLabel shows seconds since the start.
func secLabel(v float64) string {
	return (time.Duration(v) * time.Second).String()
}

type chart struct {
	b      strings.Builder
	x, y   axis
	xl, yl func(float64) string
}

func newChart(title, xTitle, yTitle string, x, y axis, xl, yl func(float64) string) *chart {
	c := &chart{x: x, y: y, xl: xl, yl: yl}
	fmt.Fprintf(&c.b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`,
		plotW, plotH, plotW, plotH, template.HTMLEscapeString(title))
	fmt.Fprintf(&c.b, `<text x="%.0f" y="16" class="t">%s</text>`, padL, template.HTMLEscapeString(title))
	for _, v := range y.ticks() {
		py := c.py(v)
		fmt.Fprintf(&c.b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="g"/><text x="%.1f" y="%.1f" class="yl">%s</text>`,
			padL, plotW-padR, py, py, padL-6, py+4, template.HTMLEscapeString(yl(v)))
	}
	for _, v := range x.ticks() {
		px := c.px(v)
		fmt.Fprintf(&c.b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="g"/><text x="%.1f" y="%.1f" class="xl">%s</text>`,
			px, px, padT, plotH-padB, px, plotH-padB+14, template.HTMLEscapeString(xl(v)))
	}
	fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" class="xt">%s</text>`, (padL+plotW-padR)/2, plotH-4, template.HTMLEscapeString(xTitle))
	fmt.Fprintf(&c.b, `<text x="12" y="%.1f" class="yt" transform="rotate(-90 12 %.1f)">%s</text>`, (padT+plotH-padB)/2, (padT+plotH-padB)/2, template.HTMLEscapeString(yTitle))
	return c
}

func (c *chart) px(v float64) float64 {
	return padL + (v-c.x.lo)/(c.x.hi-c.x.lo)*(plotW-padL-padR)
}

func (c *chart) py(v float64) float64 {
	return plotH - padB - (v-c.y.lo)/(c.y.hi-c.y.lo)*(plotH-padT-padB)
}

func (c *chart) done() template.HTML {
	c.b.WriteString(`</svg>`)
	return template.HTML(c.b.String())
}

// maxPoints bounds what a line draws: a long run's series is reduced to
// the minimum and maximum of each bucket, which keeps every spike.
const maxPoints = 1200

// linePlot draws y against x (x in seconds since the start, y in ns).
func linePlot(title, yTitle string, x, y []float64) template.HTML {
	if len(x) == 0 {
		return ""
	}
	lo, hi := minMax(y)
	c := newChart(title, "time since the start", yTitle, newAxis(x[0], x[len(x)-1], 8), newAxis(lo, hi, 5), secLabel, nsLabel)
	var pts []string
	add := func(xv, yv float64) { pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.px(xv), c.py(yv))) }
	if len(x) <= maxPoints {
		for i := range x {
			add(x[i], y[i])
		}
	} else {
		per := (len(x) + maxPoints/2 - 1) / (maxPoints / 2)
		for i := 0; i < len(x); i += per {
			j := min(i+per, len(x))
			a, b := minMax(y[i:j])
			add(x[i], a)
			add(x[j-1], b)
		}
	}
	fmt.Fprintf(&c.b, `<polyline class="l" points="%s"/>`, strings.Join(pts, " "))
	return c.done()
}

// histogram draws v's distribution (ns) in bins.
func histogram(title string, v []float64, bins int) template.HTML {
	if len(v) < 2 {
		return ""
	}
	lo, hi := minMax(v)
	if hi == lo {
		hi = lo + 1
	}
	w := (hi - lo) / float64(bins)
	counts := make([]float64, bins)
	for _, x := range v {
		counts[min(int((x-lo)/w), bins-1)]++
	}
	_, top := minMax(counts)
	c := newChart(title, "value", "pulses", newAxis(lo, hi, 8), newAxis(0, top, 4), nsLabel, func(f float64) string { return fmt.Sprintf("%.0f", f) })
	for i, n := range counts {
		x0, x1 := c.px(lo+float64(i)*w), c.px(lo+float64(i+1)*w)
		fmt.Fprintf(&c.b, `<rect class="b" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x0, c.py(n), math.Max(x1-x0-1, 0.5), c.py(0)-c.py(n))
	}
	return c.done()
}

func minMax(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi = v[0], v[0]
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}
