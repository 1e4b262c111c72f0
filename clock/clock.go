// Package clock holds the one disciplined timebase and what steers it: the
// Clock interface and its implementations (system, PHC, virtual), the
// oscillator models, and the sub-packages servo, refclock, quality, leap
// and sim.
package clock

import (
	"errors"
	"time"
)

// Timescale is what a clock counts.
type Timescale uint8

// Timescales. A PHC counts TAI by PTP convention; so does the virtual clock,
// which stands in for a PHC. CLOCK_REALTIME counts UTC (POSIX).
const (
	TAI Timescale = iota
	UTC
)

func (s Timescale) String() string {
	if s == UTC {
		return "UTC"
	}
	return "TAI"
}

// Clock is a clock sitegm can steer.
type Clock interface {
	// Name says which clock this is ("virtual", "system", "/dev/ptp0").
	Name() string
	// Timescale is what Now counts.
	Timescale() Timescale
	// Now reads the clock.
	Now() (time.Time, error)
	// Frequency is the current frequency adjustment, ppb (positive: the
	// clock runs faster than its oscillator alone would).
	Frequency() (float64, error)
	// SetFrequency sets the frequency adjustment, ppb.
	SetFrequency(ppb float64) error
	// Step moves the clock by d at once.
	Step(d time.Duration) error
	// MaxFrequency is the largest |adjustment| the clock accepts, ppb.
	MaxFrequency() float64
}

// LeapSetter is a clock that applies leap seconds itself (the kernel's
// CLOCK_REALTIME with STA_INS/STA_DEL). sign: +1 insert at the end of the
// current UTC day, -1 delete, 0 none.
type LeapSetter interface {
	SetLeap(sign int) error
}

// KernelLeap is what the kernel shows of a leap second it was asked to
// apply (adjtimex(2)).
type KernelLeap struct {
	// TAI is the kernel's TAI-UTC offset: it adds one when it inserts a
	// second and takes one off when it deletes one, whatever the offset
	// was set to, so a change across the leap is the leap applied.
	TAI int
	// Forgot: the kernel's NTP state was reset since the last look, and
	// with it the leap second scheduled (ntp_clear: a step of the clock
	// by any program, a change of clocksource, which the clocksource
	// watchdog makes by itself when it distrusts the TSC).
	Forgot bool
	// Flag is the leap flag the kernel holds now: +1 STA_INS, -1
	// STA_DEL, 0 neither (another program may have cleared or changed
	// it: ptp4l's kernel_leap and phc2sys write the same flag).
	Flag int
}

// LeapWatcher is a LeapSetter whose kernel state can be looked at.
type LeapWatcher interface {
	LeapSetter
	// WatchLeap reads the kernel's state and leaves the mark by which
	// the next look sees a reset.
	WatchLeap() (KernelLeap, error)
}

// KernelSync is what the kernel is told about a clock it keeps for every
// program (CLOCK_REALTIME; adjtimex(2) status STA_UNSYNC, maxerror,
// esterror). timedatectl's "System clock synchronized" and the kernel's
// own update of the RTC every 11 minutes read it; the kernel sets STA_UNSYNC
// after any reset of its NTP state (a step, a change of clocksource) and
// when maxerror, which it grows by 500 us a second, reaches 16 s.
type KernelSync struct {
	Synced bool
	// MaxError is the bound on the clock's error that sitegm advertises
	// (NTP's root dispersion; 0 when not synchronized); EstError is one
	// standard deviation of it.
	MaxError, EstError time.Duration
}

// SyncReporter is a clock whose synchronization the kernel publishes.
type SyncReporter interface {
	ReportSync(KernelSync) error
}

// ErrNotSupported is returned where a clock cannot do something here.
var ErrNotSupported = errors.New("not supported by this clock")
