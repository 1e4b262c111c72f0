package clock

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// This file steers kernel clocks (CLOCK_REALTIME, a PHC's dynamic clock
// id) through clock_adjtime(2). The timex arithmetic is in pure functions
// so it is tested without touching a clock.

// ppbToTimexFreq converts ppb to timex.freq, which is in ppm with a 16-bit
// fractional part (adjtimex(2): "frequency offset ... scaled ppm").
func ppbToTimexFreq(ppb float64) int64 { return int64(math.Round(ppb * 65.536)) }

// timexFreqToPPB is the inverse.
func timexFreqToPPB(f int64) float64 { return float64(f) / 65.536 }

// stepTimex builds an ADJ_SETOFFSET|ADJ_NANO request: with ADJ_NANO the
// timeval's usec field carries nanoseconds, and the kernel wants it in
// [0, 1e9), so a negative step has a negative seconds field.
func stepTimex(d time.Duration) unix.Timex {
	sec := int64(d / time.Second)
	nsec := int64(d % time.Second)
	if nsec < 0 {
		sec--
		nsec += int64(time.Second)
	}
	return unix.Timex{Modes: unix.ADJ_SETOFFSET | unix.ADJ_NANO, Time: unix.Timeval{Sec: sec, Usec: nsec}}
}

// leapStatus returns the timex status with the leap bits set for sign (+1
// insert STA_INS, -1 delete STA_DEL, 0 neither), other bits unchanged.
func leapStatus(cur int32, sign int) int32 {
	st := cur &^ (unix.STA_INS | unix.STA_DEL)
	switch sign {
	case 1:
		st |= unix.STA_INS
	case -1:
		st |= unix.STA_DEL
	}
	return st
}

// kernelClock is a clock steered with clock_adjtime.
type kernelClock struct {
	id int32
}

func (k kernelClock) adjtime(tx *unix.Timex) error {
	_, err := unix.ClockAdjtime(k.id, tx)
	return err
}

func (k kernelClock) now() (time.Time, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(k.id, &ts); err != nil {
		return time.Time{}, err
	}
	return time.Unix(ts.Unix()), nil
}

func (k kernelClock) frequency() (float64, error) {
	tx := unix.Timex{} // modes 0: read only
	if err := k.adjtime(&tx); err != nil {
		return 0, err
	}
	return timexFreqToPPB(tx.Freq), nil
}

func (k kernelClock) setFrequency(ppb float64) error {
	tx := unix.Timex{Modes: unix.ADJ_FREQUENCY, Freq: ppbToTimexFreq(ppb)}
	return k.adjtime(&tx)
}

func (k kernelClock) step(d time.Duration) error {
	tx := stepTimex(d)
	return k.adjtime(&tx)
}

func (k kernelClock) setLeap(sign int) error {
	tx := unix.Timex{}
	if err := k.adjtime(&tx); err != nil {
		return err
	}
	w := unix.Timex{Modes: unix.ADJ_STATUS, Status: leapStatus(tx.Status, sign)}
	markTimex(&w, tx.Maxerror) // a reset before the arming is not one after it
	return k.adjtime(&w)
}

// The kernel forgets a scheduled leap second whenever it resets its NTP
// state (ntp_clear: at a step of the clock, at a change of clocksource),
// and that shows nowhere but in the values ntp_clear sets: maxerror goes
// to NTP_PHASE_LIMIT, 16 s. Between resets maxerror grows by 500 us a
// second (MAXFREQ) and stops at the same limit. The sync status sitegm
// writes each tick keeps it at the clock's bound (syncCapUS at most), so
// a look that finds the limit saw a reset. A look, and the arming, that
// find maxerror past leapMarkUS (no status written for over two hours,
// or a reset just seen) pull it down to the mark, so that the next reset
// shows; never further: the mark is no bound on the clock, and a bound
// is never made smaller than the one written (an earlier mark of 1 ms
// at every look undercut the unsynchronized status's 8 s between ticks).
const (
	ntpPhaseLimitUS = 16_000_000
	leapMarkUS      = ntpPhaseLimitUS * 3 / 4
)

// markTimex adds the leap watch's mark to the write w, given the kernel's
// maxerror now: only when maxerror is past the mark.
func markTimex(w *unix.Timex, maxerror int64) {
	if maxerror > leapMarkUS {
		w.Modes |= unix.ADJ_MAXERROR
		w.Maxerror = leapMarkUS
	}
}

// kernelLeap reads a timex (modes 0) as a KernelLeap.
func kernelLeap(tx *unix.Timex) KernelLeap {
	k := KernelLeap{TAI: int(tx.Tai), Forgot: tx.Maxerror >= ntpPhaseLimitUS}
	switch {
	case tx.Status&unix.STA_INS != 0:
		k.Flag = 1
	case tx.Status&unix.STA_DEL != 0:
		k.Flag = -1
	}
	return k
}

func (k kernelClock) watchLeap() (KernelLeap, error) {
	tx := unix.Timex{}
	if err := k.adjtime(&tx); err != nil {
		return KernelLeap{}, err
	}
	var mark unix.Timex
	if markTimex(&mark, tx.Maxerror); mark.Modes == 0 {
		return kernelLeap(&tx), nil
	}
	return kernelLeap(&tx), k.adjtime(&mark)
}

// syncCapUS bounds the maxerror and esterror sitegm writes: half the
// kernel's NTP_PHASE_LIMIT, so that a bound, however large, never reads
// as the reset the leap watch looks for (maxerror at the limit) nor meets
// its mark, and the kernel's own growth (500 us a second) takes hours to
// reach the limit after the last write. A clock whose bound is past it is not
// synchronized for the kernel either.
const syncCapUS = ntpPhaseLimitUS / 2

// syncTimex builds the write that tells the kernel s, from the status cur
// it holds now: STA_UNSYNC set or cleared, every other bit (the leap
// flags above all) kept; the errors in us, rounded up (a bound is never
// made smaller). Unsynchronized, both errors are the cap.
func syncTimex(cur int32, s KernelSync) unix.Timex {
	us := func(d time.Duration) int64 {
		d = min(max(d, 0), syncCapUS*time.Microsecond)
		return int64((d + time.Microsecond - 1) / time.Microsecond)
	}
	tx := unix.Timex{Modes: unix.ADJ_STATUS | unix.ADJ_MAXERROR | unix.ADJ_ESTERROR,
		Status: cur | unix.STA_UNSYNC, Maxerror: syncCapUS, Esterror: syncCapUS}
	if s.Synced && us(s.MaxError) < syncCapUS {
		tx.Status &^= unix.STA_UNSYNC
		tx.Maxerror, tx.Esterror = us(s.MaxError), us(s.EstError)
	}
	return tx
}

// hidesReset reports whether a write of maxerror now would hide a reset of
// the kernel's NTP state from the leap watch: a leap second is armed (the
// watch looks while one is) and maxerror is at the limit ntp_clear sets.
// The sync status then waits a tick, until the watch has seen the reset
// and armed the leap again (a reset between the watch's look and the
// status write of the same tick would otherwise lose the leap second).
func hidesReset(cur *unix.Timex) bool {
	return cur.Status&(unix.STA_INS|unix.STA_DEL) != 0 && cur.Maxerror >= ntpPhaseLimitUS
}

// syncWaitsMax: the sync status waits for the leap watch (hidesReset) at
// most this many writes in a row: a flag another program armed, with no
// watch of sitegm's looking and pulling maxerror down, must not keep the
// status from being written.
const syncWaitsMax = 3

// syncGate decides whether the sync status is written now.
type syncGate struct{ waits int }

// write reports whether to write, given whether the write would hide a
// reset from the leap watch: not, syncWaitsMax times in a row at most.
func (g *syncGate) write(hides bool) bool {
	if hides && g.waits < syncWaitsMax {
		g.waits++
		return false
	}
	g.waits = 0
	return true
}

func (k kernelClock) reportSync(s KernelSync, g *syncGate) error {
	tx := unix.Timex{}
	if err := k.adjtime(&tx); err != nil {
		return err
	}
	if !g.write(hidesReset(&tx)) {
		return nil
	}
	tx = syncTimex(tx.Status, s)
	return k.adjtime(&tx)
}

// System is CLOCK_REALTIME, disciplined directly (clock.discipline =
// "system"), or slaved to a PHC that leads.
type System struct {
	k kernelClock
	// syncFailing: the last ReportSync failed (its error is returned
	// once until one succeeds: it is called each second).
	syncFailing bool
	// sync: the writes waiting for the leap watch.
	sync syncGate
}

// SystemMaxPPB is the kernel's frequency limit (MAXFREQ, 500 ppm).
const SystemMaxPPB = 500000

// NewSystem returns the system clock. It takes over from any kernel PLL
// (STA_PLL/STA_FLL and the PPS kernel discipline off), as chrony and
// phc2sys do: two loops steering one clock fight.
func NewSystem() (*System, error) {
	s := &System{k: kernelClock{id: unix.CLOCK_REALTIME}}
	tx := unix.Timex{}
	if err := s.k.adjtime(&tx); err != nil {
		return nil, fmt.Errorf("system clock: %w", err)
	}
	tx = unix.Timex{Modes: unix.ADJ_STATUS,
		Status: tx.Status &^ (unix.STA_PLL | unix.STA_FLL | unix.STA_PPSFREQ | unix.STA_PPSTIME)}
	if err := s.k.adjtime(&tx); err != nil {
		return nil, fmt.Errorf("system clock: %w (needs CAP_SYS_TIME)", err)
	}
	return s, nil
}

// Name implements Clock.
func (s *System) Name() string { return "system" }

// Timescale implements Clock.
func (s *System) Timescale() Timescale { return UTC }

// Now implements Clock.
func (s *System) Now() (time.Time, error) { return s.k.now() }

// Frequency implements Clock.
func (s *System) Frequency() (float64, error) { return s.k.frequency() }

// SetFrequency implements Clock.
func (s *System) SetFrequency(ppb float64) error { return s.k.setFrequency(ppb) }

// Step implements Clock.
func (s *System) Step(d time.Duration) error { return s.k.step(d) }

// MaxFrequency implements Clock.
func (s *System) MaxFrequency() float64 { return SystemMaxPPB }

// SetLeap implements LeapSetter: the kernel inserts or deletes the second
// at the next UTC midnight.
func (s *System) SetLeap(sign int) error { return s.k.setLeap(sign) }

// WatchLeap implements LeapWatcher.
func (s *System) WatchLeap() (KernelLeap, error) { return s.k.watchLeap() }

// ReportSync implements SyncReporter. The error of a write that keeps
// failing is returned once, until one succeeds.
func (s *System) ReportSync(ks KernelSync) error {
	err := s.k.reportSync(ks, &s.sync)
	if err != nil && s.syncFailing {
		return nil
	}
	s.syncFailing = err != nil
	return err
}
