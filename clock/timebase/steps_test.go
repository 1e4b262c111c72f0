package timebase

import (
	"errors"
	"testing"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
)

// stepMark is a CLOCK_MONOTONIC time taken after every step so far (the
// monotonic clock has moved on: a time equal to a step's note is taken for
// before it, as a pulse at that instant may be on either side).
func stepMark() time.Time {
	time.Sleep(time.Millisecond)
	return time.Now()
}

// A pulse on its way while its clock is stepped is dropped; one the
// source saw come after the step, or one it cannot place, is carried.
// Which clock's steps count is the clock the pulse is stamped on: the
// disciplined one, the system clock a slave steps, a slave PHC.
func TestPulsesFromBeforeAStepAreDropped(t *testing.T) {
	host := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	stamp := host.Add(-200 * time.Millisecond)

	// The system clock disciplined: kernel PPS stamps are on it.
	sys := &stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC, host: host}}
	tb := New(sys, leap.Builtin())
	before := time.Now()
	if _, err := tb.FromClockAfter(Realtime, stamp, before); err != nil {
		t.Fatalf("no step yet: %v", err)
	}
	if err := tb.Step(-300 * time.Millisecond); err != nil || len(sys.steps) != 1 {
		t.Fatalf("step: %v %v", err, sys.steps)
	}
	after := stepMark()
	if _, err := tb.FromClockAfter(Realtime, stamp, before); !errors.Is(err, ErrBeforeStep) {
		t.Errorf("a pulse the source last looked for before the step: %v", err)
	}
	if i, err := tb.FromClockAfter(Realtime, stamp, after); err != nil || !i.Clock().Equal(stamp) {
		t.Errorf("a pulse after the step: %v %v", i.Clock(), err)
	}
	if _, err := tb.FromClockAfter(Realtime, stamp, time.Time{}); err != nil {
		t.Errorf("a pulse the source cannot place: %v", err)
	}

	// A PHC disciplined: its own steps count for EXTTS stamps on it, not
	// for kernel PPS stamps (carried by a comparison made after the
	// step), until a slave steps the system clock.
	phc := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: host, phcOff: 37 * time.Second}}
	tb = New(phc, leap.Builtin())
	before = time.Now()
	if err := tb.Step(time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.FromClockAfter("/dev/ptp0", stamp.Add(37*time.Second), before); !errors.Is(err, ErrBeforeStep) {
		t.Errorf("an EXTTS pulse on the stepped PHC: %v", err)
	}
	if _, err := tb.FromClockAfter(Realtime, stamp, before); err != nil {
		t.Errorf("a kernel PPS pulse, CLOCK_REALTIME not stepped: %v", err)
	}
	phc.phcOff -= 250 * time.Millisecond // the system clock 250 ms ahead of the PHC's UTC
	sys = &stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC, host: host}}
	s := NewSlave(sys, tb)
	before = stepMark()
	if _, err := s.Step(); err != nil || len(sys.steps) != 1 {
		t.Fatalf("slave step: %v %v", err, sys.steps)
	}
	if _, err := tb.FromClockAfter(Realtime, stamp, before); !errors.Is(err, ErrBeforeStep) {
		t.Errorf("a kernel PPS pulse across the slave's step of CLOCK_REALTIME: %v", err)
	}
	if _, err := tb.FromClockAfter(Realtime, stamp, stepMark()); err != nil {
		t.Errorf("a kernel PPS pulse after it: %v", err)
	}

	// A slave PHC moved with its master: EXTTS stamps on the slave.
	sim, _, slave, ps := pair(t)
	run(sim, ps, 30)
	before = stepMark()
	ps.MasterStepped(time.Second)
	if !ps.stepLog.since(slave.name, before) {
		t.Error("the slave's step with its master was not noted")
	}
	if ps.stepLog.since("/dev/ptp0", before) {
		t.Error("the master's step noted by the slave")
	}
}

// The kernel's own step of CLOCK_REALTIME at a leap second: a pulse within
// a second of the leap's midnight is not carried onto a PHC (its stamp and
// the comparison that carries it fall on either side of the step); away
// from it, or onto the system clock itself, it is.
func TestPulsesAtALeapSecondOntoAPHC(t *testing.T) {
	mid := time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC) // a second was inserted before it
	phc := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: mid, phcOff: 37 * time.Second}}
	tb := New(phc, leap.Builtin())
	for _, c := range []struct {
		at   time.Duration
		drop bool
	}{{-2 * time.Second, false}, {-time.Second, true}, {-time.Millisecond, true}, {time.Microsecond, true}, {time.Second, true}, {1001 * time.Millisecond, false}} {
		_, err := tb.FromClockAfter(Realtime, mid.Add(c.at), time.Time{})
		if errors.Is(err, ErrBeforeStep) != c.drop || (!c.drop && err != nil) {
			t.Errorf("a pulse %v from the midnight: %v", c.at, err)
		}
	}
	if _, err := tb.FromClockAfter(Realtime, mid.AddDate(0, 0, 1), time.Time{}); err != nil {
		t.Errorf("a midnight without a leap second: %v", err)
	}
	sys := &stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC, host: mid}}
	if _, err := New(sys, leap.Builtin()).FromClockAfter(Realtime, mid, time.Time{}); err != nil {
		t.Errorf("onto the system clock: %v", err)
	}
}
