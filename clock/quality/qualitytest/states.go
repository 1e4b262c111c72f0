// Package qualitytest drives a quality state machine into each state a
// grandmaster advertises, for the table tests of what ptp, ptp/v1 and ntp
// put on the wire.
package qualitytest

import (
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/clock/quality"
	"sitegm/clock/servo"
)

// Case is one state at one instant.
type Case struct {
	Name string
	M    *quality.Machine
	UTC  time.Time // when it is advertised
	// Table has a leap second inserted at the end of UTC's day; valid
	// until a year later.
	Table *leap.Table
}

// Advertised is what the case advertises.
func (c Case) Advertised() quality.Advertised {
	return c.M.Advertise(c.UTC, c.Table, !c.Table.Expired(c.UTC))
}

// Cases: never locked (FREERUN, class 248), LOCKED (6), HOLDOVER within
// its specification (7), past it (FREERUN, 52), and a receiver whose time
// jumped while locked (spoofing or a firmware bug: not followed, HOLDOVER).
// The day is a leap second day, so the flags show whether they follow
// the state.
func Cases() []Case {
	t0 := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	tb := leap.Builtin()
	tb.Entries = append(tb.Entries, leap.Entry{At: t0.AddDate(0, 0, 1), Offset: 38})
	tb.Expires = t0.AddDate(1, 0, 0)
	newM := func() *quality.Machine {
		return quality.New(quality.Config{Osc: clock.TCXO, Holdover: time.Hour, HoldoverMaxError: 100 * time.Microsecond,
			LockError: time.Microsecond, SourceError: 20 * time.Nanosecond, Timescale: clock.TAI}, t0)
	}
	good := servo.Estimate{Offset: 5, OffsetSigma: 10, SinceSample: 500 * time.Millisecond}
	lock := func(m *quality.Machine) time.Time {
		now := t0
		for i := 0; i < 6; i++ {
			now = now.Add(time.Second)
			m.Update(now, servo.StateTrack, good)
		}
		return now
	}
	lose := func(m *quality.Machine, now time.Time, sigma time.Duration) time.Time {
		lost := good
		for i := 1; i <= 12; i++ {
			now = now.Add(time.Second)
			lost.SinceSample = time.Duration(i) * time.Second
			lost.OffsetSigma = sigma
			m.Update(now, servo.StateHoldover, lost)
		}
		return now
	}
	var cs []Case
	add := func(name string, m *quality.Machine, at time.Time) {
		cs = append(cs, Case{Name: name, M: m, UTC: at, Table: tb})
	}
	add("freerun", newM(), t0.Add(time.Hour))
	m := newM()
	add("locked", m, lock(m))
	m = newM()
	add("holdover", m, lose(m, lock(m), 2*time.Microsecond))
	m = newM()
	now := lose(m, lock(m), 2*time.Microsecond)
	lost := good
	lost.SinceSample, lost.OffsetSigma = 20*time.Second, 50*time.Microsecond
	m.Update(now.Add(time.Second), servo.StateHoldover, lost)
	add("past-spec", m, now.Add(time.Second))
	m = newM()
	now = lock(m)
	m.Update(now.Add(time.Second), servo.StateGuard, good)
	add("spoofed", m, now.Add(time.Second))
	return cs
}
