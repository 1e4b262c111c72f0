package discipline

import (
	"errors"
	"strings"
	"testing"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/clock/quality"
	"sitegm/clock/servo"
)

// A UTC clock armed for the leap second inserted at the end of
// 2026-06-30 (utc0 is an hour before it).
func newLeapDisc(t *testing.T) *Discipline {
	t.Helper()
	d, table := newDisc(t, func(c *Config) { c.Timescale = clock.UTC })
	table.Entries = append(table.Entries, leap.Entry{At: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), Offset: 38})
	if a, _ := d.Tick(utc0); !a.SetLeap || a.Leap != 1 || !d.WatchesKernelLeap() {
		t.Fatalf("armed: %+v, watching %v", a, d.WatchesKernelLeap())
	}
	return d
}

var midnight = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

// The kernel resets its NTP state while the leap is armed (the kernel
// lab: no step anywhere, yet no insertion; a change of clocksource does
// this): the flag is cleared and set again 1.5 s later, as after a step.
func TestKernelForgetsTheLeap(t *testing.T) {
	d := newLeapDisc(t)
	if a, evs := d.KernelLeap(utc0.Add(time.Second), clock.KernelLeap{TAI: 37, Flag: 1}, nil); a != (Action{}) || len(evs) != 0 {
		t.Fatalf("a look with nothing wrong: %+v %s", a, names(evs))
	}
	a, evs := d.KernelLeap(utc0.Add(2*time.Second), clock.KernelLeap{TAI: 37, Flag: 1, Forgot: true}, nil)
	if !a.SetLeap || a.Leap != 0 || !strings.Contains(names(evs), "leap_rearmed") {
		t.Fatalf("forgot: %+v %s, want the flag cleared", a, names(evs))
	}
	if a, _ := d.Tick(utc0.Add(2500 * time.Millisecond)); a.SetLeap {
		t.Errorf("half a second later: %+v, want nothing yet", a)
	}
	if a, _ := d.Tick(utc0.Add(3600 * time.Millisecond)); !a.SetLeap || a.Leap != 1 {
		t.Errorf("1.6 s after: %+v, want the flag set again", a)
	}
	// Another program clears the flag (ptp4l's kernel_leap writes it too).
	d.KernelLeap(utc0.Add(9*time.Second), clock.KernelLeap{TAI: 37, Flag: 1}, nil)
	if a, evs := d.KernelLeap(utc0.Add(10*time.Second), clock.KernelLeap{TAI: 37}, nil); !a.SetLeap || a.Leap != 0 || !strings.Contains(names(evs), "leap_rearmed") {
		t.Errorf("flag cleared by another program: %+v %s", a, names(evs))
	}
	// A flag the kernel will not keep is armed again and again, told once.
	d.Tick(utc0.Add(11600 * time.Millisecond))
	if a, evs := d.KernelLeap(utc0.Add(12*time.Second), clock.KernelLeap{TAI: 37}, nil); !a.SetLeap || len(evs) != 0 {
		t.Errorf("again 2 s later: %+v %s, want armed again quietly", a, names(evs))
	}
}

// The kernel did not insert the second: after the midnight its TAI offset
// is what it was, and sitegm steps the clock back itself, within about
// half a second of the midnight.
func TestKernelMissedTheLeap(t *testing.T) {
	d := newLeapDisc(t)
	d.KernelLeap(midnight.Add(-10*time.Second), clock.KernelLeap{TAI: 37, Flag: 1}, nil)
	d.Tick(midnight.Add(-10 * time.Second))
	// The clock reads the midnight (the kernel should have gone back):
	// the flag is cleared, and the check waits for the kernel's tick.
	if a, _ := d.KernelLeap(midnight.Add(100*time.Millisecond), clock.KernelLeap{TAI: 37, Flag: 1}, nil); a.Step != 0 {
		t.Fatalf("judged before the kernel's tick could apply it: %+v", a)
	}
	if a, _ := d.Tick(midnight.Add(100 * time.Millisecond)); !a.SetLeap || a.Leap != 0 {
		t.Fatalf("past the midnight: %+v, want the flag cleared", a)
	}
	a, evs := d.KernelLeap(midnight.Add(600*time.Millisecond), clock.KernelLeap{TAI: 37, Flag: 1}, nil)
	if a.Step != -time.Second || !strings.Contains(names(evs), "leap_missed") {
		t.Errorf("missed: %+v %s, want a step of -1s", a, names(evs))
	}
	if d.WatchesKernelLeap() {
		t.Error("still watching after the check")
	}
	// Stepped back, the clock reads 23:59:59 again: the leap is done, not
	// armed once more (the kernel would insert it a second time).
	for _, at := range []time.Duration{-400 * time.Millisecond, -100 * time.Millisecond, 700 * time.Millisecond} {
		if a, evs := d.Tick(midnight.Add(at)); a.SetLeap || strings.Contains(names(evs), "leap_scheduled") {
			t.Errorf("at %v after the step: %+v %s", at, a, names(evs))
		}
	}
}

// Applied (the TAI offset went up by one), withdrawn before its time, or
// looked at too late: no step.
func TestKernelLeapNoStep(t *testing.T) {
	d := newLeapDisc(t)
	d.KernelLeap(midnight.Add(-10*time.Second), clock.KernelLeap{TAI: 37, Flag: 1}, nil)
	if a, evs := d.KernelLeap(midnight.Add(600*time.Millisecond), clock.KernelLeap{TAI: 38, Flag: 1}, nil); a.Step != 0 || len(evs) != 0 || d.WatchesKernelLeap() {
		t.Errorf("applied: %+v %s", a, names(evs))
	}

	d = newLeapDisc(t)
	d.KernelLeap(midnight.Add(-10*time.Second), clock.KernelLeap{TAI: 37, Flag: 1}, nil)
	d.leapTable.Entries = d.leapTable.Entries[:len(d.leapTable.Entries)-1] // the leap withdrawn
	if a, _ := d.Tick(midnight.Add(-5 * time.Second)); !a.SetLeap || a.Leap != 0 || d.WatchesKernelLeap() {
		t.Errorf("withdrawn: %+v, watching %v", a, d.WatchesKernelLeap())
	}

	d = newLeapDisc(t)
	d.KernelLeap(midnight.Add(-10*time.Second), clock.KernelLeap{TAI: 37, Flag: 1}, nil)
	if a, _ := d.KernelLeap(midnight.Add(clock.LeapVerifyWithin+time.Second), clock.KernelLeap{TAI: 37, Flag: 1}, nil); a.Step != 0 {
		t.Errorf("too late to judge: %+v", a)
	}
}

// A deleted second is applied where the clock reads 23:59:59: missed, the
// clock reads it, and sitegm steps a second forward.
func TestKernelMissedADeletion(t *testing.T) {
	d, _ := newDisc(t, func(c *Config) { c.Timescale = clock.UTC })
	d.kleap.Arm(utc0, -1)
	d.leapSet = -1
	d.KernelLeap(midnight.Add(-10*time.Second), clock.KernelLeap{TAI: 37, Flag: -1}, nil)
	if a, _ := d.KernelLeap(midnight.Add(-800*time.Millisecond), clock.KernelLeap{TAI: 37, Flag: -1}, nil); a.Step != 0 {
		t.Fatalf("judged too early: %+v", a)
	}
	if a, evs := d.KernelLeap(midnight.Add(-400*time.Millisecond), clock.KernelLeap{TAI: 37, Flag: -1}, nil); a.Step != time.Second {
		t.Errorf("missed deletion: %+v %s, want a step of +1s", a, names(evs))
	}
}

// sitegm's own step resets the kernel's NTP state too: Tick arms again
// after it, and the look that sees the reset says nothing of another
// program.
func TestOwnStepIsNoForeignReset(t *testing.T) {
	d := newLeapDisc(t)
	d.KernelLeap(utc0.Add(time.Second), clock.KernelLeap{TAI: 37, Flag: 1}, nil)
	d.note(servo.Action{Note: servo.NoteStepped, Step: 3 * time.Microsecond})
	if a, evs := d.KernelLeap(utc0.Add(2*time.Second), clock.KernelLeap{TAI: 37, Flag: 1, Forgot: true}, nil); a.SetLeap || strings.Contains(names(evs), "leap_rearmed") {
		t.Errorf("after its own step: %+v %s", a, names(evs))
	}
	if a, _ := d.Tick(utc0.Add(2 * time.Second)); !a.SetLeap || a.Leap != 0 {
		t.Errorf("Tick after the step: %+v, want the flag cleared to arm again", a)
	}
}

// A look that fails is said once until one succeeds, and changes nothing.
func TestKernelLeapLookFails(t *testing.T) {
	d := newLeapDisc(t)
	var n []string
	for i := 0; i < 3; i++ {
		a, evs := d.KernelLeap(utc0.Add(time.Duration(i)*time.Second), clock.KernelLeap{}, errors.New("EPERM"))
		if a != (Action{}) {
			t.Fatalf("a failed look acted: %+v", a)
		}
		n = append(n, names(evs))
	}
	if strings.Join(n, "|") != "leap_watch_error||" {
		t.Errorf("events %q", n)
	}
}

// Each tick tells a UTC clock (CLOCK_REALTIME, where the kernel keeps it
// for every program) what NTP says of it: not synchronized until LOCKED,
// then synchronized with the advertised bound. A TAI clock (a PHC) is
// not the kernel's to publish.
func TestTickTellsTheKernel(t *testing.T) {
	d, _ := newDisc(t, func(c *Config) { c.Timescale = clock.UTC })
	if a, _ := d.Tick(utc0); !a.SetSync || a.Sync.Synced {
		t.Fatalf("before any sample: %+v", a)
	}
	var a Action
	for i := 0; i < 30; i++ {
		u := utc0.Add(time.Duration(i) * time.Second)
		d.Edge(u)
		d.Label(Label{UTC: u, Valid: true, Arrival: u.Add(150 * time.Millisecond), Now: u.Add(160 * time.Millisecond)})
		a, _ = d.Tick(u.Add(500 * time.Millisecond))
	}
	if d.Quality().State() != quality.Locked || !a.SetSync || !a.Sync.Synced || a.Sync.MaxError != d.Quality().EstError() || a.Sync.EstError <= 0 {
		t.Errorf("locked (%s): %+v, bound %v", d.Quality().State(), a.Sync, d.Quality().EstError())
	}
	tai, table := newDisc(t)
	for i := 0; i < 30; i++ {
		a, _ = second(tai, table, utc0.Add(time.Duration(i)*time.Second), 0)
	}
	if tai.Quality().State() != quality.Locked || a.SetSync {
		t.Errorf("a TAI clock, locked (%s): %+v", tai.Quality().State(), a)
	}
}

// kernelClock records what an Action asks of a clock's kernel state.
type kernelClock struct {
	clock.Clock
	leaps []int
	syncs []clock.KernelSync
	err   error
}

func (k *kernelClock) SetLeap(sign int) error { k.leaps = append(k.leaps, sign); return k.err }
func (k *kernelClock) ReportSync(s clock.KernelSync) error {
	k.syncs = append(k.syncs, s)
	return k.err
}

// Action.Kernel does only what the action asks and the clock has; a
// refused leap flag does not keep the status from being tried, and both
// refusals are named.
func TestActionKernel(t *testing.T) {
	k := &kernelClock{}
	if err := (Action{Step: time.Second, SetFreq: true}).Kernel(k); err != nil || len(k.leaps)+len(k.syncs) != 0 {
		t.Errorf("nothing asked: %v %+v", err, k)
	}
	s := clock.KernelSync{Synced: true, MaxError: time.Microsecond}
	k.err = errors.New("EPERM")
	err := (Action{SetLeap: true, Leap: -1, SetSync: true, Sync: s}).Kernel(k)
	if len(k.leaps) != 1 || k.leaps[0] != -1 || len(k.syncs) != 1 || k.syncs[0] != s ||
		err == nil || !strings.Contains(err.Error(), "leap second flag") || !strings.Contains(err.Error(), "synchronization status") {
		t.Errorf("both asked, both refused: %v %+v", err, k)
	}
	var plain struct{ clock.Clock } // a clock without kernel state (a PHC)
	if err := (Action{SetLeap: true, SetSync: true}).Kernel(plain); err != nil {
		t.Errorf("a clock without kernel state: %v", err)
	}
}
