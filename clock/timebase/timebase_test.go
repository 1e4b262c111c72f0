package timebase

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/event"
)

// fakeClock stands for CLOCK_REALTIME (UTC) or, with phcOff set, a PHC
// (TAI) read against it.
type fakeClock struct {
	name   string
	scale  clock.Timescale
	host   time.Time     // CLOCK_REALTIME now
	phcOff time.Duration // PHC - CLOCK_REALTIME
	fail   error
}

func (f *fakeClock) Name() string                { return f.name }
func (f *fakeClock) Timescale() clock.Timescale  { return f.scale }
func (f *fakeClock) Frequency() (float64, error) { return 0, nil }
func (f *fakeClock) SetFrequency(float64) error  { return nil }
func (f *fakeClock) Step(time.Duration) error    { return nil }
func (f *fakeClock) MaxFrequency() float64       { return 1e5 }
func (f *fakeClock) Now() (time.Time, error)     { return f.host.Add(f.phcOff), f.fail }
func (f *fakePHC) SysOffset() (clock.SysOffset, error) {
	if f.fail != nil {
		return clock.SysOffset{}, f.fail
	}
	return clock.SysOffset{PHC: f.host.Add(f.phcOff), System: f.host}, nil
}

type fakePHC struct{ fakeClock }

// deleted is a table with one deleted leap second (none has happened; the
// rules allow it, ITU-R TF.460-6 2.2): TAI-UTC goes from 37 to 36 at the
// end of 2030-06-30.
func deleted() *leap.Table {
	t := leap.Builtin()
	t.Entries = append(t.Entries, leap.Entry{At: time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC), Offset: 36})
	return t
}

// The three kinds of disciplined clock, read around an inserted and a
// deleted leap second: the PTP time is always TAI, the NTP time UTC, and a
// CLOCK_REALTIME stamp lands on the clock where the clock says it is.
func TestInstantsAcrossLeapSeconds(t *testing.T) {
	type instant struct {
		utc    string // what UTC reads (the second 23:59:60 as "60")
		offset int    // TAI-UTC in force for that second
		leap60 bool
	}
	inserted := []instant{
		{"2016-12-31T23:59:58Z", 36, false},
		{"2016-12-31T23:59:59Z", 36, false},
		{"60", 36, true}, // the inserted second: TAI 2017-01-01T00:00:36
		{"2017-01-01T00:00:00Z", 37, false},
	}
	deletedDay := []instant{
		{"2030-06-30T23:59:57Z", 37, false},
		{"2030-06-30T23:59:58Z", 37, false},
		// 23:59:59 does not exist: the next second is 00:00:00 at TAI-UTC 36
		{"2030-07-01T00:00:00Z", 36, false},
	}
	for _, tc := range []struct {
		name  string
		table *leap.Table
		secs  []instant
	}{{"inserted", leap.Builtin(), inserted}, {"deleted", deleted(), deletedDay}} {
		for _, kind := range []string{"virtual", "system", "phc"} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				for _, s := range tc.secs {
					utc := time.Date(2016, 12, 31, 23, 59, 59, 0, time.UTC).Add(time.Second)
					if s.utc != "60" {
						utc, _ = time.Parse(time.RFC3339, s.utc)
					}
					utc = utc.Add(250 * time.Millisecond)
					tai := utc.Add(time.Duration(s.offset) * time.Second)
					if s.leap60 {
						tai = utc.Add(-time.Second).Add(time.Duration(s.offset+1) * time.Second)
					}
					var tb *Timebase
					var host time.Time // CLOCK_REALTIME at that instant
					switch kind {
					case "virtual":
						// The host counts UTC as the kernel does through an
						// inserted second: 23:59:59 twice.
						host = utc
						if s.leap60 {
							host = utc.Add(-time.Second)
						}
						v := clock.NewVirtualOver(func() time.Time { return host }, tai.Sub(host))
						tb = New(v, tc.table)
					case "system":
						host = utc
						if s.leap60 {
							host = utc.Add(-time.Second)
						}
						tb = New(&fakeClock{name: "system", scale: clock.UTC, host: host}, tc.table)
					case "phc":
						host = utc.Add(3 * time.Millisecond) // a system clock a little off
						if s.leap60 {
							host = host.Add(-time.Second)
						}
						tb = New(&fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: host, phcOff: tai.Sub(host)}}, tc.table)
					}
					now, err := tb.Now()
					if err != nil {
						t.Fatal(err)
					}
					gotUTC, leap60 := now.UTC()
					wantTAI, wantUTC := tai, utc
					if kind == "system" && s.leap60 {
						// CLOCK_REALTIME cannot say 23:59:60: it repeats
						// 23:59:59, and so does what it serves.
						wantTAI, wantUTC = tai.Add(-time.Second), utc.Add(-time.Second)
					}
					if !now.TAI().Equal(wantTAI) || !gotUTC.Equal(wantUTC) || (kind != "system" && leap60 != s.leap60) {
						t.Errorf("%s: TAI %v UTC %v leap60 %v, want TAI %v UTC %v leap60 %v", s.utc,
							now.TAI(), gotUTC, leap60, wantTAI, wantUTC, s.leap60)
					}
					// A software stamp taken at this instant on CLOCK_REALTIME
					// is the clock's own reading.
					if got, err := tb.FromRealtime(host); err != nil || !got.Clock().Equal(now.Clock()) {
						t.Errorf("%s: FromRealtime %v (%v), want %v", s.utc, got.Clock(), err, now.Clock())
					}
					// What NTP serves from a stamp at this instant.
					m, _, err := tb.Map()
					if err != nil {
						t.Fatal(err)
					}
					got := m.UTC(m.ClockNS(host))
					want := wantUTC
					if s.leap60 {
						want = utc.Add(-time.Second) // NTP repeats 23:59:59
					}
					if !got.Equal(want) {
						t.Errorf("%s: NTP time %v, want %v", s.utc, got, want)
					}
				}
			})
		}
	}
}

// The NTP mapping built just before a leap second switches at it, not at
// the next rebuild.
func TestMapSwitchesAtTheLeapSecond(t *testing.T) {
	before := time.Date(2016, 12, 31, 23, 59, 59, 500e6, time.UTC)
	v := clock.NewVirtualOver(func() time.Time { return before }, 36*time.Second)
	tb := New(v, leap.Builtin())
	m, _, err := tb.Map()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		after time.Duration
		want  string
	}{{0, "23:59:59.5"}, {500 * time.Millisecond, "23:59:59"}, {time.Second, "23:59:59.5"}, {2 * time.Second, "00:00:00.5"}} {
		clk := before.Add(36*time.Second + c.after).UnixNano()
		if got := m.UTC(clk).Format("15:04:05.999"); got != c.want {
			t.Errorf("+%v: %s, want %s", c.after, got, c.want)
		}
	}
}

// A clock that cannot be read gives an error, counted, and never another
// clock's time.
func TestFailedReadsAreErrors(t *testing.T) {
	host := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: host, phcOff: 37 * time.Second, fail: errors.New("EIO")}}
	tb := New(p, leap.Builtin())
	if _, err := tb.Now(); err == nil {
		t.Error("Now: no error")
	}
	if i, err := tb.FromRealtime(host); err == nil || !i.IsZero() {
		t.Errorf("FromRealtime: %v, %v", i, err)
	}
	if _, _, err := tb.Map(); err == nil {
		t.Error("Map: no error")
	}
	if n, last := tb.Failures(); n != 3 || last == "" {
		t.Errorf("failures %d %q", n, last)
	}
	if _, err := tb.FromClock("/dev/ptp1", host); !errors.Is(err, ErrWrongClock) {
		t.Errorf("an edge on another PHC: %v", err)
	}
	p.fail = nil
	if i, err := tb.FromClock("/dev/ptp0", host); err != nil || !i.Clock().Equal(host) {
		t.Errorf("an edge on the PHC itself: %v %v", i.Clock(), err)
	}
	sys := New(&fakeClock{name: "system", scale: clock.UTC, host: host}, leap.Builtin())
	if _, err := sys.FromClock("/dev/ptp0", host); !errors.Is(err, ErrWrongClock) {
		t.Errorf("an EXTTS edge onto the system clock: %v", err)
	}
}

// stepClock is a system clock that records how it is steered.
type stepClock struct {
	fakeClock
	steps []time.Duration
	freq  float64
}

func (s *stepClock) Step(d time.Duration) error {
	s.steps = append(s.steps, d)
	s.host = s.host.Add(d)
	return nil
}
func (s *stepClock) SetFrequency(ppb float64) error { s.freq = ppb; return nil }

// The system clock slaved to a PHC is stepped onto the PHC's UTC (not its
// TAI) when it is off by more than a millisecond, then steered.
func TestSlaveStepsSystemOntoPHCUTC(t *testing.T) {
	host := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	utc := host.Add(-250 * time.Millisecond) // the system clock is 250 ms ahead
	phc := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: host, phcOff: utc.Add(37 * time.Second).Sub(host)}}
	tb := New(phc, leap.Builtin())
	sys := &stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC, host: host}}
	if NewSlave(sys, New(sys, leap.Builtin())) != nil {
		t.Fatal("a slave of a clock that is no PHC")
	}
	s := NewSlave(sys, tb)
	if _, _, ok := s.Offset(host); ok {
		t.Error("an offset before the first reading")
	}
	step, err := s.Step()
	if err != nil || len(sys.steps) != 1 || step != sys.steps[0] {
		t.Fatalf("step %v err %v steps %v", step, err, sys.steps)
	}
	if d := sys.steps[0] + 250*time.Millisecond; d.Abs() > time.Microsecond {
		t.Errorf("stepped by %v, want -250ms", sys.steps[0])
	}
	if _, _, ok := s.Offset(host); !ok {
		t.Error("no offset after a reading")
	}
	phc.fail = errors.New("EIO")
	if _, err := s.Step(); err == nil || len(sys.steps) != 1 {
		t.Errorf("a failed reading: err %v steps %v", err, sys.steps)
	}
}

// A run of failed reads is one WARNING at its first failure and one
// NOTICE a second after the last, with how many failed and for how long.
func TestReadWatch(t *testing.T) {
	var w ReadWatch
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	names := func(evs []event.Event) (n []string) {
		for _, e := range evs {
			n = append(n, e.Name)
		}
		return n
	}
	if evs := w.Check(at(0), 0, "", "phc"); len(evs) != 0 || w.FailingFor(at(0)) != 0 {
		t.Fatalf("no failure: %v", names(evs))
	}
	if evs := names(w.Check(at(100), 2, "EIO", "phc")); len(evs) != 1 || evs[0] != "clock_read_error" {
		t.Fatalf("first failure: %v", evs)
	}
	if evs := w.Check(at(200), 5, "EIO", "phc"); len(evs) != 0 || w.FailingFor(at(2200)) != 2100*time.Millisecond {
		t.Fatalf("more failures: %v, failing for %v", names(evs), w.FailingFor(at(2200)))
	}
	if evs := w.Check(at(1100), 5, "EIO", "phc"); len(evs) != 0 {
		t.Fatalf("recovered too soon: %v", names(evs))
	}
	evs := w.Check(at(1200), 5, "EIO", "phc")
	if len(evs) != 1 || evs[0].Name != "clock_read_ok" || fmt.Sprint(evs[0].Attrs) != "[clock phc failed_reads 5 failed_for 100ms]" {
		t.Fatalf("recovery: %+v", evs)
	}
	if w.FailingFor(at(1300)) != 0 {
		t.Error("still failing after the recovery")
	}
}

// leapClock is a system clock that also takes the kernel's leap flag.
type leapClock struct {
	stepClock
	flags []int
}

func (l *leapClock) SetLeap(sign int) error { l.flags = append(l.flags, sign); return nil }

// With the PHC disciplined and CLOCK_REALTIME slaved to it, the kernel
// applies the leap second to the system clock (STA_INS / STA_DEL armed
// for the day, cleared the next), as with discipline = "system"; the
// slave compares nothing around the midnight, where the kernel's repeated
// 23:59:59 and the PHC's 23:59:60 disagree by a second, and so never
// steps the system clock a second the other way.
func TestSlaveLeapSecondThroughTheKernel(t *testing.T) {
	mid := time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name  string
		sign  int
		table *leap.Table
	}{
		{"inserted", 1, func() *leap.Table {
			tb := leap.Builtin()
			tb.Entries = append(tb.Entries, leap.Entry{At: mid, Offset: 38})
			return tb
		}()},
		{"deleted", -1, deleted()},
	} {
		t.Run(c.name, func(t *testing.T) {
			phc := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI}}
			sys := &leapClock{stepClock: stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC}}}
			s := NewSlave(sys, New(phc, c.table))
			// at sets the PHC to tai and CLOCK_REALTIME to what the
			// kernel shows then: UTC, with 23:59:59 repeated through an
			// inserted 23:59:60 (a deleted 23:59:59 never shows).
			at := func(tai time.Time) {
				utc, leap60 := c.table.TAIToUTC(tai)
				if leap60 {
					utc = utc.Add(-time.Second)
				}
				phc.host, phc.phcOff = utc, tai.Sub(utc)
			}
			tai0 := c.table.UTCToTAI(mid.Add(-10*time.Minute), false)
			at(tai0)
			if _, err := s.Step(); err != nil || len(sys.flags) != 1 || sys.flags[0] != c.sign {
				t.Fatalf("ten minutes before: err %v flags %v, want [%d]", err, sys.flags, c.sign)
			}
			// Each second (and a bit) through the midnight.
			taiMid := c.table.UTCToTAI(mid.Add(-time.Second), false).Add(time.Second)
			for i := -5; i <= 10; i++ {
				at(taiMid.Add(time.Duration(i)*time.Second + 300*time.Millisecond))
				if step, err := s.Step(); err != nil || step != 0 {
					t.Fatalf("second %d from the midnight: step %v err %v", i, step, err)
				}
			}
			at(taiMid.Add(25 * time.Hour))
			s.Step()
			if len(sys.steps) != 0 || len(sys.flags) != 2 || sys.flags[1] != 0 {
				t.Errorf("steps %v, flags %v (want [%d 0]: cleared the next day)", sys.steps, sys.flags, c.sign)
			}
		})
	}
}

// watchClock is a leapClock whose kernel forgets the flag when told to.
type watchClock struct {
	leapClock
	forget bool
}

func (w *watchClock) WatchLeap() (clock.KernelLeap, error) {
	f := w.forget
	w.forget = false
	k := clock.KernelLeap{TAI: 37, Forgot: f}
	if n := len(w.flags); n > 0 {
		k.Flag = w.flags[n-1]
	}
	return k, nil
}

// The kernel resets its NTP state while the slave's leap is armed (a
// change of clocksource): the flag is cleared, leap_rearmed said, and it
// is set again 1.5 s later.
func TestSlaveLeapRearmed(t *testing.T) {
	mid := time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC)
	table := leap.Builtin()
	table.Entries = append(table.Entries, leap.Entry{At: mid, Offset: 38})
	utc := mid.Add(-10 * time.Minute)
	phc := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: utc, phcOff: 37 * time.Second}}
	sys := &watchClock{leapClock: leapClock{stepClock: stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC}}}}
	s := NewSlave(sys, New(phc, table))
	steer := func(after time.Duration) []event.Event {
		phc.host = utc.Add(after)
		return s.Steer(nil, nil, clock.KernelSync{})
	}
	steer(0)
	sys.forget = true
	evs := steer(time.Second)
	if len(evs) != 1 || evs[0].Name != "leap_rearmed" || fmt.Sprint(sys.flags) != "[1 0]" {
		t.Fatalf("forgot: events %v flags %v", evs, sys.flags)
	}
	steer(2 * time.Second)
	if fmt.Sprint(sys.flags) != "[1 0]" {
		t.Errorf("a second later: flags %v, want nothing set yet", sys.flags)
	}
	steer(2600 * time.Millisecond)
	if fmt.Sprint(sys.flags) != "[1 0 1]" {
		t.Errorf("1.6 s later: flags %v, want it set again", sys.flags)
	}
	// The kernel lab changes the clocksource twice; a lab run that set up
	// late made the changes 5 s apart, and the second leap_rearmed went
	// unsaid (a time window kept it quiet). A look found the flag in place
	// between them: the second reset is a new one, told however soon.
	steer(3600 * time.Millisecond)
	sys.forget = true
	if evs := steer(4600 * time.Millisecond); len(evs) != 1 || evs[0].Name != "leap_rearmed" {
		t.Errorf("a second reset 3.6 s after the first: events %v, want leap_rearmed", evs)
	}
	// A flag that does not take (no look finds it in place between two
	// armings) is armed again and again, told once.
	steer(6200 * time.Millisecond) // set again
	sys.forget = true
	if evs := steer(7200 * time.Millisecond); len(evs) != 0 || fmt.Sprint(sys.flags) != "[1 0 1 0 1 0]" {
		t.Errorf("refused again: events %v flags %v, want it cleared quietly", evs, sys.flags)
	}
}

// The kernel does not insert the second (its TAI offset stays 37): half
// a second past the midnight the system clock, reading 00:00:00.6 where it
// should read 23:59:59.6, is stepped back by the slave, inside the
// bracket, and leap_missed said.
func TestSlaveLeapMissed(t *testing.T) {
	mid := time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC)
	table := leap.Builtin()
	table.Entries = append(table.Entries, leap.Entry{At: mid, Offset: 38})
	phc := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: mid.Add(-10 * time.Minute), phcOff: 37 * time.Second}}
	sys := &watchClock{leapClock: leapClock{stepClock: stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC}}}}
	s := NewSlave(sys, New(phc, table))
	var order []string
	hold := func() { order = append(order, "hold") }
	done := func() { order = append(order, "done") }
	s.Steer(hold, done, clock.KernelSync{})
	phc.host = mid.Add(-5 * time.Second)
	s.Steer(hold, done, clock.KernelSync{})
	// Past the midnight (the PHC on TAI, its UTC past the leap).
	phc.host, phc.phcOff = mid.Add(100*time.Millisecond), 38*time.Second
	if evs := s.Steer(hold, done, clock.KernelSync{}); len(sys.steps) != 0 || len(evs) != 0 {
		t.Fatalf("judged before the kernel's tick: steps %v events %v", sys.steps, evs)
	}
	phc.host = mid.Add(600 * time.Millisecond)
	evs := s.Steer(hold, done, clock.KernelSync{})
	if fmt.Sprint(sys.steps) != "[-1s]" || len(evs) != 1 || evs[0].Name != "leap_missed" || strings.Join(order, " ") != "hold done" {
		t.Errorf("missed: steps %v events %v order %v", sys.steps, evs, order)
	}
}

// A step of the system clock is bracketed: what stamps on CLOCK_REALTIME
// and maps the stamps onto the PHC is held just before it and rebuilt just
// after it; a reading that steps nothing calls neither.
func TestSlaveStepIsBracketed(t *testing.T) {
	host := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	phc := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: host, phcOff: 30*24*time.Hour + 37*time.Second}}
	sys := &stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC, host: host}}
	s := NewSlave(sys, New(phc, leap.Builtin()))
	var order []string
	hold := func() { order = append(order, fmt.Sprintf("hold(steps=%d)", len(sys.steps))) }
	done := func() { order = append(order, fmt.Sprintf("done(steps=%d)", len(sys.steps))) }
	evs := s.Steer(hold, done, clock.KernelSync{})
	if len(evs) != 1 || evs[0].Name != "system_stepped" || strings.Join(order, " ") != "hold(steps=0) done(steps=1)" {
		t.Fatalf("events %v, order %v", evs, order)
	}
	phc.host = phc.host.Add(time.Second)
	phc.phcOff -= 30 * 24 * time.Hour // the system clock now reads the PHC's UTC
	order = nil
	if evs := s.Steer(hold, done, clock.KernelSync{}); len(evs) != 0 || len(order) != 0 {
		t.Errorf("no step: events %v, order %v", evs, order)
	}
}

// livePHC compares with the real CLOCK_REALTIME: the PHC reads it plus off.
type livePHC struct{ fakeClock }

func (l *livePHC) SysOffset() (clock.SysOffset, error) {
	now := time.Now().Round(0)
	return clock.SysOffset{PHC: now.Add(l.phcOff), System: now}, nil
}

// A time read in this process (it carries a monotonic reading) is carried
// onto the PHC by its age: the same place as its wall time gives while the
// system clock is not stepped (a step in between moves the wall time, not
// the age: the kernel lab's boot-clock runs that).
func TestFromRealtimeByAge(t *testing.T) {
	off := 30*24*time.Hour + 37*time.Second
	tb := New(&livePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, phcOff: off}}, leap.Builtin())
	read := time.Now().Add(-50 * time.Millisecond) // monotonic reading kept
	i, err := tb.FromRealtime(read)
	if err != nil {
		t.Fatal(err)
	}
	if d := i.Clock().Sub(read.Round(0).Add(off)); d.Abs() > time.Millisecond {
		t.Errorf("carried %v off", d)
	}
	kernel := read.Round(0) // a kernel stamp: no monotonic reading
	if i, _ := tb.FromRealtime(kernel); i.Clock().Sub(kernel.Add(off)).Abs() > time.Millisecond {
		t.Errorf("kernel stamp carried %v off", i.Clock().Sub(kernel.Add(off)))
	}
	sys := New(&fakeClock{name: "system", scale: clock.UTC}, leap.Builtin())
	if i, _ := sys.FromRealtime(read); i.Clock().Sub(read.Round(0)).Abs() > time.Millisecond {
		t.Errorf("on the system clock: %v off", i.Clock().Sub(read.Round(0)))
	}
}

// A step of the slaved system clock on a leap day clears the kernel's
// flag (Linux forgets the scheduled leap at a step) and sets it again
// 1.5 s later.
func TestSlaveRearmsTheLeapAfterAStep(t *testing.T) {
	mid := time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC)
	tb := leap.Builtin()
	tb.Entries = append(tb.Entries, leap.Entry{At: mid, Offset: 38})
	host := mid.Add(-time.Hour)
	utc := host.Add(-250 * time.Millisecond) // the system clock 250 ms ahead
	phc := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: host, phcOff: utc.Add(37 * time.Second).Sub(host)}}
	sys := &leapClock{stepClock: stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC, host: host}}}
	s := NewSlave(sys, New(phc, tb))
	s.Step()
	if len(sys.steps) != 1 || fmt.Sprint(sys.flags) != "[1 0]" {
		t.Fatalf("steps %v flags %v, want one step and [1 0]", sys.steps, sys.flags)
	}
	// The system clock now on the PHC's UTC (the PHC reads its UTC plus
	// 37 s), readings every 600 ms.
	for i, want := range []string{"[1 0]", "[1 0]", "[1 0 1]"} {
		phc.host = host.Add(time.Duration(i+1)*600*time.Millisecond + sys.steps[0])
		phc.phcOff = 37 * time.Second
		s.Step()
		if fmt.Sprint(sys.flags) != want {
			t.Errorf("reading %d: flags %v, want %s", i+1, sys.flags, want)
		}
	}
}

// syncClock is a system clock that records what the kernel is told of it.
type syncClock struct {
	stepClock
	syncs []clock.KernelSync
	err   error
}

func (s *syncClock) ReportSync(k clock.KernelSync) error {
	s.syncs = append(s.syncs, k)
	return s.err
}

// The kernel is told the system clock is synchronized only while the PHC
// is and the system clock has come within a millisecond of it, with its
// own bound added to the PHC's; a refused write is an ERROR (clock.System
// returns the error of a write that keeps failing once).
func TestSlaveTellsTheKernel(t *testing.T) {
	host := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	phc := &fakePHC{fakeClock{name: "/dev/ptp0", scale: clock.TAI, host: host, phcOff: 37 * time.Second}}
	sys := &syncClock{stepClock: stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC}}}
	s := NewSlave(sys, New(phc, leap.Builtin()))
	good := clock.KernelSync{Synced: true, MaxError: 2 * time.Microsecond, EstError: 500}
	steer := func(i int, p clock.KernelSync) []event.Event {
		phc.host = host.Add(time.Duration(i) * time.Second)
		return s.Steer(nil, nil, p)
	}
	steer(0, clock.KernelSync{})
	if len(sys.syncs) != 1 || sys.syncs[0].Synced {
		t.Fatalf("the PHC not synchronized: %+v", sys.syncs)
	}
	for i := 1; i <= 10; i++ {
		steer(i, good)
	}
	_, b, _ := s.Offset(phc.host)
	last := sys.syncs[len(sys.syncs)-1]
	if !last.Synced || last.MaxError != good.MaxError+b || last.EstError < good.EstError || b > time.Millisecond {
		t.Errorf("after 10 s on a synchronized PHC: %+v, own bound %v", last, b)
	}
	phc.fail = errors.New("EIO")
	n := len(sys.syncs)
	if steer(11, good); len(sys.syncs) != n {
		t.Errorf("told the kernel after a failed reading: %+v", sys.syncs[n:])
	}
	phc.fail, sys.err = nil, errors.New("EPERM")
	if evs := steer(12, good); len(evs) != 1 || evs[0].Name != "kernel_state_error" {
		t.Errorf("a refused write: %v", evs)
	}
	// A system clock 250 ms off the PHC's UTC: stepped, and not yet
	// synchronized for the kernel (its servo has not measured it since).
	phc.phcOff -= 250 * time.Millisecond
	sys2 := &syncClock{stepClock: stepClock{fakeClock: fakeClock{name: "system", scale: clock.UTC}}}
	s = NewSlave(sys2, New(phc, leap.Builtin()))
	if s.Steer(nil, nil, good); len(sys2.steps) != 1 || len(sys2.syncs) != 1 || sys2.syncs[0].Synced {
		t.Errorf("250 ms off: steps %v, the kernel told %+v", sys2.steps, sys2.syncs)
	}
}
