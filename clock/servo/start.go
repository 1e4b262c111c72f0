package servo

import (
	"math"
	"time"
)

// The start's defences: a sample too far from the filter to be noise (a
// slip: a wrong label or a stale sample), and a drift file's frequency on
// probation.

// labelSlip: an innovation this large in the start is no noise of any
// pulse or NMEA stream: it is a second label paired with the wrong edge
// (NMEA late under load), or the first sample was, and the start's step
// put the clock whole seconds off.
const labelSlip = 0.5 // s

// slipNoise: an innovation this many times the source's configured noise
// is no noise of it either (the start raises its noise estimate for a PPS
// scattering by tens of its prior, not by hundreds of thousands).
const slipNoise = 1000

// slip is the innovation from which a start sample is a slip (startSlip),
// not noise: labelSlip, or sooner slipNoise times the source's configured
// noise, but never within what the widest frequency prior makes of the
// time since the last sample (3 x freqPrior x dt). A start stepped onto a
// stale sample 300 ms off (the kernel lab: a guest starved at the start,
// samples from before its first step used after it) took the right
// samples, -300 ms, for noise under the 0.5 s of labelSlip: its noise
// estimate went to 120 ms, its frequency ramped to the 500 ppm limit,
// and the clock crept back over minutes, never locking in the two the lab
// gives (TestStartOnAStaleSample). With a PPS (2 us) it is 2 ms.
func (k *Kalman) slip(at, prevAt time.Time) float64 {
	s := slipNoise * sec(k.cfg.MeasNoise)
	if !prevAt.IsZero() {
		s = math.Max(s, 3*freqPrior*at.Sub(prevAt).Seconds())
	}
	return math.Min(labelSlip, s)
}

// startSlip handles a start sample whole seconds from the filter. Taking
// it as noise (raising R to cover it, as smaller surprises are) was
// wrong both ways: after a first sample paired two seconds off and
// stepped onto, every right sample then said -2 s, R went to 0.8 s and to
// its cap, the filter took the disagreement for a frequency, and the
// clock ran away at up to 160 ppm, never locked (two itests under a CPU
// hog; reproduced in TestStartRestepsAfterAWrongFirstSample). A single
// one is dropped as an outlier; jumpConfirm in a row that agree with
// each other say the filter is the one off: the start begins again from
// the latest, stepping onto it.
func (k *Kalman) startSlip(at time.Time, z, nu float64, now time.Time) Action {
	k.addCand(at, nu)
	if len(k.cands) >= jumpConfirm {
		k.cands = k.cands[:0]
		return k.first(at, z, now)
	}
	a := k.control(now)
	a.Note, a.Offset = NoteOutlier, dur(nu)
	return a
}

// priorProbation is how many samples a drift file's frequency must agree
// with before it is trusted for good.
const priorProbation = 16

// checkPrior tests a drift file's frequency against the first samples.
// A file it is believed to ±50 ppb lets the servo skip the start (the
// frequency looks known) and lock in half a second; but the file may be
// another box's, stale after a repair, edited or damaged. One 5 ppm off
// made the samples ramp away, the ramp looked like a GNSS jump, and the
// clock sat in the jump guard for good, never locked, while its real
// error grew to hundreds of ms. During probation, a sample beyond the
// gate, or two growing ones of one sign with the first beyond 2.5
// deviations (a ramp: noise does that by chance in under 1e-3 of pairs,
// a frequency error every time), drops the file: the frequency widens to
// what any clock may be off by and the start begins again, steps allowed,
// as if there had been no file.
func (k *Kalman) checkPrior(at time.Time, nu, S float64, now time.Time) (Action, bool) {
	k.probation--
	ramp := !k.prevAt.IsZero() && k.prevNu*nu > 0 && math.Abs(k.prevNu) > 2.5*k.prevSig && math.Abs(nu) > math.Abs(k.prevNu)
	if math.Abs(nu) <= gateSigmas*math.Sqrt(S) && !ramp {
		return Action{}, false
	}
	k.probation = 0
	k.priorDropped = true
	k.P[1][1] = math.Max(k.P[1][1], freqPrior*freqPrior)
	k.P[0][0] += nu * nu
	k.st, k.tStart = StateStart, at
	k.cands = k.cands[:0]
	k.prevNu, k.prevSig, k.prevAt = nu, math.Sqrt(S), at
	k.accept(at, nu, k.P[0][0]+k.R)
	a := k.startStep(now)
	a.PriorDropped = true
	return a, true
}
