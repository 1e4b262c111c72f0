package timebase

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"sitegm/clock"
	"sitegm/clock/servo"
	"sitegm/event"
)

// A PHCSlave keeps a second PTP hardware clock (another NIC's, or the
// other port of an i350) on the disciplined PHC, so that the ports behind
// it take hardware timestamps that are carried onto the one clock
// sitegm serves. phc2sys does this as a separate process; here it is one
// more clock the discipline's second drives.
//
// Each Steer compares the two clocks through CLOCK_REALTIME (master,
// slave, master: the master's offset interpolated to the slave's reading,
// as facebook/time's phc.OffsetBetweenDevices pairs them; each reading
// the driver's best of PTP_SYS_OFFSET_PRECISE, _EXTENDED, basic) and
// steers the slave with its own Kalman servo over a TCXO model. The slave
// is stepped before its first lock when it is more than slaveStepAt off
// (phc2sys's first_step_threshold), and again when someone else steps it
// (a jump the servo did not predict): unlike phc2sys, which then slews, a
// slave is stepped back at once, because every stamp of its ports is off
// by the jump until it is corrected. The disciplined PHC is never touched.
//
// A stamp on the slave is carried onto the master by the servo's estimate
// of the slave's offset at the stamp's time (not by trusting the slave to
// be on time), within a bound (3 sigma of that estimate plus half the
// reading's window); a slave without a reading for slaveStale is not
// carried at all: its ports then send nothing timed, rather than another
// clock's time.
type PHCSlave struct {
	dev    slaveClock
	master comparer
	// stepLog notes the slave's steps (Timebase.FromClockAfter).
	stepLog *stepLog
	servo   *servo.Kalman
	ev      event.List
	state   string
	snap    atomic.Pointer[SlaveStatus]
	freq    float64 // the slave's adjustment, ppb
	steps   uint64
	fails   uint64
	jumps   uint64
	lastE   string
}

// slaveClock is what a slave PHC must offer: steering and a comparison
// with CLOCK_REALTIME (clock.PHC).
type slaveClock interface {
	clock.Clock
	comparer
}

// Slave PHC states.
const (
	SlaveFreerun   = "FREERUN"   // not measured yet
	SlaveAcquiring = "ACQUIRING" // stepped or starting: the servo learns its frequency
	SlaveLocked    = "LOCKED"    // the servo tracks it
	SlaveFault     = "FAULT"     // the last reading or adjustment failed
)

const (
	// slaveStepAt: a slave further off than this is stepped rather than
	// slewed (phc2sys's first_step_threshold, 20 µs).
	slaveStepAt = 20 * time.Microsecond
	// slaveStale: stamps are carried with a reading at most this old; a
	// slave read once a second that misses a few is still known to its
	// servo's growing bound, one that fails for longer is not served.
	slaveStale = 10 * time.Second
	// slaveJumpMin: a reading further from the prediction than this (and
	// than ten reading windows) was a step by someone else.
	slaveJumpMin = 20 * time.Microsecond
)

// ErrSlaveUnknown: a stamp on a slave PHC that cannot be carried onto the
// disciplined clock (never measured, or its readings failed too long).
var ErrSlaveUnknown = errors.New("slave PHC not measured")

// SlaveStatus is a slave PHC as the status document shows it; it is also
// the snapshot that stamps are carried with.
type SlaveStatus struct {
	Device string
	State  string
	// Offset is the slave minus the disciplined clock at At (slave time),
	// Rate how that moves per second; Bound the error of carrying a stamp
	// at At, BoundRate its growth per second.
	At               time.Time
	Offset           time.Duration
	Rate             float64
	Bound, BoundRate time.Duration
	Window           time.Duration // the last reading's uncertainty
	Freq             float64       // the slave's frequency adjustment, ppb
	Steps, Jumps     uint64
	Failures         uint64
	LastError        string
}

// NewPHCSlave slaves dev to the disciplined clock of tb, which must be a
// PHC (nil otherwise).
func NewPHCSlave(dev slaveClock, tb *Timebase) *PHCSlave {
	if tb.cmp == nil || dev == nil {
		return nil
	}
	s := &PHCSlave{dev: dev, master: tb.cmp, stepLog: &tb.steps, state: SlaveFreerun}
	s.publish(SlaveStatus{})
	return s
}

// Name is the slave's device.
func (s *PHCSlave) Name() string { return s.dev.Name() }

// Compare is the slave minus the master from three readings against
// CLOCK_REALTIME, master (a), slave (b), master (c): the master's offset
// from the system clock interpolated to b's system time, so that the
// system clock only has to hold still for the microseconds between a
// and c. window is the pairing's uncertainty: b's bracket plus the wider
// of a's and c's.
func Compare(a, b, c clock.SysOffset) (off, window time.Duration, err error) {
	ma, mc := a.PHC.Sub(a.System), c.PHC.Sub(c.System)
	span := c.System.Sub(a.System)
	if span <= 0 || span > 100*time.Millisecond || (mc-ma).Abs() > 100*time.Microsecond {
		// CLOCK_REALTIME was stepped (or the thread stalled) between the
		// readings: the pairing means nothing.
		return 0, 0, fmt.Errorf("the system clock moved %v in %v between the readings", mc-ma, span)
	}
	f := float64(b.System.Sub(a.System)) / float64(span)
	m := ma + time.Duration(f*float64(mc-ma))
	return b.PHC.Sub(b.System) - m, b.Window + max(a.Window, c.Window), nil
}

// measure reads master, slave, master.
func (s *PHCSlave) measure() (off, window time.Duration, at time.Time, err error) {
	a, err := s.master.SysOffset()
	if err != nil {
		return 0, 0, at, fmt.Errorf("read the disciplined PHC: %w", err)
	}
	b, err := s.dev.SysOffset()
	if err != nil {
		return 0, 0, at, fmt.Errorf("read %s: %w", s.dev.Name(), err)
	}
	c, err := s.master.SysOffset()
	if err != nil {
		return 0, 0, at, fmt.Errorf("read the disciplined PHC: %w", err)
	}
	off, window, err = Compare(a, b, c)
	return off, window, b.PHC, err
}

// Steer takes one reading and steers the slave (about once a second, from
// one goroutine); the events it returns are what changed.
func (s *PHCSlave) Steer() []event.Event {
	off, window, at, err := s.measure()
	if err == nil {
		err = s.take(off, window, at)
	}
	if err != nil {
		s.fails++
		s.lastE = err.Error()
		if s.state != SlaveFault {
			s.ev.Emit(slog.LevelWarn, "phc_slave", "slave PHC failed: its ports' stamps are carried on its last reading, then not at all",
				"phc", s.dev.Name(), "phc_state", SlaveFault, "error", err.Error())
			s.state = SlaveFault
		}
		s.publish(*s.snap.Load())
	}
	return s.ev.Take()
}

// take feeds one reading to the servo and applies what it says.
func (s *PHCSlave) take(off, window time.Duration, at time.Time) error {
	var step time.Duration
	switch {
	case s.servo != nil && s.servo.State() >= servo.StateTrack:
		// A reading the prediction cannot explain: someone else stepped
		// the slave. The reading itself is exact to its window, so the
		// slave is stepped back by it, and its servo starts afresh from
		// the frequency it ran with.
		if miss := off - s.servo.Estimate(at).Offset; miss.Abs() > max(slaveJumpMin, 10*window) {
			s.jumps++
			s.ev.Emit(slog.LevelWarn, "phc_slave_jumped", "slave PHC was stepped by someone else: stepped back",
				"phc", s.dev.Name(), "jump_ns", int64(miss))
			step = -off
		}
	case s.servo == nil && off.Abs() > slaveStepAt:
		step = -off // the first reading: stepped onto the master, not slewed
	case s.servo != nil && off.Abs() > time.Millisecond:
		// Still acquiring, and further off than any oscillator drifts in
		// a second: stepped meanwhile (by someone else, or a master step
		// not told of). Taken as a first reading again.
		step = -off
	}
	if step != 0 {
		if err := s.stepLog.step(s.dev, s.dev.Name(), step); err != nil {
			s.servo = nil
			return fmt.Errorf("step %s: %w", s.dev.Name(), err)
		}
		s.stepped(step)
		s.servo = nil
		// The reading, moved by the step: the slave is on the master now,
		// to the reading's window.
		at, off = at.Add(step), off+step
	}
	if s.servo == nil {
		freq, err := s.dev.Frequency()
		if err != nil {
			return fmt.Errorf("read %s's frequency: %w", s.dev.Name(), err)
		}
		s.freq = freq
		cfg := servo.Config{Osc: clock.TCXO, MeasNoise: max(window/2, 50*time.Nanosecond),
			MaxFreq: s.dev.MaxFrequency(), StepThreshold: slaveStepAt,
			// Steps by someone else are handled above; the servo's own
			// guard would hold over a real one for seconds.
			JumpThreshold: time.Second, TimeConstant: 4 * time.Second}
		if s.jumps > 0 {
			// It ran on this frequency before the jump: start from it.
			cfg.InitialFreq, cfg.InitialFreqSigma = freq, 1000
		}
		s.servo = servo.NewKalman(cfg)
	}
	a := s.servo.Sample(at, off, at)
	if a.Step != 0 {
		if err := s.stepLog.step(s.dev, s.dev.Name(), a.Step); err != nil {
			s.servo = nil
			return fmt.Errorf("step %s: %w", s.dev.Name(), err)
		}
		s.stepped(a.Step)
	}
	if a.SetFreq {
		if err := s.dev.SetFrequency(a.Freq); err != nil {
			return fmt.Errorf("steer %s: %w", s.dev.Name(), err)
		}
		s.freq = a.Freq
	}
	// The snapshot stamps are carried with: the estimate just after the
	// adjustment, and a second later. An estimate not yet known to a
	// second carries nothing.
	now := at.Add(a.Step)
	e0, e1 := s.servo.Estimate(now), s.servo.Estimate(now.Add(time.Second))
	if e1.OffsetSigma > time.Second/3 {
		s.setState(SlaveAcquiring)
		s.publish(SlaveStatus{Window: window})
		return nil
	}
	state := SlaveAcquiring
	if s.servo.State() == servo.StateTrack {
		state = SlaveLocked
	}
	s.setState(state)
	b0, b1 := 3*e0.OffsetSigma+window/2, 3*e1.OffsetSigma+window/2
	s.publish(SlaveStatus{At: now, Offset: e0.Offset, Rate: (e1.Offset - e0.Offset).Seconds(),
		Bound: b0, BoundRate: max(b1-b0, 0), Window: window})
	return nil
}

func (s *PHCSlave) stepped(d time.Duration) {
	s.steps++
	s.ev.Emit(slog.LevelInfo, "phc_slave_stepped", "slave PHC stepped onto the disciplined clock",
		"phc", s.dev.Name(), "step_ns", int64(d))
}

// setState moves to state, with an event when it changes.
func (s *PHCSlave) setState(state string) {
	if state == s.state {
		return
	}
	lvl := slog.LevelInfo
	if state == SlaveLocked {
		lvl = event.Notice
	}
	s.ev.Emit(lvl, "phc_slave", "slave PHC "+state, "phc", s.dev.Name(), "phc_state", state, "phc_state_prev", s.state)
	s.state = state
}

// MasterStepped steps the slave with the disciplined clock, at once (the
// daemon calls it right after it stepped the master: onto GNSS time at
// the first lock, an operator's resync), so that the two stay together
// and the step is not taken for one by someone else. The servo's
// estimate moves with it.
func (s *PHCSlave) MasterStepped(d time.Duration) []event.Event {
	if err := s.stepLog.step(s.dev, s.dev.Name(), d); err != nil {
		s.fails++
		s.lastE = fmt.Sprintf("step %s with the disciplined clock: %v", s.dev.Name(), err)
		s.servo = nil // the next reading finds it where it is
		s.ev.Emit(slog.LevelWarn, "phc_slave", "slave PHC could not follow the disciplined clock's step",
			"phc", s.dev.Name(), "error", s.lastE)
		s.publish(SlaveStatus{})
		return s.ev.Take()
	}
	if s.servo != nil {
		// Both clocks moved by d: the slave's offset is unchanged, but
		// the servo's time axis (the slave's clock) moved by d.
		s.servo = nil
		s.setState(SlaveAcquiring)
		s.publish(SlaveStatus{})
	}
	return s.ev.Take()
}

func (s *PHCSlave) publish(st SlaveStatus) {
	st.Device, st.State, st.Freq = s.dev.Name(), s.state, s.freq
	st.Steps, st.Jumps, st.Failures, st.LastError = s.steps, s.jumps, s.fails, s.lastE
	s.snap.Store(&st)
}

// Status is the slave as last measured (safe from any goroutine).
func (s *PHCSlave) Status() SlaveStatus { return *s.snap.Load() }

// ToMaster carries a time read or stamped on the slave onto the
// disciplined clock, with the bound of the carrying.
func (s *PHCSlave) ToMaster(t time.Time) (time.Time, time.Duration, error) {
	st := s.snap.Load()
	age := t.Sub(st.At)
	if st.At.IsZero() || age.Abs() > slaveStale {
		return time.Time{}, 0, fmt.Errorf("%w: %s (state %s)", ErrSlaveUnknown, s.dev.Name(), st.State)
	}
	off := st.Offset + time.Duration(st.Rate*age.Seconds())
	return t.Add(-off), st.Bound + time.Duration(float64(st.BoundRate)*age.Abs().Seconds()), nil
}
