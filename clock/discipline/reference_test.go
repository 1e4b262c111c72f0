package discipline

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"sitegm/clock/leap"
	"sitegm/clock/quality"
)

// refLab runs a discipline against a modelled clock: an oscillator off by
// osc (s/s), the adjustments the discipline makes applied to it, NTP
// upstreams at true time answering with a little noise, and a receiver
// that may be on, off or wrong.
type refLab struct {
	t        *testing.T
	d        *Discipline
	table    *leap.Table
	i        int           // seconds since utc0
	x        time.Duration // clock minus truth
	osc, u   float64
	rng      *rand.Rand
	gnss     bool
	gnssOff  time.Duration // the receiver's error
	ntp      bool
	ntpOff   time.Duration // the upstreams' error
	up       Upstreams     // their last selection
	steps    []time.Duration
	evs      []Event
	dishonst int // seconds a synchronized clock was beyond its advertised bound
}

func newRefLab(t *testing.T, mut ...func(*Config)) *refLab {
	d, table := newDisc(t, append([]func(*Config){func(c *Config) { c.Upstreams = true }}, mut...)...)
	return &refLab{t: t, d: d, table: table, osc: 3e-6, rng: rand.New(rand.NewPCG(1, 2)), ntp: true}
}

func (l *refLab) apply(a Action, evs []Event) {
	if a.Step != 0 {
		l.x += a.Step
		l.steps = append(l.steps, a.Step)
	}
	if a.SetFreq {
		l.u = a.Freq * 1e-9
	}
	l.evs = append(l.evs, evs...)
}

// run advances n seconds: the receiver's second (edge, label) when on,
// an upstream selection every 16 s when on, ticks; each action applies
// from the moment it is made.
func (l *refLab) run(n int) {
	for k := 0; k < n; k++ {
		l.i++
		u := utc0.Add(time.Duration(l.i) * time.Second)
		tai := l.table.UTCToTAI(u, false)
		at := time.Duration(0) // into the second, true time
		to := func(d time.Duration) time.Time {
			l.x += time.Duration((l.osc + l.u) * float64(d-at))
			at = d
			return tai.Add(d + l.x)
		}
		if l.gnss {
			l.apply(Action{}, l.d.Edge(to(l.gnssOff)))
			arr := to(l.gnssOff + 150*time.Millisecond)
			l.apply(l.d.Label(Label{UTC: u, Valid: true, Arrival: arr, Now: to(l.gnssOff + 160*time.Millisecond)}))
		}
		l.apply(l.d.Tick(to(500 * time.Millisecond)))
		// An answer every 16 s; the selection is handed over every
		// second, as the daemon does (fresh only after an answer).
		fresh := l.ntp && l.i%16 == 0
		if fresh {
			noise := time.Duration(l.rng.NormFloat64() * float64(100*time.Microsecond))
			sampled := to(590 * time.Millisecond)
			l.up = Upstreams{OK: true, At: sampled, Offset: -l.x + l.ntpOff + noise,
				RootDist: time.Millisecond, Jitter: 100 * time.Microsecond, Stratum: 2, RefID: [4]byte{10, 0, 0, 1},
				RootDelay: 300 * time.Microsecond, Poll: 16 * time.Second}
		}
		if l.ntp && l.up.OK {
			l.apply(l.d.Upstream(to(600*time.Millisecond), l.up, fresh))
		}
		to(time.Second)
		q := l.d.Quality()
		if q.ClockClass() == quality.ClassLocked && l.x.Abs() > time.Microsecond {
			l.t.Errorf("t=%d s: class 6 with the clock %v off", l.i, l.x)
		}
		if q.Synchronized() && l.x.Abs() > q.EstError() {
			if l.dishonst < 5 {
				l.t.Logf("t=%d s: offset %v beyond the bound %v (%v on %v)", l.i, l.x, q.EstError(), q.State(), l.d.Reference())
			}
			l.dishonst++
		}
	}
}

func (l *refLab) events() string { e := names(l.evs); l.evs = nil; return e }

// A site without a receiver: the first NTP answer steps the clock (it
// served nothing yet), then the upstreams keep it; what is served says
// NTP: PTP timeSource NTP and class 52 (never 6 or 7), NTP stratum one
// more than the upstreams', their address as reference ID, their root
// delay passed on; the advertised bound always covers the real error.
func TestNTPOnly(t *testing.T) {
	l := newRefLab(t, func(c *Config) { c.NoGNSS = true })
	l.x = 300 * time.Millisecond
	if l.d.Reference() != quality.RefNTP {
		t.Fatalf("reference %v without a receiver", l.d.Reference())
	}
	l.run(30)
	if len(l.steps) != 1 || l.x.Abs() > 2*time.Millisecond {
		t.Fatalf("steps %v, offset %v after the first answers", l.steps, l.x)
	}
	l.run(2 * 3600)
	q := l.d.Quality()
	if q.State() != quality.Locked || q.ClockClass() != quality.ClassDegradedA || q.TimeSource() != quality.TimeSourceNTP {
		t.Fatalf("state %v class %d source %#x", q.State(), q.ClockClass(), q.TimeSource())
	}
	n := q.NTP(utc0, l.table)
	if n.Stratum != 3 || n.RefID != [4]byte{10, 0, 0, 1} || n.RootDelay != 300*time.Microsecond || n.LI != 0 || n.RootDispersion < time.Millisecond {
		t.Errorf("NTP served %+v", n)
	}
	if v1 := q.V1(); v1.Stratum != 2 || string(v1.Identifier[:3]) != "NTP" {
		t.Errorf("PTPv1 %+v", v1)
	}
	if l.x.Abs() > 500*time.Microsecond || len(l.steps) != 1 || l.dishonst > 0 {
		t.Errorf("offset %v, steps %v, %d s beyond the bound", l.x, l.steps, l.dishonst)
	}
	t.Logf("NTP only, 2 h at 16 s polls, 100 µs noise, 3 ppm oscillator: offset %v, advertised bound %v", l.x, q.EstError())
	// The upstreams go silent: holdover, then past clock.holdover FREERUN.
	l.ntp = false
	l.run(3600 + 600)
	if q.State() != quality.Freerun || q.Synchronized() {
		t.Errorf("upstreams gone an hour and more: %v", q.State())
	}
	if !strings.Contains(l.events(), "clock_state") {
		t.Error("no state events")
	}
}

// GNSS leads; its holdover runs out and the upstreams take the clock
// (reference_changed); when GNSS is back and agrees it takes the clock
// back by slewing, no step, and locks (class 6) again.
func TestFallbackAndReturn(t *testing.T) {
	l := newRefLab(t, func(c *Config) { c.Holdover = 2 * time.Minute })
	l.gnss = true
	l.run(60)
	q := l.d.Quality()
	if q.State() != quality.Locked || l.d.Reference() != quality.RefGNSS {
		t.Fatalf("GNSS: %v %v", q.State(), l.d.Reference())
	}
	l.events()
	locked := len(l.steps)
	l.gnss = false
	l.ntpOff = 600 * time.Microsecond // the upstreams, a little off, lead next
	l.run(300)
	evs := l.events()
	if l.d.Reference() != quality.RefNTP || !strings.Contains(evs, "reference_changed") {
		t.Fatalf("no fallback: %v, events %s", l.d.Reference(), evs)
	}
	l.osc += 50e-9 // the oscillator moves (a temperature change) while NTP leads
	l.run(1800)
	if q.State() != quality.Locked || q.TimeSource() != quality.TimeSourceNTP || q.ClockClass() == quality.ClassLocked || q.ClockClass() == quality.ClassHoldover {
		t.Fatalf("on NTP: %v class %d source %#x", q.State(), q.ClockClass(), q.TimeSource())
	}
	l.ntpOff = 800 * time.Microsecond // the upstreams' path is a little asymmetric
	l.run(1800)
	steps := len(l.steps)
	if steps != locked {
		t.Errorf("the clock was stepped when the upstreams took it over: %v", l.steps[locked:])
	}
	l.gnss = true
	l.run(9)
	if l.d.Reference() != quality.RefGNSS {
		l.run(2)
	}
	if l.d.Reference() != quality.RefGNSS || !strings.Contains(l.events(), "reference_changed") {
		t.Fatalf("GNSS not taken back: %v", l.d.Reference())
	}
	back := l.i
	for l.d.Quality().ClockClass() != quality.ClassLocked && l.i-back < 300 {
		l.run(1)
	}
	t.Logf("GNSS back with the clock 800 µs off: class 6 after %d s, no step", l.i-back)
	l.run(120)
	if len(l.steps) != steps || q.State() != quality.Locked || q.ClockClass() != quality.ClassLocked || l.x.Abs() > time.Microsecond {
		t.Errorf("back on GNSS: steps %v, %v class %d, offset %v", l.steps[steps:], q.State(), q.ClockClass(), l.x)
	}
	if l.dishonst > 0 {
		t.Errorf("%d s beyond the advertised bound", l.dishonst)
	}
}

// While the upstreams lead, a receiver 50 ms off is GNSS disagreeing with
// them: said once, never followed.
func TestGNSSWrongWhileNTPLeads(t *testing.T) {
	l := newRefLab(t, func(c *Config) { c.NoGNSS = false })
	l.run(120) // no receiver yet: the upstreams lead
	if l.d.Reference() != quality.RefNTP {
		t.Fatalf("reference %v", l.d.Reference())
	}
	l.events()
	l.gnss, l.gnssOff = true, 50*time.Millisecond
	l.run(120)
	evs := l.events()
	if l.d.Reference() != quality.RefNTP || strings.Count(evs, "gnss_ntp_disagree") != 1 || l.x.Abs() > 2*time.Millisecond {
		t.Errorf("reference %v, offset %v, events %s", l.d.Reference(), l.x, evs)
	}
	if l.d.Quality().TimeSource() != quality.TimeSourceNTP {
		t.Errorf("source %#x", l.d.Quality().TimeSource())
	}
}

// At boot the upstreams answer before the receiver has a fix: they lead
// at once (stepping the clock once: it served nothing yet), and GNSS
// takes over by slewing when it comes, knowing the frequency only from a
// few NTP samples.
func TestBootNTPThenGNSS(t *testing.T) {
	l := newRefLab(t)
	l.x, l.osc = 40*time.Millisecond, 12e-6
	l.run(40)
	if l.d.Reference() != quality.RefNTP || len(l.steps) != 1 {
		t.Fatalf("reference %v, steps %v", l.d.Reference(), l.steps)
	}
	l.gnss = true
	l.run(180)
	q := l.d.Quality()
	if l.d.Reference() != quality.RefGNSS || q.ClockClass() != quality.ClassLocked || len(l.steps) != 1 || l.x.Abs() > time.Microsecond || l.dishonst > 0 {
		t.Errorf("reference %v class %d steps %v offset %v, %d s beyond the bound; events %s",
			l.d.Reference(), q.ClockClass(), l.steps, l.x, l.dishonst, l.events())
	}
}

// A receiver 50 ms off from the start: with upstreams configured a
// first lock waits for their word, so it is never served as locked; the
// cross-check disputes it, the upstreams take the clock over at once
// (their selection at hand, stepping: the clock served nothing believed
// yet), and GNSS is never taken back.
func TestGNSSWrongFromTheStart(t *testing.T) {
	l := newRefLab(t)
	l.gnss, l.gnssOff = true, 50*time.Millisecond
	l.run(15)
	if l.d.Reference() != quality.RefGNSS || l.d.Quality().State() != quality.Acquiring {
		t.Fatalf("before the upstreams' word: %v %v", l.d.Reference(), l.d.Quality().State())
	}
	l.run(300)
	evs := l.events()
	if l.d.Reference() != quality.RefNTP || l.x.Abs() > 2*time.Millisecond || l.d.ReferenceChanges() != 1 ||
		!strings.Contains(evs, "gnss_ntp_disagree") || l.d.Quality().TimeSource() != quality.TimeSourceNTP {
		t.Errorf("reference %v (%d changes), offset %v, source %#x, events %s", l.d.Reference(), l.d.ReferenceChanges(), l.x,
			l.d.Quality().TimeSource(), evs)
	}
}

// Upstreams that never answer delay a first GNSS lock by upstreamWait,
// not for good; ones that agree let it lock at their first word.
func TestFirstLockWaitsForTheUpstreams(t *testing.T) {
	l := newRefLab(t)
	l.ntp, l.gnss = false, true
	l.run(50)
	if l.d.Quality().State() == quality.Locked {
		t.Fatal("locked before the wait for the upstreams ended")
	}
	l.run(20)
	if l.d.Quality().State() != quality.Locked || !strings.Contains(l.events(), "gnss_confirmed") {
		t.Fatalf("upstreams silent: %v", l.d.Quality().State())
	}
	l = newRefLab(t)
	l.gnss = true
	l.run(20)
	if l.d.Quality().State() != quality.Locked || l.d.Reference() != quality.RefGNSS {
		t.Fatalf("upstreams agreeing at 16 s: %v %v", l.d.Quality().State(), l.d.Reference())
	}
}
