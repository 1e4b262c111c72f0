package servo

import (
	"math"
	"time"

	"sitegm/clock"
)

// NTP steers the clock from the NTP upstreams' selection (ntp/upstream)
// when no GNSS leads: the same Kalman filter over the oscillator model as
// Kalman, with a policy for what NTP samples are: one every poll (16 s to
// a day), each with its own uncertainty (the selection's jitter), each a
// measurement of the clock at the moment of its exchange, which may lie
// minutes before the selection hands it over (the clock filter keeps the
// least-delayed of the last eight, RFC 5905 clause 10).
//
// What it leaves out of the Kalman policy, and why: the start's frequency
// search (NTP samples are too sparse for it; the frequency starts from
// what the clock already has), the ramp and bias detectors (tuned to one
// sample a second), and the jump guard (the selection itself rejects
// falsetickers by majority; a step of all upstreams together is widened
// into the filter after three samples, as the Kalman re-anchors).
type NTP struct {
	filter
	cfg     NTPConfig
	st      State
	tSample time.Time
	lastU   time.Time // when the steering was last changed
	outRow  int
}

// NTPConfig configures an NTP servo.
type NTPConfig struct {
	Osc     clock.Oscillator
	MaxFreq float64 // ppb
	// Freq is the adjustment the clock runs with now (GNSS's estimate, the
	// drift file's, or 0), FreqSigma how well it is known (ppb; 0:
	// unknown, the ±100 ppm prior).
	Freq, FreqSigma float64
	// StepAllowed: the first sample may step the clock (it never served
	// synchronized time, so nobody follows its phase yet).
	StepAllowed bool
	// SilentAfter without a newer sample the servo is in holdover (the
	// caller sets it from the poll interval).
	SilentAfter time.Duration
}

// NTP servo constants.
const (
	// ntpTau is the time constant of the phase correction: longer than
	// the GNSS servo's 8 s since a sample is worth less and comes rarely;
	// about two polls at the default 64 s.
	ntpTau = 128 * time.Second
	// ntpMaxSlew bounds the phase correction (ppb), as the GNSS servo's
	// MaxSlew does: PTP and NTP followers see a frequency change, never
	// a step.
	ntpMaxSlew = 100000
	// ntpStepAbove: a first offset below this is slewed even when a step
	// is allowed.
	ntpStepAbove = 500 * time.Microsecond
	// ntpMinNoise is the least deviation a sample is given: the clock
	// filter's jitter of one exchange on a quiet LAN is tens of µs.
	ntpMinNoise = 50 * time.Microsecond
	// ntpSteerEvery: the steering changes at most this often; it is a
	// slow correction, and each change is a record the filter keeps.
	ntpSteerEvery = 4 * time.Second
	// ntpMaxHistory: a filter not updated for this long is moved on in
	// Tick (its record of adjustments stays bounded); a sample older
	// than the state is no longer usable then, which after an hour
	// without one costs nothing.
	ntpMaxHistory = time.Hour
)

// NewNTP builds an NTP servo; it waits for its first sample.
func NewNTP(cfg NTPConfig) *NTP {
	if cfg.MaxFreq <= 0 {
		cfg.MaxFreq = 500000
	}
	if cfg.SilentAfter <= 0 {
		cfg.SilentAfter = 5 * time.Minute
	}
	u := cfg.Freq * 1e-9
	n := &NTP{cfg: cfg, filter: filter{osc: cfg.Osc, measNoise: sec(ntpMinNoise), u: u, uBefore: u}}
	return n
}

// State of the servo: StateInit before the first sample, StateTrack while
// samples are newer than SilentAfter, StateHoldover after.
func (n *NTP) State() State { return n.st }

// SetSilentAfter changes how long the servo waits for a newer sample
// (the poll interval grows as the upstreams prove steady).
func (n *NTP) SetSilentAfter(d time.Duration) {
	if d > 0 {
		n.cfg.SilentAfter = d
	}
}

// Sample takes the selection's measurement: at time at (on the clock) the
// clock was offset ahead of the upstreams, known to a deviation of sigma;
// now is the clock's time when the action applies. A sample not newer
// than the last one taken is ignored (RFC 5905 clause 10 passes on only
// newer samples).
func (n *NTP) Sample(at time.Time, offset, sigma time.Duration, now time.Time) Action {
	if !n.tSample.IsZero() && !at.After(n.tSample) {
		return Action{}
	}
	z := sec(offset)
	n.R = math.Pow(sec(max(sigma, ntpMinNoise)), 2)
	if n.st == StateInit {
		return n.first(at, z, now)
	}
	if at.Before(n.tState) {
		return Action{} // older than the state (the filter was moved on)
	}
	n.predict(at)
	nu := z - n.s[0]
	S := n.P[0][0] + n.R
	if math.Abs(nu) > gateSigmas*math.Sqrt(S) {
		n.outRow++
		if n.outRow < reanchorAfter {
			return n.steer(now, true)
		}
		// Several in a row: the filter, not the upstreams, is wrong (the
		// oscillator moved more than its class foresaw).
		n.widen(nu, nu/math.Max(at.Sub(n.tSample).Seconds(), 1))
		S = n.P[0][0] + n.R
	}
	n.outRow = 0
	n.update(nu, S)
	n.tSample = at
	n.st = StateTrack
	return n.steer(now, true)
}

// first starts the filter: the phase is the sample's, the frequency the
// one the clock already runs with.
func (n *NTP) first(at time.Time, z float64, now time.Time) Action {
	fs := freqPrior
	if n.cfg.FreqSigma > 0 {
		fs = n.cfg.FreqSigma * 1e-9
	}
	n.s = vec3{z, -n.u, 0}
	n.P = mat3{{n.R, 0, 0}, {0, fs * fs, 0}, {0, 0, driftPrior(n.cfg.Osc)}}
	n.tState, n.tSample = at, at
	n.uBefore, n.uLog = n.u, nil
	n.st = StateTrack
	var step time.Duration
	if x := n.predicted(now)[0]; n.cfg.StepAllowed && math.Abs(x) > sec(ntpStepAbove) {
		step = dur(-x)
		n.s[0] -= x
		n.shiftTime(step)
	}
	a := n.steer(now.Add(step), true)
	a.Step = step
	if step != 0 {
		a.Note = NoteStepped
	}
	return a
}

// steer sets the adjustment: cancel the oscillator's error, remove the
// phase with ntpTau, the phase part within ntpMaxSlew (force: after a
// sample; otherwise at most every ntpSteerEvery).
func (n *NTP) steer(now time.Time, force bool) Action {
	if !force && now.Sub(n.lastU) < ntpSteerEvery {
		return Action{}
	}
	n.lastU = now
	s := n.predicted(now)
	slew := ntpMaxSlew * 1e-9
	phase := math.Max(-slew, math.Min(slew, s[0]/ntpTau.Seconds()))
	u := -(s[1] + s[2]/2) - phase
	m := n.cfg.MaxFreq * 1e-9
	n.setU(now, math.Max(-m, math.Min(m, u)))
	return Action{Freq: n.u * 1e9, SetFreq: true}
}

// Tick keeps steering between samples (the phase correction runs out as
// the phase goes) and notices silence.
func (n *NTP) Tick(now time.Time) Action {
	if n.st == StateInit {
		return Action{}
	}
	if now.Sub(n.tSample) > n.cfg.SilentAfter {
		n.st = StateHoldover
	}
	if now.Sub(n.tState) > ntpMaxHistory {
		n.predict(now.Add(-ntpMaxHistory / 2))
	}
	return n.steer(now, false)
}

// Estimate is the servo's view of the clock at now.
func (n *NTP) Estimate(now time.Time) Estimate {
	if n.st == StateInit {
		return Estimate{OffsetSigma: time.Duration(math.MaxInt64), FreqSigma: math.Inf(1), SinceSample: -1}
	}
	s := n.predicted(now)
	_, P := propagate(n.s, n.P, 0, math.Max(now.Sub(n.tState).Seconds(), 0), n.cfg.Osc)
	e := n.estimate(s, P)
	e.NoiseMeasured, e.SinceSample = true, now.Sub(n.tSample)
	return e
}
