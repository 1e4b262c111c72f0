package timebase

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/event"
)

// simSys is CLOCK_REALTIME in these tests: it advances as the readings
// take their time and as the test lets seconds pass.
type simSys struct{ t time.Time }

// simPHC is a PHC over simSys: phc = base + (sys - at) * (1 + (nat + adj)/1e9).
type simPHC struct {
	name     string
	sys      *simSys
	at, base time.Time
	nat, adj float64 // ppb
	window   time.Duration
	rng      *rand.Rand
	fail     bool
	steps    int
}

func (p *simPHC) phc() time.Time {
	d := p.sys.t.Sub(p.at)
	return p.base.Add(d + time.Duration(float64(d)*(p.nat+p.adj)/1e9))
}
func (p *simPHC) rebase()                    { p.base, p.at = p.phc(), p.sys.t }
func (p *simPHC) Name() string               { return p.name }
func (p *simPHC) Timescale() clock.Timescale { return clock.TAI }
func (p *simPHC) Now() (time.Time, error)    { return p.phc(), nil }
func (p *simPHC) Frequency() (float64, error) {
	return p.adj, nil
}
func (p *simPHC) SetFrequency(ppb float64) error { p.rebase(); p.adj = ppb; return nil }
func (p *simPHC) Step(d time.Duration) error {
	p.rebase()
	p.base = p.base.Add(d)
	p.steps++
	return nil
}
func (p *simPHC) MaxFrequency() float64 { return 62499999 }

// SysOffset pairs the PHC with the system clock as a driver's extended
// reading does: the pairing is off by up to half the window.
func (p *simPHC) SysOffset() (clock.SysOffset, error) {
	if p.fail {
		return clock.SysOffset{}, errors.New("EIO")
	}
	p.sys.t = p.sys.t.Add(3 * time.Microsecond)
	err := time.Duration((p.rng.Float64() - 0.5) * float64(p.window))
	return clock.SysOffset{PHC: p.phc(), System: p.sys.t.Add(err), Window: p.window}, nil
}

// A hardware stamp on a slave PHC reaches the served clock through the
// timebase, carried by the slave's offset; refused before it is measured;
// a PHC that is neither is the wrong clock.
func TestFromClockCarriesSlaveStamps(t *testing.T) {
	sys, master, slave, s := pair(t)
	tb := New(master, leap.Builtin())
	m := map[string]*PHCSlave{slave.name: s}
	tb.slaves.Store(&m)
	if _, err := tb.FromClock(slave.name, slave.phc()); !errors.Is(err, ErrSlaveUnknown) {
		t.Fatalf("unmeasured slave: %v", err)
	}
	run(sys, s, 60)
	i, err := tb.FromClock(slave.name, slave.phc())
	if err != nil {
		t.Fatal(err)
	}
	if d := i.Clock().Sub(master.phc()); d.Abs() > s.Status().Bound {
		t.Fatalf("carried %v off, bound %v", d, s.Status().Bound)
	}
	if tb.Slave(slave.name) != s || len(tb.Slaves()) != 1 {
		t.Fatal("the slave is not listed")
	}
	if _, err := tb.FromClock("/dev/ptp7", slave.phc()); !errors.Is(err, ErrWrongClock) {
		t.Fatalf("an unknown PHC: %v", err)
	}
}

// pair is a disciplined PHC on the truth and a slave PHC 37 s behind
// (UTC, as a driver starts one) running 25 ppm fast.
func pair(t *testing.T) (*simSys, *simPHC, *simPHC, *PHCSlave) {
	t.Helper()
	sys := &simSys{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	rng := rand.New(rand.NewPCG(1, 2))
	master := &simPHC{name: "/dev/ptp0", sys: sys, at: sys.t, base: sys.t.Add(37 * time.Second), window: time.Microsecond, rng: rng}
	slave := &simPHC{name: "/dev/ptp1", sys: sys, at: sys.t, base: sys.t, nat: 25000, window: time.Microsecond, rng: rng}
	tb := New(master, leap.Builtin())
	s := NewPHCSlave(slave, tb)
	if s == nil {
		t.Fatal("no slave on a PHC timebase")
	}
	return sys, master, slave, s
}

// run steers the slave once a second for n seconds, returning its events.
func run(sys *simSys, s *PHCSlave, n int) []event.Event {
	var evs []event.Event
	for range n {
		sys.t = sys.t.Add(time.Second)
		evs = append(evs, s.Steer()...)
	}
	return evs
}

func names(evs []event.Event) string {
	var n []string
	for _, e := range evs {
		n = append(n, e.Name)
	}
	return strings.Join(n, " ")
}

// carried checks that a stamp taken on the slave now, carried onto the
// master, is the master's time within the bound the slave gives.
func carried(t *testing.T, master, slave *simPHC, s *PHCSlave) time.Duration {
	t.Helper()
	m, bound, err := s.ToMaster(slave.phc())
	if err != nil {
		t.Fatal(err)
	}
	e := m.Sub(master.phc())
	if e.Abs() > bound {
		t.Fatalf("carried stamp off by %v, beyond its bound %v", e, bound)
	}
	return bound
}

func TestPHCSlaveLocksWithoutTouchingTheMaster(t *testing.T) {
	sys, master, slave, s := pair(t)
	if _, _, err := s.ToMaster(slave.phc()); !errors.Is(err, ErrSlaveUnknown) {
		t.Fatalf("a slave never measured carried a stamp: %v", err)
	}
	evs := run(sys, s, 60)
	// Stepped before the lock only (the start: onto the master, then once
	// more when the servo has measured the 25 ppm), never after.
	steps := slave.steps
	evs = append(evs, run(sys, s, 60)...)
	st := s.Status()
	if st.State != SlaveLocked || steps < 1 || steps > 2 || slave.steps != steps || master.steps != 0 || master.adj != 0 {
		t.Fatalf("state %s, slave stepped %d times, master stepped %d and steered %v ppb; events %s",
			st.State, slave.steps, master.steps, master.adj, names(evs))
	}
	if !strings.Contains(names(evs), "phc_slave_stepped") || !strings.Contains(names(evs), "phc_slave") {
		t.Fatalf("events: %s", names(evs))
	}
	if d := slave.phc().Sub(master.phc()); d.Abs() > 500*time.Nanosecond {
		t.Fatalf("slave %v from the master after a minute", d)
	}
	// The servo found the slave's 25 ppm within the noise of 1 µs readings.
	if e := st.Freq + 25000; e > 50 || e < -50 {
		t.Fatalf("slave frequency %v ppb, want -25000", st.Freq)
	}
	if b := carried(t, master, slave, s); b > 2*time.Microsecond {
		t.Fatalf("bound %v for 1 µs readings", b)
	}
}

// An outside step of the slave (another phc2sys, an operator's phc_ctl) is
// seen at the next reading and stepped back; the master is not touched.
func TestPHCSlaveSteppedByAnother(t *testing.T) {
	sys, master, slave, s := pair(t)
	run(sys, s, 60)
	steps := slave.steps
	slave.base = slave.base.Add(time.Millisecond)
	evs := run(sys, s, 1)
	if !strings.Contains(names(evs), "phc_slave_jumped") || slave.steps != steps+1 {
		t.Fatalf("events %s, %d steps", names(evs), slave.steps)
	}
	if d := slave.phc().Sub(master.phc()); d.Abs() > 5*time.Microsecond {
		t.Fatalf("slave %v from the master right after the jump", d)
	}
	evs = run(sys, s, 30)
	if s.Status().State != SlaveLocked || master.steps != 0 {
		t.Fatalf("state %s, master steps %d, events %s", s.Status().State, master.steps, names(evs))
	}
	carried(t, master, slave, s)
}

// A slave that cannot be read is a named event; its stamps are carried on
// the last reading with a growing bound for a few seconds, then refused,
// never taken as the master's time.
func TestPHCSlaveFailing(t *testing.T) {
	sys, master, slave, s := pair(t)
	run(sys, s, 60)
	slave.fail = true
	evs := run(sys, s, 3)
	if !strings.Contains(names(evs), "phc_slave") || s.Status().State != SlaveFault || s.Status().Failures != 3 {
		t.Fatalf("events %s, status %+v", names(evs), s.Status())
	}
	carried(t, master, slave, s)
	run(sys, s, 10)
	if _, _, err := s.ToMaster(slave.phc()); !errors.Is(err, ErrSlaveUnknown) {
		t.Fatalf("a slave unread for 13 s still carried stamps: %v", err)
	}
	slave.fail = false
	evs = run(sys, s, 30)
	if s.Status().State != SlaveLocked {
		t.Fatalf("back: state %s, events %s", s.Status().State, names(evs))
	}
	carried(t, master, slave, s)
}

// The disciplined PHC stepped (onto TAI at its first lock: 37 s) takes
// its slaves along at once: no jump is reported, and the slave is on the
// master again within a few readings.
func TestPHCSlaveFollowsMasterStep(t *testing.T) {
	sys, master, slave, s := pair(t)
	run(sys, s, 30)
	master.Step(-37 * time.Second)
	evs := s.MasterStepped(-37 * time.Second)
	evs = append(evs, run(sys, s, 30)...)
	if strings.Contains(names(evs), "phc_slave_jumped") || s.Status().State != SlaveLocked {
		t.Fatalf("state %s, events %s", s.Status().State, names(evs))
	}
	if d := slave.phc().Sub(master.phc()); d.Abs() > time.Microsecond {
		t.Fatalf("slave %v from the master", d)
	}
	carried(t, master, slave, s)
}

// Compare pairs through CLOCK_REALTIME: the master's offset is taken at
// the slave's reading, so a system clock slewing between the readings
// does not enter; a system clock stepped between them is refused.
func TestCompare(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	so := func(sys time.Duration, phcMinusSys time.Duration, w time.Duration) clock.SysOffset {
		return clock.SysOffset{System: t0.Add(sys), PHC: t0.Add(sys + phcMinusSys), Window: w}
	}
	// Master - system moves from 100 to 110 ns over 20 µs; the slave is
	// read halfway, 1000 ns ahead of the system: 895 ns ahead of the master.
	off, w, err := Compare(so(0, 100, 10), so(10*time.Microsecond, 1000, 20), so(20*time.Microsecond, 110, 30))
	if err != nil || off != 895 || w != 50 {
		t.Fatalf("off %v window %v err %v", off, w, err)
	}
	if _, _, err := Compare(so(0, 100, 10), so(10*time.Microsecond, 1000, 20), so(20*time.Microsecond, time.Millisecond, 30)); err == nil {
		t.Fatal("a system clock stepped between the readings was paired")
	}
}
