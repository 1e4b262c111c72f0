// Package timebase is the disciplined clock as the rest of sitegm reads
// it. Every reading is an Instant that knows which timescale its clock
// counts (a PHC and the virtual clock count TAI, CLOCK_REALTIME counts
// UTC), and is carried onto the timescale a protocol speaks - TAI for PTP
// (IEEE 1588-2019 7.2.3), UTC for NTP (RFC 5905 6) - through the one leap
// second table.
//
// Timestamps taken on another clock (the kernel's software packet and PPS
// stamps, on CLOCK_REALTIME) are carried onto the disciplined clock with
// an error when that cannot be done, never by substituting the other
// clock's time: a failed PHC read once put the host's UTC where a TAI time
// belonged, 37 s off. In chrony's words, raw and cooked reads stay apart.
package timebase

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/event"
)

// Instant is one reading of the disciplined clock.
type Instant struct {
	t     time.Time
	scale clock.Timescale
	table *leap.Table
}

// IsZero reports whether i is no reading at all.
func (i Instant) IsZero() bool { return i.table == nil }

// Clock is the reading as the clock counts it (what the servo steers).
func (i Instant) Clock() time.Time { return i.t }

// Scale is the timescale the clock counts.
func (i Instant) Scale() clock.Timescale { return i.scale }

// TAI is the instant on the PTP timescale. On a UTC clock the kernel
// repeats 23:59:59 through an inserted leap second; that second maps onto
// the first of the two TAI seconds it stands for.
func (i Instant) TAI() time.Time {
	if i.scale == clock.TAI {
		return i.t
	}
	return i.table.UTCToTAI(i.t, false)
}

// UTC is the instant in UTC; leap60 marks the inserted second 23:59:60
// (whose time is then the next day's 00:00:00, see leap.TAIToUTC).
func (i Instant) UTC() (utc time.Time, leap60 bool) {
	if i.scale == clock.UTC {
		return i.t, false
	}
	return i.table.TAIToUTC(i.t)
}

// Sub is i - j on the clock.
func (i Instant) Sub(j Instant) time.Duration { return i.t.Sub(j.t) }

// hostMapper is a clock that maps CLOCK_REALTIME times onto itself exactly
// (the virtual clock, which runs over the host's clock).
type hostMapper interface {
	FromHost(time.Time) time.Time
}

// comparer is a clock read against CLOCK_REALTIME at one instant (a PHC,
// with PTP_SYS_OFFSET*).
type comparer interface {
	SysOffset() (clock.SysOffset, error)
}

// Realtime names CLOCK_REALTIME as the clock of a foreign timestamp
// (hw/pps uses the same word).
const Realtime = "realtime"

// ErrWrongClock: a timestamp on a clock that cannot be carried onto the
// disciplined one (a configuration error, not a read failure).
var ErrWrongClock = errors.New("timestamp on another clock")

// Timebase is the disciplined clock and how other clocks' timestamps are
// carried onto it. Safe for concurrent use.
type Timebase struct {
	clk   clock.Clock
	table *leap.Table
	host  hostMapper // the virtual clock
	cmp   comparer   // a PHC
	// failures counts failed reads; lastErr is the latest one's text.
	failures atomic.Uint64
	lastErr  atomic.Pointer[string]
	// slaves are the PHCs slaved to a disciplined PHC, by device (copied
	// on write: the ports read it while the daemon adds to it).
	slaves atomic.Pointer[map[string]*PHCSlave]
	// steps: when each clock last finished a step (FromClockAfter).
	steps stepLog
}

// New wraps the disciplined clock clk. A clock that maps host times
// itself (the virtual clock) or that can be compared with CLOCK_REALTIME
// (a PHC) is recognised; any other clock must be CLOCK_REALTIME itself.
func New(clk clock.Clock, table *leap.Table) *Timebase {
	tb := &Timebase{clk: clk, table: table}
	if h, ok := clk.(hostMapper); ok {
		tb.host = h
	} else if c, ok := clk.(comparer); ok {
		tb.cmp = c
	}
	return tb
}

// Clock is the disciplined clock.
func (tb *Timebase) Clock() clock.Clock { return tb.clk }

// PHC is the disciplined clock's device when it is a PTP hardware clock
// (what a NIC's hardware timestamps must be on), else "".
func (tb *Timebase) PHC() string {
	if tb.cmp == nil {
		return ""
	}
	return tb.clk.Name()
}

func (tb *Timebase) failed(err error) error {
	tb.failures.Add(1)
	msg := err.Error()
	tb.lastErr.Store(&msg)
	return err
}

// Failures is how many reads failed so far and the latest one's error.
func (tb *Timebase) Failures() (n uint64, last string) {
	if e := tb.lastErr.Load(); e != nil {
		last = *e
	}
	return tb.failures.Load(), last
}

// At is a time already on the disciplined clock (a hardware timestamp
// from the PHC's own NIC) as an Instant.
func (tb *Timebase) At(t time.Time) Instant {
	return Instant{t: t, scale: tb.clk.Timescale(), table: tb.table}
}

// Now reads the disciplined clock.
func (tb *Timebase) Now() (Instant, error) {
	t, err := tb.clk.Now()
	if err != nil {
		return Instant{}, tb.failed(fmt.Errorf("read %s: %w", tb.clk.Name(), err))
	}
	return tb.At(t), nil
}

// FromRealtime carries a CLOCK_REALTIME timestamp (kernel PPS, gpsd's
// SOCK, a serial byte's arrival, a software packet stamp) onto the
// disciplined clock.
//
// A time read in this process (time.Now, which carries a monotonic
// reading) is carried by its age on CLOCK_MONOTONIC instead: the system
// clock may have been stepped since it was read (sync_system stepping it
// onto the PHC at boot, a month at once), and the stamp would land as far
// off. CLOCK_MONOTONIC runs at CLOCK_REALTIME's rate but is never
// stepped. A kernel stamp (PPS, SO_TIMESTAMPING) has no monotonic reading
// and is taken as it is.
func (tb *Timebase) FromRealtime(t time.Time) (Instant, error) {
	switch {
	case tb.host != nil:
		return tb.At(tb.host.FromHost(t)), nil
	case tb.cmp != nil:
		so, err := tb.cmp.SysOffset()
		if err != nil {
			return Instant{}, tb.failed(fmt.Errorf("compare %s with CLOCK_REALTIME: %w", tb.clk.Name(), err))
		}
		if hasMonotonic(t) {
			now := time.Now() // microseconds after so.System, on the same clock
			return tb.At(so.PHC.Add(now.Sub(so.System)).Add(-now.Sub(t))), nil
		}
		return tb.At(t.Add(so.PHC.Sub(so.System))), nil
	case hasMonotonic(t):
		now := time.Now()
		return tb.At(now.Round(0).Add(-now.Sub(t))), nil
	}
	return tb.At(t), nil
}

// hasMonotonic reports whether t carries a monotonic clock reading (it
// came from time.Now in this process).
func hasMonotonic(t time.Time) bool { return t != t.Round(0) }

// FromClock carries a timestamp taken on the clock named clk (Realtime, or
// a PHC's device path) onto the disciplined clock.
func (tb *Timebase) FromClock(clk string, t time.Time) (Instant, error) {
	switch {
	case clk == Realtime:
		return tb.FromRealtime(t)
	case clk == tb.clk.Name() && tb.cmp != nil:
		return tb.At(t), nil
	}
	if s := tb.Slave(clk); s != nil {
		m, _, err := s.ToMaster(t)
		if err != nil {
			return Instant{}, err
		}
		return tb.At(m), nil
	}
	return Instant{}, fmt.Errorf("%w: %s cannot be carried onto %s", ErrWrongClock, clk, tb.clk.Name())
}

// AddSlave opens the PHC at dev and slaves it to the disciplined PHC
// (PHCSlave); a device already slaved is returned as it is.
func (tb *Timebase) AddSlave(dev string) (*PHCSlave, error) {
	if tb.cmp == nil {
		return nil, fmt.Errorf("%s: only a PHC can be slaved to a disciplined PHC, and %s is none", dev, tb.clk.Name())
	}
	if dev == tb.clk.Name() {
		return nil, fmt.Errorf("%s is the disciplined clock itself", dev)
	}
	if s := tb.Slave(dev); s != nil {
		return s, nil
	}
	p, err := clock.OpenPHC(dev)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoPHC, dev, err)
	}
	s := NewPHCSlave(p, tb)
	m := map[string]*PHCSlave{dev: s}
	if old := tb.slaves.Load(); old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	tb.slaves.Store(&m)
	return s, nil
}

// Slave is the slave PHC at dev, or nil.
func (tb *Timebase) Slave(dev string) *PHCSlave {
	if m := tb.slaves.Load(); m != nil {
		return (*m)[dev]
	}
	return nil
}

// Slaves are the slave PHCs, by device name.
func (tb *Timebase) Slaves() []*PHCSlave {
	m := tb.slaves.Load()
	if m == nil {
		return nil
	}
	out := make([]*PHCSlave, 0, len(*m))
	for _, s := range *m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *PHCSlave) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// SteerSlaves steers every slave PHC once (about once a second).
func (tb *Timebase) SteerSlaves() []event.Event {
	var evs []event.Event
	for _, s := range tb.Slaves() {
		evs = append(evs, s.Steer()...)
	}
	return evs
}

// SlavesStepped moves every slave PHC with the disciplined clock, which
// was just stepped by d (PHCSlave.MasterStepped).
func (tb *Timebase) SlavesStepped(d time.Duration) []event.Event {
	var evs []event.Event
	for _, s := range tb.Slaves() {
		evs = append(evs, s.MasterStepped(d)...)
	}
	return evs
}

// UTCMap carries CLOCK_REALTIME nanoseconds onto UTC as the disciplined
// clock counts it, without a system call: what the NTP workers stamp every
// request with. It holds for about a second (the PHC's offset from
// CLOCK_REALTIME moves by nanoseconds while the system clock is slaved to
// it; a leap second within the next second is switched at exactly).
type UTCMap struct {
	host hostMapper
	// phcOff: clock = realtime + phcOff (PHC only).
	phcOff int64
	// off is clock - UTC in ns (TAI-UTC on a TAI clock, 0 on a UTC one);
	// from the clock time leapAt on (0: none) it is offAfter.
	off, leapAt, offAfter int64
}

// Map reads the disciplined clock and builds the mapping that holds now;
// it also returns the reading.
func (tb *Timebase) Map() (UTCMap, Instant, error) {
	m := UTCMap{host: tb.host}
	var now Instant
	if tb.cmp != nil {
		so, err := tb.cmp.SysOffset()
		if err != nil {
			return m, now, tb.failed(fmt.Errorf("compare %s with CLOCK_REALTIME: %w", tb.clk.Name(), err))
		}
		m.phcOff = int64(so.PHC.Sub(so.System))
		now = tb.At(so.PHC)
	} else {
		var err error
		if now, err = tb.Now(); err != nil {
			return m, now, err
		}
	}
	if tb.clk.Timescale() == clock.TAI {
		utc, _ := now.UTC()
		m.off = int64(tb.table.Offset(utc)) * int64(time.Second)
		m.offAfter = m.off
		// A leap second within the next second: switch exactly at it.
		if next := int64(tb.table.Offset(utc.Add(time.Second))) * int64(time.Second); next != m.off {
			midnight := utc.Truncate(24 * time.Hour).Add(24 * time.Hour)
			m.leapAt = midnight.UnixNano() + m.off
			m.offAfter = next
		}
	}
	return m, now, nil
}

// ClockNS is a CLOCK_REALTIME time on the disciplined clock, in ns.
func (m *UTCMap) ClockNS(realtime time.Time) int64 {
	if m.host != nil {
		return m.host.FromHost(realtime).UnixNano()
	}
	return realtime.UnixNano() + m.phcOff
}

// UTC is a disciplined clock time (ns) in UTC. Through an inserted leap
// second a TAI clock's second maps onto the day's last second again, as
// NTP counts it (RFC 5905 leaves the repeat to the leap indicator).
func (m *UTCMap) UTC(clockNS int64) time.Time {
	off := m.off
	if m.leapAt != 0 && clockNS >= m.leapAt {
		off = m.offAfter
	}
	return time.Unix(0, clockNS-off)
}

// Disciplines Open knows (config's clock.discipline).
const (
	Virtual = "virtual" // a software clock over CLOCK_REALTIME, counting TAI
	System  = "system"  // CLOCK_REALTIME itself
	PHC     = "phc"     // a PTP hardware clock
)

// ErrNoPHC: the PHC is not there (yet): its NIC may come up after sitegm
// at boot, so the caller waits for it.
var ErrNoPHC = errors.New("PTP hardware clock not available")

// Open opens the clock a discipline names: the virtual clock starts on
// TAI (like the PHC it stands in for), a PHC is opened at device phc. With
// syncSystem (PHC only) CLOCK_REALTIME is slaved to it (the Slave, else
// nil).
func Open(discipline, phc string, syncSystem bool, table *leap.Table) (*Timebase, *Slave, error) {
	switch discipline {
	case Virtual:
		return New(clock.NewVirtual(time.Duration(table.Offset(time.Now()))*time.Second), table), nil, nil
	case System:
		s, err := clock.NewSystem()
		if err != nil {
			return nil, nil, err
		}
		return New(s, table), nil, nil
	case PHC:
		p, err := clock.OpenPHC(phc)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrNoPHC, phc, err)
		}
		tb := New(p, table)
		if !syncSystem {
			return tb, nil, nil
		}
		s, err := clock.NewSystem()
		if err != nil {
			p.Close()
			return nil, nil, fmt.Errorf("clock.sync_system: %w", err)
		}
		return tb, NewSlave(s, tb), nil
	}
	return nil, nil, fmt.Errorf("unknown discipline %q", discipline)
}

// MinusHost is the virtual clock minus CLOCK_REALTIME at host time h
// (false for any other clock): how tests compare the virtual clock with a
// simulated receiver's truth.
func (tb *Timebase) MinusHost(h time.Time) (time.Duration, bool) {
	if tb.host == nil {
		return 0, false
	}
	return tb.host.FromHost(h).Sub(h), true
}
