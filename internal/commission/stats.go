package commission

import (
	"math"
	"slices"
)

// spread summarises v (ns).
func spread(v []float64) Spread {
	s := Spread{N: len(v)}
	if len(v) == 0 {
		return s
	}
	s.Min, s.Max = v[0], v[0]
	var sum float64
	for _, x := range v {
		sum += x
		s.Min, s.Max = math.Min(s.Min, x), math.Max(s.Max, x)
	}
	s.Mean = sum / float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (x - s.Mean) * (x - s.Mean)
	}
	if len(v) > 1 {
		s.Sigma = math.Sqrt(ss / float64(len(v)-1))
	}
	abs := make([]float64, len(v))
	for i, x := range v {
		abs[i] = math.Abs(x)
	}
	s.AbsP99 = percentile(abs, 0.99)
	return s
}

// percentile is the p-quantile of v (nearest rank), v unchanged.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	c := slices.Clone(v)
	slices.Sort(c)
	i := int(math.Ceil(p*float64(len(c)))) - 1
	return c[max(0, min(i, len(c)-1))]
}

// line fits y = a + b x by least squares and returns the residuals and the
// slope; fewer than 3 points leave the values about their mean.
func line(x, y []float64) (res []float64, slope float64) {
	n := float64(len(x))
	res = make([]float64, len(y))
	if len(x) < 3 {
		var m float64
		for _, v := range y {
			m += v
		}
		m /= math.Max(n, 1)
		for i, v := range y {
			res[i] = v - m
		}
		return res, 0
	}
	var sx, sy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
	}
	mx, my := sx/n, sy/n
	var sxx, sxy float64
	for i := range x {
		sxx += (x[i] - mx) * (x[i] - mx)
		sxy += (x[i] - mx) * (y[i] - my)
	}
	if sxx > 0 {
		slope = sxy / sxx
	}
	for i := range x {
		res[i] = y[i] - my - slope*(x[i]-mx)
	}
	return res, slope
}

// unwrapPhase makes a series of phases (ns within a second, -0.5 s to
// 0.5 s) continuous: a free-running clock's phase that crosses the half
// second jumps by a whole second, which is the clock's drift and not the
// pulse's.
func unwrapPhase(v []float64) []float64 {
	out := slices.Clone(v)
	var shift float64
	for i := 1; i < len(v); i++ {
		d := v[i] - v[i-1]
		switch {
		case d > 5e8:
			shift -= 1e9
		case d < -5e8:
			shift += 1e9
		}
		out[i] = v[i] + shift
	}
	return out
}

// ppsFigures sums the pulse up.
func ppsFigures(o PPSObs) PPSReport {
	r := PPSReport{PPSObs: o, Expected: o.Seconds}
	if r.Edges == nil {
		r.Edges = []Edge{}
	}
	if r.Widths == nil {
		r.Widths = []float64{}
	}
	if o.Seconds > 0 && uint64(o.Seconds) > o.Counted {
		r.Missing = o.Seconds - int(o.Counted)
	}
	if len(o.Edges) > 0 {
		x, y := make([]float64, len(o.Edges)), make([]float64, len(o.Edges))
		for i, e := range o.Edges {
			x[i], y[i] = float64(e.Second-o.Edges[0].Second), e.OffsetNS
		}
		if !o.Disciplined {
			y = unwrapPhase(y)
		}
		res, slope := line(x, y)
		r.Residual, r.SlopePPB = spread(res), slope
		if o.Disciplined {
			off := spread(y)
			r.Offset = &off
		}
	}
	if len(o.Widths) > 0 {
		w := spread(o.Widths)
		r.Width = &w
	}
	var q []float64
	for _, e := range o.Edges {
		if e.HasQErr {
			q = append(q, e.QErrNS)
		}
	}
	if len(q) == 0 {
		q = o.QErrs
	}
	if len(q) > 0 {
		s := spread(q)
		r.Sawtooth = &s
	}
	return r
}

// phcFigures sums the PHC - system readings up.
func phcFigures(o PHCObs) *PHCReport {
	r := &PHCReport{PHCObs: o}
	if r.Samples == nil {
		r.Samples = []PHCSample{}
	}
	x, y, w := make([]float64, len(o.Samples)), make([]float64, len(o.Samples)), make([]float64, len(o.Samples))
	for i, s := range o.Samples {
		x[i], y[i], w[i] = s.T, s.OffsetNS, s.WindowNS
	}
	res, slope := line(x, y)
	r.Offset, r.Residual, r.Window, r.SlopePPB = spread(y), spread(res), spread(w), slope
	r.WindowMedianNS = percentile(w, 0.5)
	return r
}
