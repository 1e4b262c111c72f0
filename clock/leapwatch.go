package clock

import (
	"fmt"
	"log/slog"
	"time"

	"sitegm/event"
)

// LeapWatch follows a leap second a kernel clock applies itself
// (CLOCK_REALTIME armed with STA_INS/STA_DEL). Linux forgets a scheduled
// leap second whenever it resets its NTP state: a clock's own steps are
// known to whoever made them, but a step by another program or a change
// of clocksource is not (the kernel lab lost an insertion so, with no
// step anywhere). So whoever arms the flag looks at the kernel each tick
// while it is armed (LeapWatcher) and hands the look to Look, which says
// to arm again after a reset and, once the leap is past, checks by the
// kernel's TAI offset that it happened, or says by how much to step the
// clock because it did not. Pure logic: the look is the caller's.
type LeapWatch struct {
	sign int // the leap armed: +1 insert, -1 delete; 0 none watched
	// instant is where the kernel applies it, on the clock: the midnight
	// that ends the day (insert: the clock reads it, and goes back a
	// second) or a second before (delete: it reads 23:59:59, and goes on
	// to the midnight).
	instant time.Time
	tai     int  // the kernel's TAI-UTC offset seen while armed
	seen    bool // tai holds a look
	// rearmed: Look said to arm again, and no look since found the flag
	// in place. A Rearm then is a Repeat: the arming did not take (a flag
	// the kernel or another program keeps refusing is armed again every
	// second and a half, told once). Whether it took, not how long ago it
	// was said, tells a refusal from a new reset: two clocksource changes
	// are both told however close (a time window of 5 s hid the second of
	// two the kernel lab made 5 s apart).
	rearmed bool
}

// LeapVerifyAfter is how long after the instant the check waits: the
// kernel applies the leap at the tick that crosses it, a few ms late.
const LeapVerifyAfter = 500 * time.Millisecond

// LeapVerifyWithin bounds the check: a look later than this after the
// instant (a stalled process) judges nothing.
const LeapVerifyWithin = 5 * time.Second

// Arm starts watching the leap sign armed at the clock's UTC time now
// (again for the same leap: nothing changes).
func (w *LeapWatch) Arm(now time.Time, sign int) {
	if sign == 0 || sign == w.sign {
		return
	}
	y, m, day := now.UTC().Date()
	instant := time.Date(y, m, day+1, 0, 0, 0, 0, time.UTC)
	if sign < 0 {
		instant = instant.Add(-time.Second)
	}
	*w = LeapWatch{sign: sign, instant: instant}
}

// Cleared is told the flag was cleared for good at the clock's UTC time
// now: before the instant the leap was withdrawn, and there is nothing
// to check; after it, the check is still to come.
func (w *LeapWatch) Cleared(now time.Time) {
	if now.Before(w.instant) {
		*w = LeapWatch{}
	}
}

// Active says whether looks are wanted.
func (w *LeapWatch) Active() bool { return w.sign != 0 }

// LeapVerdict is what a look calls for.
type LeapVerdict struct {
	// Rearm: the kernel forgot the armed leap, or another program
	// cleared or changed the flag; clear it and set it again once the
	// kernel's once-a-second state machine has seen it cleared. Repeat:
	// no look found the flag in place since the previous Rearm.
	Rearm, Repeat bool
	// Step: the leap was missed; step the clock by this.
	Step time.Duration
	// Moved: the TAI offset moved by something other than the leap
	// (another program set it): whether it was applied cannot be told.
	Moved int
	// Sign is the leap the verdict is about, and Midnight the one it
	// happens at (the end of its day).
	Sign     int
	Midnight time.Time
}

// Look judges a look k at the kernel at the clock's UTC time now. armed:
// the flag is set now (false while it is being armed again, and just
// after the caller's own step, whose reset the caller answers itself).
func (w *LeapWatch) Look(now time.Time, k KernelLeap, armed bool) LeapVerdict {
	v := LeapVerdict{Sign: w.sign, Midnight: w.instant}
	if w.sign < 0 {
		v.Midnight = w.instant.Add(time.Second)
	}
	switch {
	case w.sign == 0:
	case now.Before(w.instant):
		switch {
		case !armed:
			w.seen = false // the next look after the flag is set again counts
		case k.Forgot || k.Flag != w.sign:
			v.Rearm, v.Repeat, w.seen = true, w.rearmed, false
			w.rearmed = true
		default:
			w.tai, w.seen, w.rearmed = k.TAI, true, false
		}
	case now.Before(w.instant.Add(LeapVerifyAfter)):
	default:
		tai, seen, late := w.tai, w.seen, now.Sub(w.instant) > LeapVerifyWithin
		*w = LeapWatch{}
		switch {
		case !seen || late:
		case k.TAI-tai == v.Sign:
			// Applied.
		case k.TAI == tai:
			v.Step = -time.Duration(v.Sign) * time.Second
		default:
			v.Moved = k.TAI - tai
		}
	}
	return v
}

// Report says what the verdict found of the leap second of the clock
// named what (a quiet Rearm says nothing): leap_rearmed, leap_missed
// (with the step made), leap_unverified.
func (v LeapVerdict) Report(l *event.List, what string) {
	switch {
	case v.Rearm && !v.Repeat:
		l.Emit(event.Notice, "leap_rearmed", "the kernel forgot "+what+"'s leap second (its NTP state reset: a step of the clock by another program, a change of clocksource) or another program cleared its flag: armed again")
	case v.Step != 0:
		l.Emit(slog.LevelError, "leap_missed", fmt.Sprintf("the kernel did not apply %s's leap second (%+d): stepped it by %v", what, v.Sign, v.Step),
			"leap", v.Sign, "step", v.Step.String())
	case v.Moved != 0:
		l.Emit(slog.LevelWarn, "leap_unverified", fmt.Sprintf("the kernel's TAI offset moved by %d across %s's leap second (%+d): another program set it, and whether it was applied cannot be told", v.Moved, what, v.Sign),
			"leap", v.Sign)
	}
}
