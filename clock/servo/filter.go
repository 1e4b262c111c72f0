package servo

import (
	"math"
	"sort"
	"time"

	"sitegm/clock"
)

// vec3 is the filter's state: phase (s), frequency (s/s), drift (1/s).
type vec3 [3]float64

// mat3 is a 3x3 matrix (the state's covariance, the transition).
type mat3 [3][3]float64

// mul is a*b, summing each element in index order (the filter's
// arithmetic must not change with its code: the replay test checks it bit
// for bit).
func (a mat3) mul(b mat3) mat3 {
	var c mat3
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			for l := 0; l < 3; l++ {
				c[i][j] += a[i][l] * b[l][j]
			}
		}
	}
	return c
}

// t is the transpose.
func (a mat3) t() mat3 {
	var c mat3
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			c[i][j] = a[j][i]
		}
	}
	return c
}

func (a mat3) add(b mat3) mat3 {
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			a[i][j] += b[i][j]
		}
	}
	return a
}

// symmetric averages the mirrored elements (rounding drifts them apart).
func (a mat3) symmetric() mat3 {
	for i := 0; i < 3; i++ {
		for j := i + 1; j < 3; j++ {
			m := (a[i][j] + a[j][i]) / 2
			a[i][j], a[j][i] = m, m
		}
	}
	return a
}

// filter is the Kalman filter proper over the oscillator model (see
// Kalman for the model): state and covariance at tState, the adjustments
// applied to the clock (which the phase integrates piecewise), and the
// measurement variance R adapted from the innovations. It decides
// nothing; the policy in kalman.go does.
type filter struct {
	osc       clock.Oscillator
	measNoise float64 // the configured sample deviation, s
	s         vec3
	P         mat3
	tState    time.Time
	u         float64 // applied adjustment, fraction (the latest)
	uLog      []uChange
	uBefore   float64 // the adjustment in force before uLog's first entry
	R         float64 // measurement variance, s², adapted as samples come
	nR        int
	ring      [32]float64 // recent |innovation|
}

// uChange records when the caller applied a new adjustment: samples are
// older than the moment their action takes effect, so the phase model
// integrates the adjustment piecewise, not as if it had applied since the
// sample.
type uChange struct {
	at time.Time
	u  float64
}

func sec(d time.Duration) float64 { return d.Seconds() }

func dur(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

// predict moves the state to t.
func (f *filter) predict(t time.Time) {
	dt := t.Sub(f.tState).Seconds()
	if dt <= 0 {
		return
	}
	f.s, f.P = propagate(f.s, f.P, f.uAt(f.tState), dt, f.osc)
	// propagate integrated the adjustment in force at tState over the whole
	// interval; correct for the changes made inside it.
	f.s[0] += f.uIntegral(f.tState, t) - f.uAt(f.tState)*dt
	f.tState = t
	f.pruneU()
}

// predicted is the state carried to t without changing the filter.
func (f *filter) predicted(t time.Time) vec3 {
	s := f.s
	dt := t.Sub(f.tState).Seconds()
	if dt <= 0 {
		return s
	}
	s, _ = propagate(s, f.P, f.uAt(f.tState), dt, f.osc)
	s[0] += f.uIntegral(f.tState, t) - f.uAt(f.tState)*dt
	return s
}

// uAt is the adjustment in force at t.
func (f *filter) uAt(t time.Time) float64 {
	u := f.uBefore
	for _, c := range f.uLog {
		if c.at.After(t) {
			break
		}
		u = c.u
	}
	return u
}

// uIntegral is the phase the adjustments added over [a, b].
func (f *filter) uIntegral(a, b time.Time) float64 {
	sum := 0.0
	cur, from := f.uAt(a), a
	for _, c := range f.uLog {
		if !c.at.After(a) {
			continue
		}
		if !c.at.Before(b) {
			break
		}
		sum += cur * c.at.Sub(from).Seconds()
		cur, from = c.u, c.at
	}
	return sum + cur*b.Sub(from).Seconds()
}

// pruneU forgets changes before the state time (keeping the one in force).
func (f *filter) pruneU() {
	i := 0
	for i < len(f.uLog) && !f.uLog[i].at.After(f.tState) {
		f.uBefore = f.uLog[i].u
		i++
	}
	f.uLog = f.uLog[i:]
}

// maxULog bounds the record of adjustments between two predictions. The
// GNSS servo predicts every second and keeps a few; the NTP servo steers
// every 4 s between samples up to 17 minutes apart (maxpoll 10), and
// moves its state on after an hour without one (ntpMaxHistory).
const maxULog = 1024

// setU applies a new adjustment from time now on.
func (f *filter) setU(now time.Time, u float64) {
	f.u = u
	if now.Before(f.tState) {
		now = f.tState
	}
	f.uLog = append(f.uLog, uChange{at: now, u: u})
	if len(f.uLog) > maxULog {
		f.uBefore = f.uLog[0].u
		f.uLog = f.uLog[1:]
	}
}

// shiftTime moves the filter's times by a clock step.
func (f *filter) shiftTime(d time.Duration) {
	f.tState = f.tState.Add(d)
	for i := range f.uLog {
		f.uLog[i].at = f.uLog[i].at.Add(d)
	}
}

// propagate carries the state and covariance dt seconds on with the
// adjustment u: s' = F s (+ u dt in phase), P' = F P Fᵀ + Q, where Q is
// the oscillator's process noise (white FM, random-walk FM and drift
// noise integrated over dt).
func propagate(s vec3, P mat3, u, dt float64, o clock.Oscillator) (vec3, mat3) {
	s[0] += (s[1]+u)*dt + s[2]*dt*dt/2
	s[1] += s[2] * dt
	F := mat3{{1, dt, dt * dt / 2}, {0, 1, dt}, {0, 0, 1}}
	q1 := o.WhiteFM * o.WhiteFM
	q2 := o.RandomWalkFM * o.RandomWalkFM
	q3 := o.DriftNoise * o.DriftNoise
	d2, d3, d4, d5 := dt*dt, dt*dt*dt, dt*dt*dt*dt, dt*dt*dt*dt*dt
	Q := mat3{
		{q1*dt + q2*d3/3 + q3*d5/20, q2*d2/2 + q3*d4/8, q3 * d3 / 6},
		{q2*d2/2 + q3*d4/8, q2*dt + q3*d3/3, q3 * d2 / 2},
		{q3 * d3 / 6, q3 * d2 / 2, q3 * dt},
	}
	return s, F.mul(P).mul(F.t()).add(Q)
}

// update folds in a measurement: innovation nu (measured minus predicted
// phase), of variance S.
func (f *filter) update(nu, S float64) {
	var K vec3
	for i := 0; i < 3; i++ {
		K[i] = f.P[i][0] / S
	}
	for i := 0; i < 3; i++ {
		f.s[i] += K[i] * nu
	}
	var P mat3
	for i := 0; i < 3; i++ {
		for j := 0; j < 3; j++ {
			P[i][j] = f.P[i][j] - K[i]*K[j]*S
		}
	}
	f.P = P.symmetric()
}

// adaptR refines the measurement variance from accepted innovations:
// E[nu²] = P_pred + R. A robust scale (1.4826 × the median absolute
// innovation over the last 32) so that start-up transients and the odd
// outlier do not inflate it.
func (f *filter) adaptR(nu, Ppred float64) {
	f.ring[f.nR%len(f.ring)] = math.Abs(nu)
	f.nR++
	n := min(f.nR, len(f.ring))
	if n < adaptAfter {
		return
	}
	tmp := f.ring
	v := tmp[:n]
	sort.Float64s(v)
	med := v[n/2]
	sigma := 1.4826 * med
	// While the state is still uncertain (the start, from a wide prior)
	// Ppred can exceed what the innovations show, and subtracting it all
	// would leave R a hundredth of the truth: the filter then believes
	// every sample, gates out the rest and loses its frequency. The
	// innovations bound R from below at a quarter of their variance.
	r := math.Max(sigma*sigma-Ppred, sigma*sigma/4)
	m := f.measNoise
	// Bounds: a hundredth of the configured noise below, a hundred times
	// it above (or 10 ms: a PPS through a USB serial adapter scatters by
	// up to a millisecond, and is still worth averaging).
	f.R = math.Min(math.Max(r, math.Max(1e-18, m*m/1e4)), math.Max(m*m*1e4, 1e-4))
}

// estimate is the Estimate of state s with covariance P (the filter's,
// carried to some time), the fields both servos report alike.
func (f *filter) estimate(s vec3, P mat3) Estimate {
	return Estimate{
		Offset:      dur(s[0]),
		OffsetSigma: dur(math.Sqrt(math.Max(P[0][0], 0))),
		Freq:        -s[1] * 1e9,
		FreqSigma:   math.Sqrt(math.Max(P[1][1], 0)) * 1e9,
		DriftPPBDay: s[2] * 86400e9,
		MeasNoise:   dur(math.Sqrt(f.R)),
	}
}

// widen adds to the state's uncertainty what the samples showed it
// lacked: dx of phase and df of frequency, the latter never more than the
// oscillator class can move (MaxFreqError).
func (f *filter) widen(dx, df float64) {
	df = math.Min(math.Abs(df), f.osc.MaxFreqError)
	f.P[0][0] += dx * dx
	f.P[1][1] += df * df
}
