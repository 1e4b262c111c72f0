package servo

import (
	"math"
	"time"

	"sitegm/clock"
)

// Kalman is sitegm's servo: a three-state Kalman filter (phase, frequency,
// frequency drift) over the oscillator model of clock.oscillator, steering
// the clock by frequency only once started.
//
// Why a Kalman filter and not linuxptp's PI: the PI loop's gains are fixed
// (kp 0.7, ki 0.3 at one sample a second), so it follows much of the PPS
// jitter into the clock and its frequency (the integrator) wanders with it;
// that frequency is what holdover inherits. The Kalman gain is derived from
// the two noise sources actually present (the oscillator's, from its class,
// and the samples', estimated as it runs), so it averages as long as the
// oscillator allows and no longer; its frequency estimate, and the
// uncertainty of that estimate, are what holdover and the advertised
// quality use.
//
// Model (state s = [x, y, d], applied adjustment u):
//
//	x' = x + (y + u)·Δ + d·Δ²/2     clock minus reference, s
//	y' = y + d·Δ                    oscillator frequency error, s/s
//	d' = d                          frequency drift, 1/s
//	z  = x + noise                  each sample
//
// Steering: u = -(y + d·Δ/2) - x/τ (the phase part limited to MaxSlew),
// i.e. cancel the oscillator's error and remove the remaining phase with
// time constant τ.
//
// This file is the policy: when to start, step, accept, gate, re-anchor,
// follow a ramp or guard against a jump. The filter itself (state,
// covariance, prediction, update, noise adaptation) is filter.go.
type Kalman struct {
	filter
	cfg     Config
	st      State
	tSample time.Time
	tSeen   time.Time // last sample seen, accepted or not
	tStart  time.Time // first sample
	// The previous sample's innovation, accepted or not, and the
	// deviation it was judged by: two growing ones in a row are a
	// frequency step (see rampStep).
	prevNu, prevSig float64
	prevAt          time.Time
	// Normalised innovations summed over the current window (checkBias).
	biasSum float64
	biasN   int
	// nuMean is the mean of the innovations accepted while tracking: of
	// all of them for the first biasWindow, then a running mean over
	// about that many. It is what the samples say the phase estimate is
	// off by, which the advertised error includes (see Estimate). nuN
	// counts them up to biasWindow.
	nuMean    float64
	nuN       int
	fastUntil time.Time // recovering from a frequency step
	// probation counts the samples a drift file's frequency must still
	// agree with; priorDropped says it did not (see checkPrior).
	probation    int
	priorDropped bool
	// jump guard
	cands     []cand
	agreeRow  int
	outlerRow int
	resync    bool
	restart   bool // begin the start again at the next sample (Restart)
}

type cand struct {
	t time.Time
	z float64 // innovation of the candidate, s
}

// Config of a Kalman servo.
type Config struct {
	Osc clock.Oscillator
	// MeasNoise is the expected standard deviation of the samples (from
	// the PPS source); the servo refines it from the samples.
	MeasNoise time.Duration
	MaxFreq   float64 // ppb
	// InitialFreq is the adjustment found last time (drift file), with its
	// uncertainty InitialFreqSigma (ppb); 0 sigma means unknown.
	InitialFreq, InitialFreqSigma float64
	// StepThreshold: at start, the clock is stepped when the offset is
	// larger (default: 1 µs or five sample deviations as measured so far,
	// whichever is larger).
	StepThreshold time.Duration
	// JumpThreshold: while tracking, a sample disagreeing by more than this
	// (and more than the noise allows) is a jump candidate.
	JumpThreshold time.Duration
	// FollowJumps: a new time that persists this long is followed by a
	// step; 0 never (the operator may Resync).
	FollowJumps time.Duration
	// MaxSlew limits the phase-correcting part of the steering, ppb
	// (default 100 ppm): after a long outage the clock slews back instead
	// of yanking the frequency its PTP and NTP clients follow.
	MaxSlew float64
	// TimeConstant of the phase correction (default 8 s).
	TimeConstant time.Duration
}

const (
	gateSigmas   = 5   // innovation gate, standard deviations
	jumpConfirm  = 3   // consecutive consistent jump candidates to enter guard
	agreeConfirm = 3   // consecutive agreeing samples to leave guard
	holdoverGap  = 2.5 // seconds without a sample before holdover
	// reanchorAfter: consecutive samples beyond the noise gate (but below
	// the jump threshold) after which the filter trusts them over itself.
	reanchorAfter = 3
	recoverTau    = 2 // s
	biasWindow    = 64
	// adaptAfter: innovations before R is estimated from them.
	adaptAfter = 8
)

// NewKalman builds a servo.
func NewKalman(cfg Config) *Kalman {
	if cfg.MeasNoise <= 0 {
		cfg.MeasNoise = time.Microsecond
	}
	if cfg.MaxFreq <= 0 {
		cfg.MaxFreq = 500000
	}
	if cfg.JumpThreshold <= 0 {
		cfg.JumpThreshold = max(10*time.Microsecond, 10*cfg.MeasNoise)
	}
	if cfg.MaxSlew <= 0 {
		cfg.MaxSlew = 100000
	}
	if cfg.TimeConstant <= 0 {
		cfg.TimeConstant = 8 * time.Second
	}
	m := cfg.MeasNoise.Seconds()
	k := &Kalman{cfg: cfg, filter: filter{osc: cfg.Osc, measNoise: m, R: m * m, u: cfg.InitialFreq * 1e-9}}
	return k
}

// State implements Servo.
func (k *Kalman) State() State { return k.st }

// Resync implements Servo.
func (k *Kalman) Resync() { k.resync = true }

// Restart implements Servo. A drift file's frequency, if any, is not
// taken again: the start that went wrong may have been its.
func (k *Kalman) Restart() { k.restart = true }

func (k *Kalman) control(now time.Time) Action {
	tau := k.cfg.TimeConstant.Seconds()
	if now.Before(k.fastUntil) {
		tau = math.Min(tau, recoverTau)
	}
	slew := k.cfg.MaxSlew * 1e-9
	// Steer from the state predicted to now, when the change takes effect.
	s := k.predicted(now)
	phase := math.Max(-slew, math.Min(slew, s[0]/tau))
	u := -(s[1] + s[2]/2) - phase
	m := k.cfg.MaxFreq * 1e-9
	k.setU(now, math.Max(-m, math.Min(m, u)))
	return Action{Freq: k.u * 1e9, SetFreq: true}
}

// Sample implements Servo.
func (k *Kalman) Sample(at time.Time, offset time.Duration, now time.Time) Action {
	z := sec(offset)
	if k.restart {
		k.restart, k.resync = false, false
		k.cands = k.cands[:0]
		if k.cfg.InitialFreqSigma > 0 {
			k.priorDropped = true
		}
		return k.first(at, z, now)
	}
	if k.resync && k.st >= StateTrack {
		return k.follow(at, z, now, NoteStepped)
	}
	if k.st == StateInit {
		return k.first(at, z, now)
	}
	k.predict(at)
	nu := z - k.s[0]
	S := k.P[0][0] + k.R
	gate := gateSigmas * math.Sqrt(S)
	jumpThr := math.Max(gate, sec(k.cfg.JumpThreshold))
	if k.st == StateHoldover {
		// Back from an outage: the clock drifted by what the oscillator
		// did meanwhile, which its model may not have foreseen (a
		// temperature change). Offsets the oscillator can explain are
		// corrected, not taken for a jump.
		out := at.Sub(k.tSeen).Seconds()
		if lim := k.cfg.Osc.MaxFreqError * out; math.Abs(nu) <= math.Max(jumpThr, lim) {
			if math.Abs(nu) > gate {
				k.P[0][0] += nu * nu
				k.P[1][1] += (nu / out) * (nu / out)
				S = k.P[0][0] + k.R
			}
			k.tSeen = at
			k.accept(at, nu, S)
			k.st = StateTrack
			return k.control(now)
		}
	}
	k.tSeen = at
	jump := math.Abs(nu) > jumpThr
	if k.probation > 0 {
		if a, dropped := k.checkPrior(at, nu, S, now); dropped {
			return a
		}
	}
	if k.st == StateGuard {
		return k.guard(at, z, nu, gate, jump, now)
	}
	prevNu, prevSig, prevAt := k.prevNu, k.prevSig, k.prevAt
	k.prevNu, k.prevSig, k.prevAt = nu, math.Sqrt(S), at
	if k.st == StateStart && math.Abs(nu) > gate {
		if math.Abs(nu) >= k.slip(at, prevAt) {
			return k.startSlip(at, z, nu, now)
		}
		// In the start the frequency is still the wide prior, so a sample
		// the prediction did not expect says the noise is larger than
		// assumed (a PPS scattering by tens of µs against the 2 µs
		// configured), not that GNSS jumped: raise R to cover it and learn
		// from the sample. The jump guard is for a filter that has earned
		// its confidence; entering it here froze a wrong frequency, and
		// with a 20 µs PPS the clock ran away by hundreds of ms.
		// What the filter learned so far was weighed with the smaller R:
		// the covariance of a filter informed by its samples scales with
		// R, so it is scaled back up by the same factor (never wider than
		// the frequency prior), or the first two samples' frequency would
		// stay "known" to 3 ppm whatever they really said.
		r := math.Max(k.R, nu*nu/(gateSigmas*gateSigmas)*4)
		g := math.Min(r/k.R, freqPrior*freqPrior/math.Max(k.P[1][1], 1e-30))
		if g > 1 {
			for i := range k.P {
				for j := range k.P[i] {
					k.P[i][j] *= g
				}
			}
		}
		k.R = r
		k.accept(at, nu, k.P[0][0]+k.R)
		return k.startStep(now)
	}
	switch {
	case math.Abs(nu) <= gate:
		k.accept(at, nu, S)
		if k.st == StateStart {
			return k.startStep(now)
		}
		return k.control(now)
	case jump:
		k.outlerRow = 0
		k.addCand(at, nu)
		a := k.control(now)
		if len(k.cands) >= jumpConfirm {
			k.st = StateGuard
			k.agreeRow = 0
			a.Note, a.Offset = NoteJump, dur(nu)
			return a
		}
		a.Note, a.Offset = NoteOutlier, dur(nu)
		return a
	}
	// Beyond the noise but not a jump. One is an outlier; several in a row
	// mean the filter is overconfident (the oscillator did something the
	// model did not expect, e.g. a temperature step): widen the estimate
	// by what the samples say and take them.
	k.cands = k.cands[:0]
	k.outlerRow++
	if k.st == StateTrack && k.rampStep(at, nu, prevNu, prevSig, prevAt) {
		return k.control(now)
	}
	if k.outlerRow >= reanchorAfter {
		// The frequency may have moved by what the phase suggests over ten
		// seconds (widen caps it at what the oscillator class can do: with
		// NMEA-only samples, milliseconds, nu/10 alone would be ppm-wide).
		k.widen(nu, nu/10)
		k.accept(at, nu, k.P[0][0]+k.R)
		return k.control(now)
	}
	a := k.control(now)
	a.Note, a.Offset = NoteOutlier, dur(nu)
	return a
}

// rampStep recognises a step of the oscillator's frequency (a
// temperature change, a TCXO's compensation hopping) one sample after it
// shows: an innovation beyond the gate that grows on a significant one of
// the same sign a second earlier is the phase ramp such a step leaves,
// which a lone outlier is not (two such samples by chance: below 1e-8).
// Waiting for reanchorAfter outliers instead lets the ramp run a second
// longer and then finds the phase but not the frequency, so the error
// keeps growing while the filter relearns it: a 100 ppb step cost 400 ns
// that way against the PI's 110. Here the slope between the two
// innovations is the step, taken into the frequency at once, and the
// phase is taken from the sample; both uncertainties are widened by what
// was found so that the next samples refine them.
func (k *Kalman) rampStep(at time.Time, nu, prevNu, prevSig float64, prevAt time.Time) bool {
	dt := at.Sub(prevAt).Seconds()
	if prevAt.IsZero() || dt <= 0 || dt > holdoverGap || prevNu*nu <= 0 ||
		math.Abs(prevNu) < 2.5*prevSig || math.Abs(nu) <= math.Abs(prevNu) {
		return false
	}
	slope := (nu - prevNu) / dt
	if math.Abs(slope) > k.cfg.Osc.MaxFreqError {
		return false // faster than the oscillator can change: not a ramp
	}
	k.s[1] += slope
	k.widen(nu, slope)
	k.accept(at, nu, k.P[0][0]+k.R)
	k.fastUntil = at.Add(5 * time.Second * recoverTau)
	return true
}

func (k *Kalman) accept(at time.Time, nu, S float64) {
	k.adaptR(nu, S-k.R)
	k.checkBias(nu, S)
	// Only a tracking filter's innovations say how biased it is: in the
	// start they are offsets the start learns from with a widened noise
	// (a label paired a second off under load, taken so, left a second's
	// share in the mean, and the error advertised at milliseconds kept
	// the clock from locking for minutes).
	// The mean counts from the first tracking sample, not at 1/64 a
	// sample from zero: a start that ended with the estimate lagging its
	// samples (in the kernel lab's kernel-pps, 6 µs off while the samples
	// said so and the estimate said 3.4) would otherwise advertise a
	// bound that ignores what the samples say for a minute after LOCKED.
	if k.st == StateTrack {
		k.nuN = min(k.nuN+1, biasWindow)
		k.nuMean += (nu - k.nuMean) / float64(k.nuN)
	} else {
		k.nuMean, k.nuN = 0, 0
	}
	k.update(nu, S)
	k.tSample = at
	k.outlerRow = 0
	k.cands = k.cands[:0]
}

// checkBias watches the mean of the innovations, which a consistent
// filter keeps at zero within sqrt(S/n). A mean beyond four times that
// means the state is wrong and the filter too sure of it to notice (a
// frequency learned in a start with millisecond PPS noise stayed a ppm
// off with a 0.03 ppm sigma, and the clock sat 700 µs off while
// advertising 170 µs): widen the phase by the bias and the frequency by
// the bias over the window, so the next samples correct both.
func (k *Kalman) checkBias(nu, S float64) {
	if k.st != StateTrack {
		k.biasN, k.biasSum = 0, 0
		return
	}
	k.biasSum += nu / math.Sqrt(S)
	k.biasN++
	if k.biasN < biasWindow {
		return
	}
	mean := k.biasSum / biasWindow // in units of sqrt(S)
	k.biasN, k.biasSum = 0, 0
	if math.Abs(mean) <= 4/math.Sqrt(biasWindow) {
		return
	}
	b := mean * math.Sqrt(S)
	k.widen(b, b/biasWindow)
}

// addCand keeps consecutive jump candidates that agree with each other.
func (k *Kalman) addCand(at time.Time, nu float64) {
	if n := len(k.cands); n > 0 {
		prev := k.cands[n-1].z
		tol := gateSigmas*math.Sqrt(2*k.R) + 1e-3*math.Abs(prev)
		if math.Abs(nu-prev) > tol {
			k.cands = k.cands[:0]
		}
	}
	k.cands = append(k.cands, cand{t: at, z: nu})
}

func (k *Kalman) guard(at time.Time, z, nu, gate float64, jump bool, now time.Time) Action {
	if !jump {
		k.agreeRow++
		if k.agreeRow >= agreeConfirm {
			k.cands = k.cands[:0]
			k.P[0][0] += nu * nu
			k.accept(at, nu, k.P[0][0]+k.R)
			k.st = StateTrack
			a := k.control(now)
			a.Note = NoteJumpOver
			return a
		}
		return k.control(now)
	}
	k.agreeRow = 0
	k.addCand(at, nu)
	if k.cfg.FollowJumps > 0 && at.Sub(k.cands[0].t) >= k.cfg.FollowJumps {
		return k.follow(at, z, now, NoteJumpFollow)
	}
	return k.control(now)
}

// follow accepts the reference as it is: step to it.
func (k *Kalman) follow(at time.Time, z float64, now time.Time, note Note) Action {
	k.resync = false
	k.predict(at)
	k.s[0] = z
	k.P[0][0] = k.R
	k.P[0][1], k.P[1][0], k.P[0][2], k.P[2][0] = 0, 0, 0, 0
	step := k.applyStep(-k.predicted(now)[0])
	k.tSample, k.tSeen = k.tState, k.tState
	k.st = StateTrack
	k.cands = k.cands[:0]
	a := k.control(now.Add(step))
	a.Step, a.Note, a.Offset = step, note, dur(z)
	return a
}

// Join makes the servo take over a clock another reference steered (the
// NTP fallback): the clock runs with adjustment freq now (ppb, known to
// freqSigma; 0 unknown), and the sample at at says it is offset ahead of
// GNSS. What the servo knew before is of another time; it starts afresh
// from the sample as its first does, but straight into tracking, and the
// phase is slewed out (within MaxSlew), never stepped: the clock served
// time within a bound it advertised, and its followers must not see it
// jump. With step, the clock is stepped onto GNSS instead (it served no
// synchronized time, so nothing follows its phase).
func (k *Kalman) Join(at time.Time, offset time.Duration, freq, freqSigma float64, step bool, now time.Time) Action {
	z := sec(offset)
	k.u = freq * 1e-9
	k.uBefore, k.uLog = k.u, nil
	fs := freqPrior
	if freqSigma > 0 && !math.IsInf(freqSigma, 0) {
		fs = math.Min(freqSigma*1e-9, freqPrior)
	}
	k.s = vec3{z, -k.u, 0}
	k.P = mat3{{k.R, 0, 0}, {0, fs * fs, 0}, {0, 0, driftPrior(k.cfg.Osc)}}
	k.tState, k.tStart, k.tSample, k.tSeen = at, at, at, at
	k.probation, k.cands, k.agreeRow, k.outlerRow, k.resync = 0, k.cands[:0], 0, 0, false
	k.prevNu, k.prevSig, k.prevAt = 0, 0, time.Time{}
	k.biasSum, k.biasN, k.nuMean, k.nuN, k.fastUntil = 0, 0, 0, 0, time.Time{}
	k.st = StateTrack
	var a Action
	if step {
		d := k.applyStep(-k.predicted(now)[0])
		a = k.control(now.Add(d))
		a.Step, a.Note = d, NoteStepped
		return a
	}
	return k.control(now)
}

// applyStep records a step of the clock by x seconds, made now. Every
// sample handled from here on is read on the stepped clock, even an edge
// that happened before the step (the pairer shifts the edges it holds), so
// the step applies to the state as it stands, and the filter's times move
// with the clock.
func (k *Kalman) applyStep(x float64) time.Duration {
	step := dur(x)
	k.s[0] += x
	k.shiftTime(step)
	return step
}

// shiftTime moves the servo's time bookkeeping by a clock step.
func (k *Kalman) shiftTime(d time.Duration) {
	k.filter.shiftTime(d)
	k.tSeen = k.tSeen.Add(d)
}

// freqPrior is what any clock's frequency error is before it is measured
// (crystals are specified within ±100 ppm; TCXOs and OCXOs far better).
const freqPrior = 100e-6

// FreqPriorPPB is freqPrior in ppb: no plausible clock needs more.
const FreqPriorPPB = freqPrior * 1e9

// startExit: the start (when steps are allowed) ends when the frequency is
// known this well, or after startMax.
const (
	startExit = 100e-9
	startMax  = 60 * time.Second
)

// first starts the filter at the first sample: the phase is what the
// sample says, the frequency what the drift file says or the prior. The
// filter then learns the frequency like any other state; while it is
// uncertain (the start), the clock may be stepped, after that never.
func (k *Kalman) first(at time.Time, z float64, now time.Time) Action {
	k.uBefore, k.uLog = k.u, nil
	y0, fs := 0.0, freqPrior
	if k.cfg.InitialFreqSigma > 0 && !k.priorDropped {
		y0, fs = -k.cfg.InitialFreq*1e-9, k.cfg.InitialFreqSigma*1e-9
		k.probation = priorProbation
	} else {
		y0 = -k.u
	}
	k.s = [3]float64{z, y0, 0}
	k.P = [3][3]float64{{k.R, 0, 0}, {0, fs * fs, 0}, {0, 0, driftPrior(k.cfg.Osc)}}
	k.tState = at
	k.tStart = at
	k.tSample, k.tSeen = at, at
	k.st = StateStart
	return k.startStep(now)
}

// startStep steers during the start: a step when the phase is beyond the
// step threshold, then the frequency correction.
func (k *Kalman) startStep(now time.Time) Action {
	var step time.Duration
	if s := k.predicted(now); math.Abs(s[0]) > k.stepThreshold() {
		step = k.applyStep(-s[0])
	}
	if math.Sqrt(k.P[1][1]) < startExit || k.tState.Sub(k.tStart) > startMax {
		k.st = StateTrack
	}
	c := k.control(now.Add(step))
	c.Step = step
	if step != 0 {
		c.Note = NoteStepped
	}
	return c
}

// Tick implements Servo.
func (k *Kalman) Tick(now time.Time) Action {
	switch k.st {
	case StateStart, StateTrack:
		if now.Sub(k.tSeen).Seconds() < holdoverGap {
			return Action{}
		}
		k.st = StateHoldover
		fallthrough
	case StateHoldover, StateGuard:
		// Keep the frequency model running (the drift). The state moves
		// only up to two seconds ago: a sample older than now may still
		// come, and the filter cannot go back in time.
		k.predict(now.Add(-2 * time.Second))
		return k.control(now)
	}
	return Action{}
}

// Estimate implements Servo.
func (k *Kalman) Estimate(now time.Time) Estimate {
	s, P := k.s, k.P
	if dt := now.Sub(k.tState).Seconds(); dt > 0 && k.st >= StateTrack {
		s = k.predicted(now)
		_, P = propagate(k.s, k.P, 0, dt, k.cfg.Osc)
	}
	e := k.estimate(s, P)
	e.NoiseMeasured = k.nR >= adaptAfter
	// A filter whose samples keep disagreeing with it one way is off by
	// about that much whatever its covariance says: the running mean of
	// the innovations widens the sigma so that the advertised error
	// (|offset| + 3 sigma) covers it.
	e.OffsetSigma += dur(math.Abs(k.nuMean) / 3)
	if !k.tSample.IsZero() {
		e.SinceSample = now.Sub(k.tSample)
	}
	if k.st < StateTrack {
		e.OffsetSigma = time.Duration(math.MaxInt64)
		e.FreqSigma = math.Inf(1)
	}
	return e
}

// driftPrior is the variance of the drift before any measurement: the
// class's drift magnitude is typical, not a bound.
func driftPrior(o clock.Oscillator) float64 { return 9 * o.Drift * o.Drift }

// stepThreshold is the offset above which a start step is worth it.
func (k *Kalman) stepThreshold() float64 {
	if k.cfg.StepThreshold > 0 {
		return sec(k.cfg.StepThreshold)
	}
	return math.Max(1e-6, 5*math.Sqrt(k.R))
}
