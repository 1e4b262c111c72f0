package discipline

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"sitegm/clock"
)

// WatchesKernelLeap says whether the caller should look at the kernel's
// leap second state (clock.LeapWatcher) and hand it to KernelLeap before
// the next Tick: while a leap second is armed on a UTC clock that applies
// it itself, and until it is checked (clock.LeapWatch).
func (d *Discipline) WatchesKernelLeap() bool { return d.kleap.Active() }

// KernelLeap takes a look at the kernel (k, at the clock's UTC time now;
// err: the look failed, said once until one succeeds): after a reset the
// flag is armed again as after a step; a leap the kernel missed is
// stepped by sitegm, half a second late.
func (d *Discipline) KernelLeap(now time.Time, k clock.KernelLeap, err error) (Action, []Event) {
	var a Action
	if err != nil {
		if !d.leapLookFailed {
			d.emit(slog.LevelWarn, "leap_watch_error", "the kernel's leap second state cannot be read: "+err.Error(), "error", err.Error())
		}
		d.leapLookFailed = true
		return a, d.take()
	}
	d.leapLookFailed = false
	// sitegm's own step resets the kernel too: Tick arms again after it.
	v := d.kleap.Look(now, k, d.leapSet != 0 && !d.stepped)
	switch {
	case v.Rearm:
		a.SetLeap, a.Leap = true, 0
		d.leapSet, d.rearmAt = 0, now.Add(1500*time.Millisecond)
	case v.Step != 0:
		a.Step = v.Step
		d.leapStepped = v.Midnight
		d.pair.Shift(a.Step)
		d.steps++
		d.lastStep = a.Step
	}
	v.Report(&d.events, "the clock")
	return a, d.take()
}

// Kernel does to c what a asks of the kernel's own state of it, where c
// has one: the leap second flag (clock.LeapSetter), the synchronization
// status (clock.SyncReporter); the rest of a (step, frequency) is the
// caller's. Each part is tried whatever the other did.
func (a Action) Kernel(c clock.Clock) error {
	var errs []error
	if ls, ok := c.(clock.LeapSetter); ok && a.SetLeap {
		if err := ls.SetLeap(a.Leap); err != nil {
			errs = append(errs, fmt.Errorf("kernel leap second flag: %w", err))
		}
	}
	if sr, ok := c.(clock.SyncReporter); ok && a.SetSync {
		if err := sr.ReportSync(a.Sync); err != nil {
			errs = append(errs, fmt.Errorf("kernel synchronization status: %w", err))
		}
	}
	return errors.Join(errs...)
}
