package servo

import (
	"time"

	fbservo "github.com/facebook/time/servo"
)

// PI is the baseline: facebook/time's port of linuxptp's PI servo
// (pi.c), configured as ptp4l/phc2sys configure it by default for one
// sample a second: kp 0.7, ki 0.3, step on the first update when the offset
// exceeds 20 µs (first_step_threshold), never after (step_threshold 0).
// In holdover it keeps its integrator (the frequency part of its output
// without the proportional term): a kinder baseline than linuxptp, which
// keeps the last output, proportional term and all.
type PI struct {
	pi      *fbservo.PiServo
	st      State
	last    float64 // last frequency set, ppb
	tSample time.Time
	tLast   time.Time
	off     time.Duration
	integ   float64 // the integrator, ppb to set
	resync  bool
}

// piKp is the proportional gain DefaultPiServoCfg gives at one sample a
// second (kp = 0.7 * 1^0).
const piKp = 0.7

// NewPI builds the baseline servo; initialFreq is the adjustment to start
// from (ppb), maxFreq the clock's limit.
func NewPI(initialFreq, maxFreq float64) *PI {
	cfg := fbservo.DefaultServoConfig()
	cfg.FirstUpdate = true
	cfg.FirstStepThreshold = 20000
	pi := fbservo.NewPiServo(cfg, fbservo.DefaultPiServoCfg(), -initialFreq)
	pi.SyncInterval(1)
	pi.SetMaxFreq(maxFreq)
	return &PI{pi: pi, last: initialFreq}
}

// Sample implements Servo. linuxptp's convention: offset is local minus
// master and the servo returns the correction with the opposite sign of the
// frequency to set.
func (p *PI) Sample(now time.Time, offset time.Duration, _ time.Time) Action {
	if p.resync {
		p.resync = false
		p.st = StateTrack
		p.tSample, p.tLast = now, now
		return Action{Step: -offset, Freq: p.last, SetFreq: true, Note: NoteStepped}
	}
	ppb, st := p.pi.Sample(int64(offset), uint64(now.UnixNano()))
	p.tSample, p.tLast, p.off = now, now, offset
	switch st {
	case fbservo.StateJump:
		p.st = StateTrack
		p.last = -ppb
		p.integ = p.last
		// After a step linuxptp's servo sees the next offset from zero.
		return Action{Step: -offset, Freq: p.last, SetFreq: true, Note: NoteStepped}
	case fbservo.StateLocked:
		p.st = StateTrack
		p.last = -ppb
		p.integ = -(ppb - piKp*float64(offset))
		return Action{Freq: p.last, SetFreq: true}
	}
	if p.st == StateInit {
		p.st = StateStart
	}
	return Action{}
}

// Tick implements Servo.
func (p *PI) Tick(now time.Time) Action {
	p.tLast = now
	if p.st == StateTrack && now.Sub(p.tSample).Seconds() >= holdoverGap {
		p.st = StateHoldover
		p.last = p.integ
		return Action{Freq: p.integ, SetFreq: true}
	}
	return Action{}
}

// Resync implements Servo.
func (p *PI) Resync() { p.resync = true }

// Restart implements Servo: the PI servo has no start to learn in and
// never reports a jump; it steps onto the next sample.
func (p *PI) Restart() { p.resync = true }

// State implements Servo.
func (p *PI) State() State { return p.st }

// Estimate implements Servo: the PI servo has no error model; it reports its
// last offset and frequency.
func (p *PI) Estimate(now time.Time) Estimate {
	return Estimate{Offset: p.off, Freq: p.last, SinceSample: now.Sub(p.tSample)}
}
