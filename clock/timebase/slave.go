package timebase

import (
	"time"

	"sitegm/clock"
	"sitegm/clock/servo"
)

// Slave keeps CLOCK_REALTIME on the disciplined PHC (clock.sync_system),
// as phc2sys does: the PHC counts TAI, the system clock UTC, and the
// system clock follows through its own servo (the same Kalman servo, fed
// with PTP_SYS_OFFSET_PRECISE, _EXTENDED or basic readings, best of
// several; clock.PHC.SysOffset).
type Slave struct {
	sys    clock.Clock
	phc    comparer
	tb     *Timebase
	servo  *servo.Kalman
	window time.Duration // the last reading's bracket
}

// NewSlave slaves sys to the disciplined clock of tb, which must be a
// PHC (nil otherwise).
func NewSlave(sys clock.Clock, tb *Timebase) *Slave {
	if tb.cmp == nil || sys == nil {
		return nil
	}
	return &Slave{sys: sys, phc: tb.cmp, tb: tb}
}

// Step takes one reading and steers the system clock; it returns the
// step it made (0 for none). A failed reading steers nothing.
func (s *Slave) Step() (time.Duration, error) {
	so, err := s.phc.SysOffset()
	if err != nil {
		return 0, err
	}
	if s.servo == nil {
		// The step threshold is 1 ms: the system clock carries
		// millisecond NTP and logs, a microsecond error is slewed.
		s.servo = servo.NewKalman(servo.Config{Osc: clock.TCXO, MeasNoise: max(so.Window, time.Microsecond),
			MaxFreq: clock.SystemMaxPPB, StepThreshold: time.Millisecond})
	}
	utc, _ := s.tb.At(so.PHC).UTC()
	s.window = so.Window
	a := s.servo.Sample(so.System, so.System.Sub(utc), so.System)
	if a.Step != 0 {
		if err := s.sys.Step(a.Step); err != nil {
			return 0, err
		}
	}
	if a.SetFreq {
		if err := s.sys.SetFrequency(a.Freq); err != nil {
			return a.Step, err
		}
	}
	return a.Step, nil
}

// Offset is the system clock's estimated offset from the PHC (as UTC) and
// the bound of it: |offset| + 3 sigma, plus half the bracket of the
// readings it was measured with; bound -1 while unknown, ok false before
// the first reading.
func (s *Slave) Offset(now time.Time) (offset, bound time.Duration, ok bool) {
	if s == nil || s.servo == nil {
		return 0, 0, false
	}
	e := s.servo.Estimate(now)
	if e.OffsetSigma == time.Duration(1<<63-1) {
		return e.Offset, -1, true
	}
	return e.Offset, e.Offset.Abs() + 3*e.OffsetSigma + s.window/2, true
}
