package discipline

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/clock/quality"
	"sitegm/clock/servo"
)

// The discipline joins pairer, servo and quality: these tests drive it
// with edges and labels on a perfect clock (it reads the truth) and check
// what comes out.
var utc0 = time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC)

func newDisc(t *testing.T, mut ...func(*Config)) (*Discipline, *leap.Table) {
	t.Helper()
	table := leap.Builtin()
	table.Expires = utc0.AddDate(1, 0, 0)
	cfg := Config{Osc: clock.TCXO, Timescale: clock.TAI, MeasNoise: 2 * time.Microsecond, LatencyHi: 990 * time.Millisecond,
		Servo: "kalman", Holdover: time.Hour, HoldoverMaxError: 100 * time.Microsecond, JumpThreshold: 10 * time.Microsecond,
		MaxFreq: 500000, Leap: table}
	for _, m := range mut {
		m(&cfg)
	}
	return New(cfg, table.UTCToTAI(utc0, false)), table
}

// second feeds one second: the edge at the clock's time of UTC second u
// (plus err), its label 150 ms later, and a tick. It returns the events.
func second(d *Discipline, table *leap.Table, u time.Time, err time.Duration) (Action, []Event) {
	tai := table.UTCToTAI(u, false)
	evs := d.Edge(tai.Add(err))
	a, evs2 := d.Label(Label{UTC: u, Valid: true, Arrival: tai.Add(err + 150*time.Millisecond), Now: tai.Add(err + 160*time.Millisecond)})
	a3, evs3 := d.Tick(tai.Add(err + 500*time.Millisecond))
	a.merge(a3)
	return a, append(append(evs, evs2...), evs3...)
}

func names(evs []Event) string {
	var n []string
	for _, e := range evs {
		n = append(n, e.Name)
	}
	return strings.Join(n, ",")
}

func TestLocksAndAdvertises(t *testing.T) {
	d, table := newDisc(t)
	var all []Event
	for i := 0; i < 30; i++ {
		_, evs := second(d, table, utc0.Add(time.Duration(i)*time.Second), 0)
		all = append(all, evs...)
	}
	if d.Quality().State() != quality.Locked || d.Quality().ClockClass() != quality.ClassLocked {
		t.Fatalf("state %v; events %s", d.Quality().State(), names(all))
	}
	if !strings.Contains(names(all), "clock_state") {
		t.Errorf("no state events: %s", names(all))
	}
	st := d.Status(table.UTCToTAI(utc0.Add(30*time.Second), false))
	if st.Pairing.Paired < 25 || st.EstError > time.Microsecond {
		t.Errorf("status %+v", st)
	}
}

// A label that is not valid, or has no edge, gives no sample; pairing
// problems are summed up once a minute.
func TestInvalidLabelsAndPairingProblems(t *testing.T) {
	d, table := newDisc(t)
	if a, _ := d.Label(Label{UTC: utc0, Valid: false, Arrival: table.UTCToTAI(utc0, false)}); a.SetFreq || a.Step != 0 {
		t.Error("an invalid label steered the clock")
	}
	var evs []Event
	for i := 0; i < 70; i++ {
		u := utc0.Add(time.Duration(i) * time.Second)
		tai := table.UTCToTAI(u, false)
		_, e := d.Label(Label{UTC: u, Valid: true, Arrival: tai.Add(150 * time.Millisecond), Now: tai}) // no edges
		_, e2 := d.Tick(tai.Add(500 * time.Millisecond))
		evs = append(append(evs, e...), e2...)
	}
	if n := strings.Count(names(evs), "pairing_problems"); n != 1 && n != 2 {
		t.Errorf("pairing_problems %d times in 70 s: %s", n, names(evs))
	}
}

// A pulse the caller dropped at a step (PulseDropped) costs its label, and
// that label is no pairing problem; a label without an edge after one
// paired again is.
func TestDroppedPulseIsNoPairingProblem(t *testing.T) {
	d, table := newDisc(t)
	u := utc0
	for range 5 {
		second(d, table, u, 0)
		u = u.Add(time.Second)
	}
	label := func() []Event {
		tai := table.UTCToTAI(u, false)
		_, e := d.Label(Label{UTC: u, Valid: true, Arrival: tai.Add(150 * time.Millisecond), Now: tai.Add(160 * time.Millisecond)})
		u = u.Add(time.Second)
		return e
	}
	d.PulseDropped()
	d.PulseDropped()
	label() // their pulses dropped (a leap second's)
	label()
	if len(d.problems) != 0 {
		t.Fatalf("a dropped pulse's label counted: %v", d.problems)
	}
	d.PulseDropped()
	second(d, table, u, 0) // paired: the expectation ends
	u = u.Add(time.Second)
	label()
	if d.problems["no_edge"] != 1 {
		t.Fatalf("a label without an edge after a paired one: %v", d.problems)
	}
	var evs []Event
	for range 70 {
		_, e := second(d, table, u, 0)
		evs = append(evs, e...)
		u = u.Add(time.Second)
	}
	if !strings.Contains(names(evs), "pairing_problems") {
		t.Errorf("the real problem was not said: %s", names(evs))
	}
}

// A GNSS jump after lock: jump_alarm, holdover, then jump_over.
func TestJumpEvents(t *testing.T) {
	d, table := newDisc(t)
	for i := 0; i < 30; i++ {
		second(d, table, utc0.Add(time.Duration(i)*time.Second), 0)
	}
	var all []Event
	for i := 30; i < 36; i++ {
		_, evs := second(d, table, utc0.Add(time.Duration(i)*time.Second), -50*time.Microsecond)
		all = append(all, evs...)
	}
	for i := 36; i < 50; i++ {
		_, evs := second(d, table, utc0.Add(time.Duration(i)*time.Second), 0)
		all = append(all, evs...)
	}
	n := names(all)
	if !strings.Contains(n, "jump_alarm") || !strings.Contains(n, "holdover_entered") || !strings.Contains(n, "jump_over") {
		t.Errorf("events %s", n)
	}
}

// The clock a second ahead of GNSS after its lock, the way a leap second
// the kernel did not insert leaves it: the labels around it are not
// paired, so their edges stay unused, and each later label's nearest edge
// is the one a second before its own (offset zero, latency 1.15 s). The
// latency window sees the second: second_disagree, then the jump guard's
// alarm and holdover, not LOCKED on the wrong second.
func TestClockASecondAheadIsSeen(t *testing.T) {
	d, table := newDisc(t)
	for i := 0; i < 30; i++ {
		second(d, table, utc0.Add(time.Duration(i)*time.Second), 0)
	}
	var all []Event
	for i := 30; i < 33; i++ { // edges only: the labels are not paired
		all = append(all, d.Edge(table.UTCToTAI(utc0.Add(time.Duration(i)*time.Second), false).Add(time.Second))...)
	}
	for i := 33; i < 45; i++ {
		_, evs := second(d, table, utc0.Add(time.Duration(i)*time.Second), time.Second)
		all = append(all, evs...)
	}
	n := names(all)
	if !strings.Contains(n, "second_disagree") || !strings.Contains(n, "jump_alarm") || !strings.Contains(n, "holdover_entered") {
		t.Errorf("events %s", n)
	}
	if st := d.Quality().State(); st == quality.Locked {
		t.Errorf("still LOCKED a second off: %s", n)
	}
}

// A GNSS jump after the start but before the first lock (the servo
// tracking, the clock not yet LOCKED) begins the start again: holding a
// clock that never served synchronized time protects nobody, and the
// guard, which leaves only when GNSS agrees with the clock again, kept
// it FREERUN for good (the kernel lab's kernel-pps under load: two
// minutes in the guard, never locked). The jump persists (the new time
// is GNSS's); only the new start's step brings the clock onto it.
func TestJumpBeforeFirstLockStartsAgain(t *testing.T) {
	d, table := newDisc(t)
	var all []Event
	shift := time.Duration(0) // where the clock is against the new GNSS time
	for i := 0; i < 60; i++ {
		u := utc0.Add(time.Duration(i) * time.Second)
		if i == 11 {
			if st := d.Status(table.UTCToTAI(u, false)); st.ServoState != servo.StateTrack || d.Quality().EverLocked() {
				t.Fatalf("the jump must come while tracking, before the first lock: %v, ever locked %v", st.ServoState, d.Quality().EverLocked())
			}
			shift = -50 * time.Microsecond // GNSS moved: the pulse now comes 50 us earlier on the clock
		}
		a, evs := second(d, table, u, shift)
		shift += a.Step
		all = append(all, evs...)
	}
	n := names(all)
	if strings.Contains(n, "jump_alarm") || strings.Count(n, "jump_before_lock") != 1 {
		t.Errorf("a jump before the first lock: events %s", n)
	}
	if !d.Quality().EverLocked() || d.Status(table.UTCToTAI(utc0.Add(60*time.Second), false)).State != quality.Locked {
		t.Errorf("never locked after the start began again: %s", n)
	}
	if shift.Abs() > time.Microsecond {
		t.Errorf("the clock is %v off the new GNSS time", shift)
	}
}

// The leap second at the end of 2026-06-30 (in the table for this test):
// scheduled during the day, applied after it.
func TestLeapEvents(t *testing.T) {
	d, table := newDisc(t)
	table.Entries = append(table.Entries, leap.Entry{At: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), Offset: 38})
	_, evs := d.Tick(table.UTCToTAI(utc0, false))
	if !strings.Contains(names(evs), "leap_scheduled") {
		t.Errorf("events %s", names(evs))
	}
	_, evs = d.Tick(table.UTCToTAI(utc0.Add(2*time.Hour), false))
	if !strings.Contains(names(evs), "leap_applied") {
		t.Errorf("events %s", names(evs))
	}
	// A UTC clock gets the kernel's flag set and cleared.
	du, tu := newDisc(t, func(c *Config) { c.Timescale = clock.UTC })
	tu.Entries = table.Entries
	if a, _ := du.Tick(utc0); !a.SetLeap || a.Leap != 1 {
		t.Errorf("leap flag for a UTC clock: %+v", a)
	}
}

// What a receiver says about leap seconds: an announcement at a month
// end is merged (WARNING leap_table_receiver), one mid-month refused once
// (leap_receiver_refused), not again while it stays the same.
func TestReceiverLeap(t *testing.T) {
	d, _ := newDisc(t)
	d.leapTable.Expires = time.Time{}
	d.leapTable.Entries = leap.Builtin().Entries
	evs := d.ReceiverLeap(utc0.Add(-24*time.Hour), 18, true, 1, 24*time.Hour+time.Hour, true)
	if names(evs) != "leap_table_receiver" || !d.ReceiverLS() {
		t.Errorf("events %s", names(evs))
	}
	bad := func() []Event { return d.ReceiverLeap(utc0, 18, true, 1, 15*24*time.Hour, true) }
	if names(bad()) != "leap_receiver_refused" || len(bad()) != 0 || d.LeapRefusals != 2 {
		t.Errorf("refusals %d", d.LeapRefusals)
	}
}

// A drift file the samples disagree with is dropped and said so.
func TestDriftDistrusted(t *testing.T) {
	d, table := newDisc(t, func(c *Config) { c.InitialFreq, c.InitialFreqSigma = 5000, 50 })
	var all []Event
	for i := 0; i < 10; i++ {
		// The clock runs as if its frequency were right; the samples say
		// otherwise by 5 ppm a second.
		_, evs := second(d, table, utc0.Add(time.Duration(i)*time.Second), time.Duration(i)*5*time.Microsecond)
		all = append(all, evs...)
	}
	if !d.DriftDistrusted() || !strings.Contains(names(all), "drift_distrusted") {
		t.Errorf("events %s", names(all))
	}
	for _, e := range all {
		if e.Name == "drift_distrusted" && e.Level != slog.LevelWarn {
			t.Errorf("level %v", e.Level)
		}
	}
}

// seconds returns a function that runs the next n seconds of a perfect
// reference through d and returns their events.
func seconds(d *Discipline, table *leap.Table) func(n int) []Event {
	i := 0
	return func(n int) []Event {
		var all []Event
		for end := i + n; i < end; i++ {
			_, evs := second(d, table, utc0.Add(time.Duration(i)*time.Second), 0)
			all = append(all, evs...)
		}
		return all
	}
}

// A receiver reporting spoofing is not followed: the locked clock holds
// over at once, and locks again once the receiver is believed again.
func TestDistrustHoldsOver(t *testing.T) {
	d, table := newDisc(t)
	run := seconds(d, table)
	run(30)
	if d.Quality().State() != quality.Locked {
		t.Fatalf("not locked: %v", d.Quality().State())
	}
	d.Distrust("spoofing", true)
	run(3)
	if d.Quality().State() != quality.Holdover || d.Quality().ClockClass() != quality.ClassHoldover || !strings.Contains(d.Quality().Distrusted(), "spoofing") {
		t.Fatalf("spoofed: %v %q", d.Quality().State(), d.Quality().Distrusted())
	}
	d.Distrust("spoofing", false)
	run(20)
	if d.Quality().State() != quality.Locked || d.Quality().Distrusted() != "" {
		t.Fatalf("after spoofing: %v", d.Quality().State())
	}
	// The receiver's own accuracy: 300 ns widens the advertised bound; 5 µs
	// is past the lock threshold and holds over until it is under 500 ns.
	d.SourceAccuracy(300 * time.Nanosecond)
	run(1)
	if e := d.Quality().EstError(); e < 300*time.Nanosecond {
		t.Errorf("bound %v below the receiver's accuracy", e)
	}
	d.SourceAccuracy(5 * time.Microsecond)
	evs := run(2)
	if d.Quality().State() != quality.Holdover || !strings.Contains(names(evs), "gnss_time_accuracy") {
		t.Errorf("5 µs: %v, events %s", d.Quality().State(), names(evs))
	}
	d.SourceAccuracy(800 * time.Nanosecond) // hysteresis: still distrusted
	run(10)
	if d.Quality().State() == quality.Locked {
		t.Error("relocked at 800 ns")
	}
	d.SourceAccuracy(20 * time.Nanosecond)
	run(20)
	if d.Quality().State() != quality.Locked {
		t.Errorf("not relocked: %v", d.Quality().State())
	}
}

// TestCrossCheck: a locked clock 50 ms off the NTP upstreams (whose
// interval is ±3 ms) for 3 fresh selections is an ERROR, GNSS is not
// followed and the clock is FREERUN (not served as synchronized); two
// odd selections are not enough; an agreeing upstream set clears it (a
// NOTICE) and the clock locks again.
func TestCrossCheck(t *testing.T) {
	d, table := newDisc(t)
	run := seconds(d, table)
	run(30)
	if d.Quality().State() != quality.Locked {
		t.Fatalf("not locked: %v", d.Quality().State())
	}
	ms := time.Millisecond
	var evs []Event
	for k := 0; k < 2; k++ {
		evs = append(evs, d.CrossCheck(50*ms, 3*ms, 2*ms)...)
	}
	evs = append(evs, d.CrossCheck(0, 3*ms, 2*ms)...) // agrees once: the count starts again
	evs = append(evs, d.CrossCheck(-50*ms, 3*ms, 2*ms)...)
	evs = append(evs, run(2)...)
	if d.Quality().State() != quality.Locked || len(evs) != 0 {
		t.Fatalf("two odd selections changed it: %v %s", d.Quality().State(), names(evs))
	}
	for k := 0; k < 2; k++ {
		evs = append(evs, d.CrossCheck(-50*ms, 3*ms, 2*ms)...)
	}
	evs = append(evs, run(2)...)
	if d.Quality().State() != quality.Freerun || !strings.Contains(d.Quality().Distrusted(), "NTP upstreams") || !strings.Contains(names(evs), "gnss_ntp_disagree") {
		t.Fatalf("disagreeing: %v %q %s", d.Quality().State(), d.Quality().Distrusted(), names(evs))
	}
	if a := d.Quality().NTP(utc0, table); a.LI != 3 || a.Stratum != 0 {
		t.Errorf("disputed time served as synchronized: %+v", a)
	}
	run(20)
	if d.Quality().State() != quality.Freerun {
		t.Errorf("reacquired GNSS while disputed: %v", d.Quality().State())
	}
	evs = nil
	for k := 0; k < 3; k++ {
		evs = append(evs, d.CrossCheck(500*time.Microsecond, 3*ms, 2*ms)...)
	}
	evs = append(evs, run(20)...)
	if d.Quality().State() != quality.Locked || d.Quality().Distrusted() != "" || !strings.Contains(names(evs), "gnss_ntp_disagree") {
		t.Errorf("after agreeing: %v %q %s", d.Quality().State(), d.Quality().Distrusted(), names(evs))
	}
}

// A pulse that comes 300 ns late (an antenna cable) with PPSDelay 300 ns
// is, to the discipline, a pulse on time: the same actions and the same
// estimate, second by second, as a discipline without delay fed the true
// edges. Without PPSDelay the late pulse moves the clock.
func TestPPSDelayTakenOffTheEdge(t *testing.T) {
	late, table := newDisc(t, func(cfg *Config) { cfg.PPSDelay = 300 * time.Nanosecond })
	onTime, _ := newDisc(t)
	uncorrected, _ := newDisc(t)
	moved := false
	for i := 0; i < 40; i++ {
		u := utc0.Add(time.Duration(i) * time.Second)
		a1, _ := second(late, table, u, 300*time.Nanosecond)
		a2, _ := second(onTime, table, u, 0)
		a3, _ := second(uncorrected, table, u, 300*time.Nanosecond)
		now := table.UTCToTAI(u, false).Add(time.Second)
		if a1 != a2 || late.Status(now).Estimate != onTime.Status(now).Estimate {
			t.Fatalf("second %d: with the delay taken off: %+v %+v, on time: %+v %+v", i, a1, late.Status(now).Estimate, a2, onTime.Status(now).Estimate)
		}
		moved = moved || a3 != a2
	}
	if !moved {
		t.Error("a pulse 300 ns late without PPSDelay steered the clock as one on time")
	}
}

// A step of a UTC clock (CLOCK_REALTIME) after the kernel's leap flag was
// set makes Linux forget the leap: the flag is cleared at the next tick
// and set again 1.5 s later, so that the kernel schedules it anew.
func TestLeapRearmedAfterAStep(t *testing.T) {
	d, table := newDisc(t, func(c *Config) { c.Timescale = clock.UTC })
	table.Entries = append(table.Entries, leap.Entry{At: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), Offset: 38})
	if a, _ := d.Tick(utc0); !a.SetLeap || a.Leap != 1 {
		t.Fatalf("armed: %+v", a)
	}
	d.note(servo.Action{Note: servo.NoteStepped, Step: 3 * time.Microsecond})
	if a, _ := d.Tick(utc0.Add(time.Second)); !a.SetLeap || a.Leap != 0 {
		t.Errorf("after the step: %+v, want the flag cleared", a)
	}
	if a, _ := d.Tick(utc0.Add(2 * time.Second)); a.SetLeap {
		t.Errorf("half a second later: %+v, want nothing yet", a)
	}
	if a, _ := d.Tick(utc0.Add(2600 * time.Millisecond)); !a.SetLeap || a.Leap != 1 {
		t.Errorf("1.6 s after: %+v, want the flag set again", a)
	}
}

// Sentences 1.5 s late after a stall, before the first lock (a hog
// series' kernel lab: the simulator's backlog): the clock is not stepped
// a second wrong, it locks on the right second.
func TestLateSentencesAfterAStallAreNoSecond(t *testing.T) {
	d, table := newDisc(t)
	type ev struct {
		at   time.Time
		edge bool
		u    time.Time
	}
	var evs []ev
	for i := 0; i < 60; i++ {
		u := utc0.Add(time.Duration(i) * time.Second)
		if i >= 4 && i < 9 {
			continue // the stall: nothing
		}
		lat := 150 * time.Millisecond
		if i >= 9 && i < 30 {
			lat = 1500 * time.Millisecond
		}
		tai := table.UTCToTAI(u, false)
		evs = append(evs, ev{at: tai, edge: true, u: u}, ev{at: tai.Add(lat), u: u})
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	var all []Event
	next := evs[0].at
	for _, e := range evs {
		for ; next.Before(e.at); next = next.Add(500 * time.Millisecond) {
			_, x := d.Tick(next)
			all = append(all, x...)
		}
		if e.edge {
			all = append(all, d.Edge(e.at)...)
			continue
		}
		a, x := d.Label(Label{UTC: e.u, Valid: true, Arrival: e.at, Now: e.at.Add(10 * time.Millisecond)})
		if a.Step.Abs() >= 500*time.Millisecond {
			t.Fatalf("stepped %v at %v: %s", a.Step, e.u, names(append(all, x...)))
		}
		all = append(all, x...)
	}
	n := names(all)
	if d.Quality().State() != quality.Locked || strings.Contains(n, "jump_") || strings.Contains(n, "second_disagree") {
		t.Errorf("state %s; events %s", d.Quality().State(), n)
	}
}
