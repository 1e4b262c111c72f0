package timebase

import (
	"errors"
	"sync"
	"time"
)

// Pulses stamped before their clock was stepped.
//
// A pulse reaches the discipline some time after its clock stamped it: the
// kernel keeps it (a PPS device's last event, a PHC's EXTTS queue) until
// the source fetches it, and the source's channel until the daemon's loop
// takes it. A step of that clock in between leaves the stamp on the old
// scale, off by the whole step, and nothing in the stamp says so: the
// pairer moves only the edges it already holds (refclock.Pairer.Shift).
// In the kernel lab a guest starved for seconds at its start handed over
// such pulses after the first step, and the start took one for a second
// step, 300 ms the wrong way (docs/hardware.md).
//
// The source knows the other half: when it last saw that no newer pulse
// was waiting (pps.Edge.After), on CLOCK_MONOTONIC, which no step moves.
// A pulse that came after the end of its clock's last step is on the new
// scale; one the source cannot place after it is dropped. That costs
// about one pulse a step (the one the source was already waiting for),
// never a wrong sample.

// ErrBeforeStep: a timestamp that may have been taken before its clock's
// last step (see FromClockAfter).
var ErrBeforeStep = errors.New("stamped before its clock was stepped")

// stepLog is when each clock a timestamp can be taken on last finished a
// step, by the name timestamps give it (Realtime, a PHC's device), on
// CLOCK_MONOTONIC. Its keys are the configured clocks, no more.
type stepLog struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (l *stepLog) note(clk string) {
	now := time.Now() // after the step returned: a later pulse is on the new scale
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	l.last[clk] = now
}

// since reports whether clk finished a step at or after after.
func (l *stepLog) since(clk string, after time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.last[clk]
	return ok && !s.Before(after)
}

// stampName is the name timestamps on the disciplined clock give it:
// Realtime for the system clock (kernel PPS, software stamps).
func (tb *Timebase) stampName() string {
	if tb.host == nil && tb.cmp == nil {
		return Realtime
	}
	return tb.clk.Name()
}

// Step steps the disciplined clock by d and notes when it did, even when
// the step failed (the clock may have moved; a pulse dropped for nothing
// costs less than one taken on the wrong scale).
func (tb *Timebase) Step(d time.Duration) error { return tb.steps.step(tb.clk, tb.stampName(), d) }

// step steps c (the disciplined clock, or a slave: the system clock, a
// slave PHC), which timestamps name clk, and notes it.
func (l *stepLog) step(c interface{ Step(time.Duration) error }, clk string, d time.Duration) error {
	err := c.Step(d)
	l.note(clk)
	return err
}

// FromClockAfter is FromClock for a pulse the source saw come after the
// monotonic time after (pps.Edge.After; zero when the source cannot tell,
// and the stamp is taken as it is): ErrBeforeStep when clk was stepped
// since, so that the stamp may be on either side of the step.
//
// The kernel steps CLOCK_REALTIME itself at a leap second, at its first
// tick after the midnight (often the one the pulse's own interrupt
// brings): the pulse of the midnight is stamped on the day before's count
// and may be carried onto a PHC by a comparison made after the step, a
// second off. A pulse on CLOCK_REALTIME within a second of a leap
// second's midnight is not carried onto a PHC (a UTC clock's discipline
// skips the leap's seconds itself: discipline.Label).
func (tb *Timebase) FromClockAfter(clk string, t, after time.Time) (Instant, error) {
	if !after.IsZero() && tb.steps.since(clk, after) {
		return Instant{}, ErrBeforeStep
	}
	if clk == Realtime && tb.cmp != nil && (tb.table.NearLeap(t, time.Second) || tb.table.NearLeap(t.Add(time.Second), time.Second)) {
		return Instant{}, ErrBeforeStep
	}
	return tb.FromClock(clk, t)
}
