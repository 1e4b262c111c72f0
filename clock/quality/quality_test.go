package quality

import (
	"testing"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/clock/servo"

	"github.com/facebook/time/ptp/protocol"
)

func TestAccuracyCodes(t *testing.T) {
	for d, want := range map[time.Duration]protocol.ClockAccuracy{
		20 * time.Nanosecond: 0x20, 25 * time.Nanosecond: 0x20, 26 * time.Nanosecond: 0x21,
		900 * time.Nanosecond: 0x23, 12 * time.Microsecond: 0x26, 3 * time.Millisecond: 0x2B,
		2 * time.Second: 0x30, time.Minute: 0x31,
	} {
		if got := AccuracyCode(d); got != want {
			t.Errorf("%v: %#x, want %#x", d, got, want)
		}
	}
	// 1588-2019 7.6.3.5: a variance of 2^-64 s² (σ ≈ 0.23 ns) encodes as
	// 0x8000 - 64*256 = 0x4000.
	if v := ScaledLogVariance(1.0 / (1 << 32) / (1 << 32)); v != 0x4000 {
		t.Errorf("scaled log variance %#x", v)
	}
}

// The advertised clockAccuracy goes worse at once and better only with
// a margin; the variance is the oscillator's, whatever the filter's phase
// deviation does: a bound wandering across 1 µs, and a filter sigma
// wandering by a factor of two, change nothing in the Announce.
func TestSteadyAdvertisedQuality(t *testing.T) {
	if got := steadyAccuracy(0, 900*time.Nanosecond); got != 0x23 {
		t.Errorf("first code %#x", got)
	}
	for _, c := range []struct {
		adv   protocol.ClockAccuracy
		bound time.Duration
		want  protocol.ClockAccuracy
	}{
		{0x23, 1100 * time.Nanosecond, 0x24}, // worse: at once
		{0x24, 990 * time.Nanosecond, 0x24},  // just inside 1 µs: stays
		{0x24, 810 * time.Nanosecond, 0x24},
		{0x24, 790 * time.Nanosecond, 0x23}, // a fifth inside: better
		{0x24, 150 * time.Nanosecond, 0x22}, // several codes better at once
		{0x23, 240 * time.Nanosecond, 0x23},
	} {
		if got := steadyAccuracy(c.adv, c.bound); got != c.want {
			t.Errorf("advertised %#x, bound %v: %#x, want %#x", c.adv, c.bound, got, c.want)
		}
	}
	t0 := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	m := New(Config{Osc: clock.TCXO, Holdover: time.Hour, HoldoverMaxError: 100 * time.Microsecond,
		LockError: 2 * time.Microsecond, SourceError: 100 * time.Nanosecond}, t0)
	now := t0
	seen := map[[2]uint16]bool{}
	var last [2]uint16
	changes := 0
	for i := 0; i < 200; i++ {
		now = now.Add(time.Second)
		// The bound wanders between 0.9 and 1.1 µs, the sigma between
		// 16 and 32 ns.
		sigma := time.Duration(16+16*(i%2)) * time.Nanosecond
		off := time.Duration(600+i%3*100) * time.Nanosecond
		m.Update(now, servo.StateTrack, servo.Estimate{Offset: off, OffsetSigma: sigma, SinceSample: 500 * time.Millisecond})
		if m.State() == Locked {
			adv := [2]uint16{uint16(m.ClockAccuracy()), m.OffsetScaledLogVariance()}
			if seen[adv] = true; last != adv {
				changes++
				last = adv
			}
		}
	}
	// At most one change after the first: 1 µs (0x23) until the bound
	// first passes it, 2.5 µs (0x24) from then on.
	osc := clock.TCXO.ADEV(1)
	if changes > 2 || !seen[[2]uint16{0x24, ScaledLogVariance(osc * osc / 3)}] {
		t.Errorf("advertised (accuracy, variance) while locked changed %d times: %v", changes, seen)
	}
}

func TestLifecycleAndAdvertised(t *testing.T) {
	t0 := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	m := New(Config{Osc: clock.TCXO, Holdover: time.Hour, HoldoverMaxError: 100 * time.Microsecond,
		LockError: time.Microsecond, SourceError: 100 * time.Nanosecond}, t0)
	tb := leap.Builtin()
	tb.Entries = append(tb.Entries, leap.Entry{At: t0.AddDate(0, 0, 1), Offset: 38})
	tb.Expires = t0.AddDate(1, 0, 0)
	if m.ClockClass() != ClassDefault || m.NTP(t0, tb).LI != 3 || m.ClockAccuracy() != AccuracyUnknown {
		t.Fatal("never locked must advertise nothing")
	}
	if k := m.Kernel(); k.Synced {
		t.Errorf("never locked, the kernel is told %+v", k)
	}
	good := servo.Estimate{Offset: 5, OffsetSigma: 10, SinceSample: 500 * time.Millisecond}
	now := t0
	for i := 0; i < 6; i++ {
		now = now.Add(time.Second)
		m.Update(now, servo.StateTrack, good)
	}
	if m.State() != Locked || m.ClockClass() != ClassLocked || m.TimeSource() != TimeSourceGNSS {
		t.Fatalf("state %s class %d", m.State(), m.ClockClass())
	}
	tp := m.TimeProperties(now, tb, true)
	if !tp.Leap61 || tp.Leap59 || tp.CurrentUTCOffset != 37 || !tp.UTCOffsetValid || !tp.TimeTraceable || !tp.PTPTimescale {
		t.Errorf("time properties on a leap day: %+v", tp)
	}
	n := m.NTP(now, tb)
	if n.LI != 1 || n.Stratum != 1 || n.RefID != [4]byte{'G', 'P', 'S', 0} {
		t.Errorf("NTP while locked: %+v", n)
	}
	// The kernel is told what NTP says: synchronized, the root dispersion
	// as its maximum error, one sigma of estimate and source (hypot(10 ns,
	// 100 ns)) as its estimated error.
	if k := m.Kernel(); !k.Synced || k.MaxError != n.RootDispersion || k.EstError != 100 {
		t.Errorf("kernel while locked: %+v, root dispersion %v", k, n.RootDispersion)
	}
	// Reference gone: holdover after 10 s, dispersion growing.
	lost := good
	for i := 1; i <= 12; i++ {
		now = now.Add(time.Second)
		lost.SinceSample = time.Duration(i) * time.Second
		lost.OffsetSigma = time.Duration(i) * 20 * time.Nanosecond
		m.Update(now, servo.StateHoldover, lost)
	}
	if m.State() != Holdover || m.ClockClass() != ClassHoldover || m.TimeSource() != TimeSourceOsc {
		t.Fatalf("after 12 s without samples: %s", m.State())
	}
	d1 := m.NTP(now, tb).RootDispersion
	lost.OffsetSigma = 30 * time.Microsecond
	now = now.Add(time.Minute)
	m.Update(now, servo.StateHoldover, lost)
	if d2 := m.NTP(now, tb).RootDispersion; d2 <= d1 {
		t.Errorf("dispersion did not grow: %v then %v", d1, d2)
	}
	if k := m.Kernel(); !k.Synced || k.MaxError != m.NTP(now, tb).RootDispersion {
		t.Errorf("kernel in holdover: %+v", k)
	}
	// Predicted error beyond holdover_max_error: free-run, class 52, LI 3.
	lost.OffsetSigma = 50 * time.Microsecond
	m.Update(now.Add(time.Second), servo.StateHoldover, lost)
	if m.State() != Freerun || m.ClockClass() != ClassDegradedA || m.NTP(now, tb).LI != 3 {
		t.Errorf("past the spec: %s class %d", m.State(), m.ClockClass())
	}
	if k := m.Kernel(); k.Synced {
		t.Errorf("past the spec, the kernel is told %+v", k)
	}
	if tp := m.TimeProperties(now, tb, true); tp.TimeTraceable || tp.Leap61 || tp.UTCOffsetValid {
		t.Errorf("free-running time properties: %+v", tp)
	}
}

// A servo in its jump guard before the first lock is not acquiring: the
// state stays FREERUN instead of flapping with every update.
func TestGuardBeforeLockDoesNotFlap(t *testing.T) {
	m := New(Config{Osc: clock.TCXO, Holdover: time.Hour, HoldoverMaxError: time.Millisecond, LockError: time.Microsecond}, time.Unix(0, 0))
	changes := 0
	for i := 0; i < 100; i++ {
		now := time.Unix(int64(i), 0)
		if _, ok := m.Update(now, servo.StateGuard, servo.Estimate{OffsetSigma: time.Duration(1<<63 - 1)}); ok {
			changes++
		}
	}
	if changes != 0 || m.State() != Freerun {
		t.Errorf("%d state changes, now %s", changes, m.State())
	}
}
