package timebase

import (
	"errors"
	"log/slog"
	"time"

	"sitegm/clock"
	"sitegm/clock/servo"
	"sitegm/event"
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
	leap   int           // the kernel's leap second flag as last set
	// rearmAt: not before then (system clock) is the flag set again
	// after a step cleared it.
	rearmAt time.Time
	// leapWarned: setting the flag failed and was logged (once until it
	// succeeds: it is retried each second).
	leapWarned bool
	// watch follows the armed leap second in the kernel (clock.LeapWatch),
	// and verdict is its last word, for Steer to report.
	watch   clock.LeapWatch
	verdict clock.LeapVerdict
	// read is the system clock's time at the last reading.
	read time.Time
}

// leapError is the kernel refusing the leap second flag.
type leapError struct{ err error }

func (e leapError) Error() string { return "kernel leap second flag: " + e.err.Error() }
func (e leapError) Unwrap() error { return e.err }

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
func (s *Slave) Step() (time.Duration, error) { return s.step(nil, nil) }

// step is Step with hold called just before the system clock is stepped
// and done just after (nil: none).
func (s *Slave) step(hold, done func()) (time.Duration, error) {
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
	s.read = so.System
	utc, leap60 := s.tb.At(so.PHC).UTC()
	// The kernel forgets an armed leap second when something else resets
	// its NTP state (a step by another program, a change of clocksource):
	// clear the flag, set it again 1.5 s later. A leap it missed all the
	// same is stepped here, half a second after its instant (a second
	// between the PHC's UTC and the system clock would otherwise be a
	// jump to the servo's guard). clock.LeapWatch.
	if lw, ok := s.sys.(clock.LeapWatcher); ok && s.watch.Active() {
		if k, err := lw.WatchLeap(); err == nil {
			v := s.watch.Look(so.System, k, s.leap != 0 && !so.System.Before(s.rearmAt))
			switch {
			case v.Rearm:
				if lw.SetLeap(0) == nil {
					s.leap, s.rearmAt = 0, so.System.Add(1500*time.Millisecond)
				}
			case v.Step != 0:
				if hold != nil {
					hold()
					defer done()
				}
				if err := s.tb.steps.step(s.sys, Realtime, v.Step); err != nil {
					return 0, err
				}
			}
			if v.Rearm || v.Step != 0 || v.Moved != 0 {
				s.verdict = v
			}
		}
	}
	// The kernel inserts or deletes a leap second in CLOCK_REALTIME
	// itself, as it does for discipline = "system": armed (adjtimex
	// STA_INS / STA_DEL) for the whole day that ends with one, cleared
	// after. Otherwise the PHC's UTC would move a second against the
	// system clock at midnight and the servo would step it, a second late.
	if p := s.tb.table.Pending(utc); p != s.leap && !so.System.Before(s.rearmAt) {
		if ls, ok := s.sys.(clock.LeapSetter); ok {
			if err := ls.SetLeap(p); err != nil {
				return 0, leapError{err}
			}
		}
		s.leap, s.leapWarned = p, false
		if p != 0 {
			s.watch.Arm(so.System, p)
		} else {
			s.watch.Cleared(so.System)
		}
	}
	if leap60 || s.tb.table.NearLeap(utc, 2*time.Second) {
		return 0, nil // no comparison is unambiguous around the leap
	}
	s.window = so.Window
	a := s.servo.Sample(so.System, so.System.Sub(utc), so.System)
	if a.Step != 0 {
		if hold != nil {
			hold()
			defer done()
		}
		if err := s.tb.steps.step(s.sys, Realtime, a.Step); err != nil {
			return 0, err
		}
		// The kernel forgets a scheduled leap second at a step (see
		// discipline.Tick): clear the flag now, set it again 1.5 s later.
		if ls, ok := s.sys.(clock.LeapSetter); ok && s.leap != 0 && ls.SetLeap(0) == nil {
			s.leap, s.rearmAt = 0, so.System.Add(a.Step+1500*time.Millisecond)
		}
	}
	if a.SetFreq {
		if err := s.sys.SetFrequency(a.Freq); err != nil {
			return a.Step, err
		}
	}
	return a.Step, nil
}

// Steer is Step as the daemon runs it each second: what it did, as
// events (a step is a NOTICE; a leap second flag the kernel refused, a
// WARNING once until it is taken). A failed reading is the PHC's, which
// the timebase's own reads report. hold runs just before a step and done
// just after it: what stamps on CLOCK_REALTIME and carries the stamps
// onto the PHC must not answer across it. phc is what the kernel would
// be told of the PHC (quality.Machine.Kernel): after a reading, the
// kernel is told it of the system clock, with the system clock's own
// bound against the PHC added (kernelSync).
func (s *Slave) Steer(hold, done func(), phc clock.KernelSync) []event.Event {
	var l event.List
	step, err := s.step(hold, done)
	if sr, ok := s.sys.(clock.SyncReporter); ok && err == nil {
		if err := sr.ReportSync(s.kernelSync(phc)); err != nil {
			l.Emit(slog.LevelError, "kernel_state_error", "the kernel refused the system clock's synchronization status", "error", err.Error())
		}
	}
	var le leapError
	switch {
	case errors.As(err, &le) && !s.leapWarned:
		s.leapWarned = true
		l.Emit(slog.LevelWarn, "system_leap_error", "the kernel refused the system clock's leap second flag: it will be a second off after the leap until the servo steps it", "error", err.Error())
	case err == nil && step != 0:
		l.Emit(event.Notice, "system_stepped", "system clock stepped onto the PHC", "step", step.String())
	}
	s.verdict.Report(&l, "the system clock")
	s.verdict = clock.LeapVerdict{}
	return l.Take()
}

// Offset is the system clock's estimated offset from the PHC (as UTC) and
// the bound of it: |offset| + 3 sigma, plus half the bracket of the
// readings it was measured with; bound -1 while unknown, ok false before
// the first reading.
func (s *Slave) Offset(now time.Time) (offset, bound time.Duration, ok bool) {
	e, bound, ok := s.estimate(now)
	return e.Offset, bound, ok
}

// estimate is the servo's estimate at now and the bound Offset gives.
func (s *Slave) estimate(now time.Time) (e servo.Estimate, bound time.Duration, ok bool) {
	if s == nil || s.servo == nil {
		return e, 0, false
	}
	e = s.servo.Estimate(now)
	if e.OffsetSigma == time.Duration(1<<63-1) {
		return e, -1, true
	}
	return e, e.Offset.Abs() + 3*e.OffsetSigma + s.window/2, true
}

// kernelSync is what the kernel is told of the system clock, given what
// it would be told of the PHC: synchronized while the PHC is and the
// system clock's bound against it is known and within the servo's step
// threshold (1 ms: beyond, the servo is still on its way), with that
// bound added to the PHC's and the servo's sigma to its estimate.
func (s *Slave) kernelSync(phc clock.KernelSync) clock.KernelSync {
	e, b, ok := s.estimate(s.read)
	if !phc.Synced || !ok || b < 0 || b > time.Millisecond {
		return clock.KernelSync{}
	}
	return clock.KernelSync{Synced: true, MaxError: phc.MaxError + b, EstError: phc.EstError + e.OffsetSigma}
}
