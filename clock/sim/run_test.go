package sim

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"sitegm/clock"
	"sitegm/clock/quality"
)

// base is a TCXO with 20 ns PPS jitter locking from 10 ppm.
func base() Scenario {
	return Scenario{Osc: clock.TCXO, FreqOffsetPPM: 10, PhaseOffset: 200 * time.Millisecond, PPSJitter: 20 * time.Nanosecond,
		Latency: 150 * time.Millisecond, LatencyJitter: 50 * time.Millisecond, Duration: 10 * time.Minute}
}

func teAt(r Result, t float64) float64 {
	for _, p := range r.Points {
		if p.T >= t {
			return p.TE
		}
	}
	return math.NaN()
}

func stateAt(r Result, t float64) quality.State {
	for _, p := range r.Points {
		if p.T >= t {
			return p.State
		}
	}
	return ""
}

func TestLocksFromTenPPM(t *testing.T) {
	for _, df := range []bool{false, true} {
		sc := base()
		sc.DriftFile = df
		r := Run(sc, "kalman")
		limit := 30.0
		if df {
			limit = 10
		}
		if r.LockTime == nil || *r.LockTime > limit {
			t.Errorf("drift file %v: lock time %v, want <= %v s", df, r.LockTime, limit)
		}
		if r.RMSTE == nil || *r.RMSTE > 10 {
			t.Errorf("drift file %v: RMS TE %v ns", df, r.RMSTE)
		}
		if stateAt(r, 60) != quality.Locked || r.BoundExceeded != 0 {
			t.Errorf("drift file %v: state %s at 60 s, bound exceeded %d s", df, stateAt(r, 60), r.BoundExceeded)
		}
	}
}

// Holdover is entered within the servo's gap after the last pulse, says
// class 7 while the predicted error is within spec, leaves on return, and
// the true error stays inside the advertised bound throughout.
func TestHoldoverEntryExit(t *testing.T) {
	sc := base()
	sc.Faults = []Fault{{Kind: FaultOutage, Start: 20 * time.Minute, Length: 30 * time.Minute}}
	sc.Duration = time.Hour
	r := Run(sc, "kalman")
	var enter, leave float64
	for _, c := range r.ClockClass {
		if c[1] == float64(quality.ClassHoldover) && enter == 0 {
			enter = c[0]
		}
		if c[1] == float64(quality.ClassLocked) && enter > 0 && leave == 0 {
			leave = c[0]
		}
	}
	if enter < 1200 || enter > 1212 {
		t.Errorf("holdover entered at %.1f s, outage at 1200 s (10 s grace)", enter)
	}
	if leave < 3000 || leave > 3030 {
		t.Errorf("locked again at %.1f s, GNSS back at 3000 s", leave)
	}
	if r.BoundExceeded != 0 {
		t.Errorf("true error beyond the advertised bound for %d s", r.BoundExceeded)
	}
	names := r.EventNames()
	for _, want := range []string{"holdover_entered", "holdover_left"} {
		if !strings.Contains(names, want) {
			t.Errorf("no %s event in %s", want, names)
		}
	}
	if te := math.Abs(teAt(r, 2990)); te > 2000 {
		t.Errorf("30 min of TCXO holdover: %.0f ns", te)
	}
}

// Past the holdover limit the clock is free-running: clockClass 52.
func TestHoldoverLimit(t *testing.T) {
	sc := base()
	sc.Holdover = 5 * time.Minute
	sc.Faults = []Fault{{Kind: FaultOutage, Start: 5 * time.Minute, Length: time.Hour}}
	sc.Duration = 15 * time.Minute
	r := Run(sc, "kalman")
	if got := stateAt(r, 5*60+4*60); got != quality.Holdover {
		t.Errorf("4 min into holdover: %s", got)
	}
	if got := stateAt(r, 5*60+6*60); got != quality.Freerun {
		t.Errorf("6 min into a 5 min holdover: %s", got)
	}
	last := r.ClockClass[len(r.ClockClass)-1]
	if last[1] != float64(quality.ClassDegradedA) || last[0] < 610 || last[0] > 612 {
		t.Errorf("clock class timeline %v", r.ClockClass)
	}
}

// A receiver whose time jumps (spoofing, a firmware bug) is not followed:
// the clock holds over and raises an alarm, and takes GNSS back when it
// agrees again. With follow_jumps set, a persistent new time is followed.
func TestJumpGuard(t *testing.T) {
	sc := base()
	sc.Faults = []Fault{{Kind: FaultJump, Start: 5 * time.Minute, Length: 2 * time.Minute, Jump: 300 * time.Microsecond}}
	r := Run(sc, "kalman")
	names := r.EventNames()
	if !strings.Contains(names, "jump_alarm") || !strings.Contains(names, "jump_over") {
		t.Fatalf("events: %s", names)
	}
	if te := math.Abs(teAt(r, 6*60)); te > 1000 {
		t.Errorf("followed the jump: TE %.0f ns during it", te)
	}
	if got := stateAt(r, 6*60); got != quality.Holdover {
		t.Errorf("during the jump: %s", got)
	}
	if got := stateAt(r, 8*60); got != quality.Locked {
		t.Errorf("after the jump: %s", got)
	}

	sc.FollowJumps = 30 * time.Second
	sc.Faults[0].Length = 10 * time.Minute
	sc.Duration = 15 * time.Minute
	r = Run(sc, "kalman")
	if !strings.Contains(r.EventNames(), "jump_followed") {
		t.Fatalf("persistent jump not followed: %s", r.EventNames())
	}
	// Following means the clock now carries the receiver's error.
	if te := teAt(r, 9*60); math.Abs(te-(-300000)) > 1000 && math.Abs(te-300000) > 1000 {
		t.Errorf("after following: TE %.0f ns", te)
	}
}

// Leap seconds, inserted and deleted: the clock keeps TAI straight through
// (labels 23:59:60 and the missing 23:59:59 are converted by the table).
func TestLeapSeconds(t *testing.T) {
	for _, sign := range []int{1, -1} {
		sc := base()
		day := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
		sc.Start = day.Add(24*time.Hour - 5*time.Minute)
		sc.Leap = &Leap{Day: day, Sign: sign}
		sc.LeapInTable = true
		r := Run(sc, "kalman")
		for _, p := range r.Points {
			if p.T > 60 && math.Abs(p.TE) > 100 {
				t.Fatalf("leap %+d: TE %.0f ns at %.0f s", sign, p.TE, p.T)
			}
		}
		if !strings.Contains(r.EventNames(), "leap_scheduled") || !strings.Contains(r.EventNames(), "leap_applied") {
			t.Errorf("leap %+d events: %s", sign, r.EventNames())
		}
	}
}

// An expired leap table is a warning, never a reason to drop pulses.
func TestExpiredLeapTableStillLocks(t *testing.T) {
	sc := base()
	sc.ExpiredTable = true
	r := Run(sc, "kalman")
	if r.LockTime == nil || stateAt(r, 120) != quality.Locked {
		t.Errorf("expired table: lock %v, state %s", r.LockTime, stateAt(r, 120))
	}
}

// NMEA that arrives more than a second after its edge, with a pairing
// window that says so.
func TestNMEALatencyOverOneSecond(t *testing.T) {
	sc := base()
	sc.Latency, sc.LatencyJitter = 1200*time.Millisecond, 300*time.Millisecond
	sc.LatencyLo, sc.LatencyHi = time.Second, 1900*time.Millisecond
	r := Run(sc, "kalman")
	if r.LockTime == nil || *r.LockTime > 30 || r.RMSTE == nil || *r.RMSTE > 10 {
		t.Errorf("late NMEA: lock %s, RMS %s", fp(r.LockTime), fp(r.RMSTE))
	}
	// A window longer than a second holds two edges for every label: the
	// pairer refuses to guess, and the clock never claims a lock.
	sc.LatencyLo, sc.LatencyHi = 0, 1500*time.Millisecond
	r = Run(sc, "kalman")
	for _, p := range r.Points {
		if p.State == quality.Locked {
			t.Fatalf("locked with an ambiguous window (TE %.0f ns at %.0f s)", p.TE, p.T)
		}
	}
}

// Missing pulses (a PPS glitching off for a few seconds at a time) are
// ridden through without leaving LOCKED.
func TestMissingPulses(t *testing.T) {
	sc := base()
	for i := 0; i < 5; i++ {
		sc.Faults = append(sc.Faults, Fault{Kind: FaultPPSSilence, Start: time.Duration(120+60*i) * time.Second, Length: 2 * time.Second})
	}
	r := Run(sc, "kalman")
	for _, c := range r.ClockClass[1:] {
		if c[0] > 60 && c[1] != float64(quality.ClassLocked) {
			t.Errorf("class %v at %.0f s", c[1], c[0])
		}
	}
	if r.RMSTE == nil || *r.RMSTE > 10 {
		t.Errorf("RMS %v", r.RMSTE)
	}
}

// The targets, on the standard scenario, against the PI baseline
// on identical input. Ratios are checked loosely here (seeded, so they are
// deterministic); `sitegm sim` reports them.
func TestBeatsPIBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("26 simulated hours")
	}
	sc, _ := ScenarioByName("standard")
	k, p := Run(sc, "kalman"), Run(sc, "pi")
	if *k.RMSTE > 0.5**p.RMSTE {
		t.Errorf("steady RMS: kalman %.1f ns, pi %.1f ns", *k.RMSTE, *p.RMSTE)
	}
	if *k.HoldoverTE["1h"] > 0.5**p.HoldoverTE["1h"] {
		t.Errorf("1 h holdover: kalman %.0f ns, pi %.0f ns", *k.HoldoverTE["1h"], *p.HoldoverTE["1h"])
	}
	if time.Duration(*k.HoldoverTE["4h"]) > clock.TCXO.Holdover4h || time.Duration(*k.HoldoverTE["24h"]) > clock.TCXO.Holdover24h {
		t.Errorf("holdover beyond the TCXO spec: 4 h %.0f ns, 24 h %.0f ns", *k.HoldoverTE["4h"], *k.HoldoverTE["24h"])
	}
}

func fp(p *float64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64)
}

// A 100 ppb frequency step (2 °C on a TCXO) is found from the ramp it
// leaves two samples after it, taken into the frequency at once and its
// phase removed fast: the transient stays within twice the PI's (which
// follows every sample at 70 %) and the RMS well under it. Before the
// ramp detection it was four times the PI's.
func TestFrequencyStepTransient(t *testing.T) {
	sc, _ := ScenarioByName("temperature")
	sc.Faults, sc.Duration = nil, time.Hour
	k, p := Run(sc, "kalman"), Run(sc, "pi")
	if *k.MaxTE > 2**p.MaxTE || *k.RMSTE > 0.5**p.RMSTE {
		t.Errorf("temperature step: kalman max %.0f ns rms %.1f ns, pi max %.0f ns rms %.1f ns", *k.MaxTE, *k.RMSTE, *p.MaxTE, *p.RMSTE)
	}
	t.Logf("temperature step: kalman max %.0f ns rms %.1f ns, pi max %.0f ns rms %.1f ns", *k.MaxTE, *k.RMSTE, *p.MaxTE, *p.RMSTE)
}

// NMEA-only (no PPS, milliseconds of noise) over many seeds: every seed
// locks at once and beats the PI. Seed 6 used to lose its frequency at
// the start (R adapted to a hundredth of the truth, then outliers widened
// the frequency to thousands of ppm) and took 46 minutes to lock.
func TestNMEAOnlyEverySeed(t *testing.T) {
	sc, _ := ScenarioByName("nmea-only")
	for seed := int64(1); seed <= 20; seed++ {
		sc.Seed = seed
		k, p := Run(sc, "kalman"), Run(sc, "pi")
		if k.LockTime == nil || *k.LockTime > 5 || k.RMSTE == nil || *k.RMSTE > 0.5**p.RMSTE {
			t.Errorf("seed %d: kalman lock %s s rms %s ns, pi rms %s ns", seed, fp(k.LockTime), fp(k.RMSTE), fp(p.RMSTE))
		}
	}
}

// rmsFrom is the RMS time error from second t0 on.
func rmsFrom(r Result, t0 float64) float64 {
	var sum float64
	n := 0
	for _, p := range r.Points {
		if p.T >= t0 {
			sum += p.TE * p.TE
			n++
		}
	}
	return math.Sqrt(sum / float64(max(n, 1)))
}

// firstClass6 is when the clock first announced clockClass 6 (-1: never).
func firstClass6(r Result) float64 {
	for _, p := range r.Points {
		if p.Class == 6 {
			return p.T
		}
	}
	return -1
}

// A noisy PPS (a USB serial adapter's DCD line scatters by tens of µs to a
// millisecond) over ten seeds: the clock locks and says so (clockClass 6),
// averages the noise far below the PI's error, and the advertised bound
// holds for all but a few seconds (over ten seeds: 20 µs 0.16 % of the
// synchronized seconds, at worst 1.19 times the bound; 100 µs 0.12 %,
// 1.22; 1 ms 0.9 %, 1.47, its worst seed 5.8 %). Before, a 20 µs PPS sent the start into
// the jump guard with a frequency learned from two samples, and the clock
// ran away by hundreds of milliseconds.
func TestNoisyPPS(t *testing.T) {
	for _, c := range []struct {
		jitter   time.Duration
		maxRatio float64
		maxOver  float64 // fraction of the seconds beyond the advertised bound
	}{{20 * time.Microsecond, 0.2, 0.02}, {100 * time.Microsecond, 0.2, 0.02}, {time.Millisecond, 0.7, 0.08}} {
		for seed := int64(1); seed <= 10; seed++ {
			sc, _ := ScenarioByName("lock")
			sc.PPSJitter, sc.Duration, sc.Seed = c.jitter, 30*time.Minute, seed
			k, p := Run(sc, "kalman"), Run(sc, "pi")
			kr, pr := rmsFrom(k, 600), rmsFrom(p, 600)
			if last := k.Points[len(k.Points)-1]; last.Class != 6 || kr > c.maxRatio*pr || float64(k.BoundExceeded) > c.maxOver*float64(len(k.Points)) {
				t.Errorf("PPS jitter %v seed %d: kalman rms %.0f ns (pi %.0f), class %d at the end (locked at %.0f s), bound exceeded %d s",
					c.jitter, seed, kr, pr, last.Class, firstClass6(k), k.BoundExceeded)
			}
		}
	}
}

// Issue 11 item 10: a drift file that is wrong (another box's, edited,
// damaged) while claiming ±50 ppb is dropped by the servo on the first
// samples: the clock still locks, and once synchronized its advertised
// error covers its true error. Before, a file 5 ppm off never locked and
// the error grew to hundreds of ms under a status of microseconds.
func TestWrongDriftFileDistrusted(t *testing.T) {
	for _, errPPB := range []float64{300, 2000, 5000, 50000, 90000} {
		for seed := int64(1); seed <= 3; seed++ {
			sc, _ := ScenarioByName("lock-driftfile")
			sc.DriftFileError, sc.Seed, sc.Duration = errPPB, seed, 10*time.Minute
			r := Run(sc, "kalman")
			lockAt, worst := -1.0, 0.0
			for _, p := range r.Points {
				if p.State == "LOCKED" && lockAt < 0 {
					lockAt = p.T
				}
				if !math.IsNaN(p.EstError) {
					worst = math.Max(worst, math.Abs(p.TE)/p.EstError)
				}
			}
			distrusted := false
			for _, e := range r.Events {
				distrusted = distrusted || e.Name == "drift_distrusted"
			}
			// A file a few hundred ppb off is within what the filter's
			// ramp detection corrects without dropping it; beyond a few
			// ppm it must be dropped. The bound is 3 sigma: a brief
			// excess of a few percent right after lock is that, not a
			// lie (TestNoisyPPS allows the same).
			wantDistrust := errPPB >= 2000
			if lockAt < 0 || lockAt > 120 || worst > 1.25 || distrusted != wantDistrust {
				t.Errorf("drift file %v ppb off, seed %d: lock at %v s, worst |TE|/advertised %.2f, distrusted %v", errPPB, seed, lockAt, worst, distrusted)
			}
		}
	}
	// A right file is kept: no distrust, lock at once.
	sc, _ := ScenarioByName("lock-driftfile")
	sc.Duration = time.Minute
	for _, e := range Run(sc, "kalman").Events {
		if e.Name == "drift_distrusted" {
			t.Error("a right drift file was distrusted")
		}
	}
}

// TestPPSNoiseHonestWhateverItIs: whatever the pulse's real noise (a
// timing receiver's 20 ns to a poor one's 10 µs), with the daemon's prior
// (2 µs for every PPS source) the clock locks and its error stays within
// what it advertises. The kernel lab found that a 50 ns prior with a 1 µs
// pulse locked at once and then advertised a bound up to nine times too
// small.
func TestPPSNoiseHonestWhateverItIs(t *testing.T) {
	for _, j := range []time.Duration{20 * time.Nanosecond, 300 * time.Nanosecond, time.Microsecond, 3 * time.Microsecond, 10 * time.Microsecond} {
		for seed := int64(1); seed <= 3; seed++ {
			sc, _ := ScenarioByName("lock")
			sc.PPSJitter, sc.Duration, sc.MeasNoise, sc.Seed = j, 3*time.Minute, 2*time.Microsecond, seed
			r := Run(sc, "kalman")
			lock, over := -1.0, 0.0
			for _, p := range r.Points {
				if p.State == "LOCKED" && lock < 0 {
					lock = p.T
				}
				if lock >= 0 && !math.IsNaN(p.EstError) {
					over = math.Max(over, math.Abs(p.TE)/p.EstError)
				}
			}
			if lock < 0 || lock > 90 || over > 1 {
				t.Errorf("jitter %v seed %d: lock at %v s, worst |TE|/advertised %.2f", j, seed, lock, over)
			}
		}
	}
}

// A start cut short by a stall in which the oscillator's rate moved (the
// kernel lab's guest starved for 5 s, its PHC's rate moved 18 ppm): the
// servo came out of it sure of a frequency 18 ppm wrong, every sample
// after lay beyond its gate and ramped away from the last, no three
// agreed as a jump, and the clock sat in holdover for good, never locked,
// 3 ms off at three minutes. Now the start begins again after
// discipline.RestartAfter rejections, and the clock locks.
func TestStartCutShortWithAWrongFrequency(t *testing.T) {
	for _, at := range []time.Duration{2500 * time.Millisecond, 4500 * time.Millisecond} {
		sc := base()
		sc.FreqOffsetPPM = 7
		sc.Duration = 3 * time.Minute
		sc.Faults = []Fault{{Kind: FaultOutage, Start: at, Length: 5 * time.Second}}
		sc.TempSteps = []TempStep{{At: at + time.Second, DeltaC: 18e-6 / sc.Osc.TempCo}}
		r := Run(sc, "kalman")
		restarted := 0
		for _, e := range r.Events {
			if e.Name == "start_restarted" {
				restarted++
			}
		}
		if r.LockTime == nil || *r.LockTime > 60 || stateAt(r, 170) != quality.Locked || restarted != 1 || r.BoundExceeded != 0 {
			t.Errorf("stall at %v: lock %s, state %s at 170 s (TE %.0f ns), %d restarts, bound exceeded %d s",
				at, fp(r.LockTime), stateAt(r, 170), teAt(r, 170), restarted, r.BoundExceeded)
		}
	}
}
