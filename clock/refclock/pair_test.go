package refclock

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func sec(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }

func TestUnalignedWindow(t *testing.T) {
	p := New(0, 900*time.Millisecond)
	// The clock is 0.3 s off and knows nothing: edges at local n+0.3.
	for n := 0; n < 3; n++ {
		p.Edge(sec(n).Add(300 * time.Millisecond))
	}
	s, r := p.Label(sec(2), sec(2), sec(2).Add(450*time.Millisecond), false)
	if r != OK || s.Offset() != 300*time.Millisecond || s.Latency != 150*time.Millisecond {
		t.Errorf("%v %+v", r, s)
	}
	// A window longer than a second holds two edges: refused.
	p = New(0, 1500*time.Millisecond)
	for n := 0; n < 3; n++ {
		p.Edge(sec(n))
	}
	if _, r := p.Label(sec(2), sec(2), sec(2).Add(200*time.Millisecond), false); r != Ambiguous {
		t.Errorf("want ambiguous, got %v", r)
	}
	// Latency above a second, with a window that says so.
	p = New(time.Second, 1900*time.Millisecond)
	for n := 0; n < 4; n++ {
		p.Edge(sec(n))
	}
	s, r = p.Label(sec(2), sec(2), sec(3).Add(300*time.Millisecond), false)
	if r != OK || s.Local != sec(2) {
		t.Errorf("late NMEA: %v %+v", r, s)
	}
	if _, r := p.Label(sec(9), sec(9), sec(9).Add(300*time.Millisecond), false); r != NoEdge {
		t.Errorf("no edge in window: %v", r)
	}
}

func TestAlignedSeesJumps(t *testing.T) {
	p := New(0, 500*time.Millisecond)
	for n := 0; n < 5; n++ {
		p.Edge(sec(n).Add(20 * time.Nanosecond))
	}
	// Latency 0.7 s, past the window, and no edge in it: the nearest
	// edge, the label's own, is paired (a receiver running late).
	s, r := p.Label(sec(3), sec(3), sec(3).Add(700*time.Millisecond), true)
	if r != OK || s.Offset() != 20*time.Nanosecond || s.ByWindow {
		t.Errorf("%v %+v", r, s)
	}
	// A label one second ahead (edge 5 has not come): paired with the
	// nearest edge, a whole-second offset for the servo's guard.
	s, r = p.Label(sec(5), sec(5), sec(4).Add(100*time.Millisecond), true)
	if r != OK || s.Offset().Round(time.Second) != -time.Second {
		t.Errorf("jump: %v %+v", r, s)
	}
	// Too old.
	if _, r := p.Label(sec(0), sec(0), sec(9), true); r != Stale {
		t.Errorf("stale: %v", r)
	}
}

// The clock is a second ahead of GNSS while aligned (the kernel lab saw a
// leap second the guest kernel did not insert): the edge of second n
// reads n+1 on the clock, and the label of n arrives 175 ms after it. The
// labels around the leap are not paired (a UTC clock repeats a second
// there), so the edges of those seconds are left unused, and the edge
// nearest a label's second is the one of n-1, 1.175 s before the label:
// alone, it reads offset zero, and so on for every later label. The
// latency window holds the label's own edge: after DisagreeAfter labels
// in a row the window's edge is paired, and the servo sees the second.
func TestAlignedClockASecondOff(t *testing.T) {
	const lat = 175 * time.Millisecond
	for _, ahead := range []int{1, -1, 5} {
		p := New(0, 990*time.Millisecond)
		// Before the leap the clock counted right: the receiver's usual
		// latency is known.
		p.Edge(sec(-2))
		if _, r := p.Label(sec(-2), sec(-2), sec(-2).Add(lat), true); r != OK {
			t.Fatalf("a label before the leap: %v", r)
		}
		var got []Reason
		var paired []Sample
		for n := 0; n < 12; n++ {
			p.Edge(sec(n + ahead))
			if n < 4 {
				continue // around the leap: no labels
			}
			s, r := p.Label(sec(n), sec(n), sec(n+ahead).Add(lat), true)
			got = append(got, r)
			if r == OK {
				paired = append(paired, s)
			}
		}
		// Every sample shows the whole seconds, at the usual latency.
		for _, s := range paired {
			if s.Offset() != time.Duration(ahead)*time.Second || s.Latency != lat {
				t.Errorf("ahead %d: sample %+v", ahead, s)
			}
		}
		if ahead < 0 {
			// A clock behind finds its label's own edge the nearest, in
			// the window: the whole second from the first label.
			if len(paired) != len(got) || paired[0].ByWindow {
				t.Errorf("ahead %d: %v %+v", ahead, got, paired)
			}
			continue
		}
		// Ahead, the first DisagreeAfter-1 labels are dropped, the next
		// is the window's pair; the later ones pair plainly, the stray
		// edges being used or gone.
		for i, r := range got {
			if want := map[bool]Reason{true: Disagree, false: OK}[i < DisagreeAfter-1]; r != want {
				t.Errorf("ahead %d: %v, want %d second_disagree then ok", ahead, got, DisagreeAfter-1)
				break
			}
		}
		if len(paired) == 0 || !paired[0].ByWindow {
			t.Errorf("ahead %d: the first pair is not the window's: %+v", ahead, paired)
		}
	}
}

// One label a second late (sentences stalled, the next pulse already
// in): the window's edge contradicts the nearest once, and the label is
// dropped, not paired with the wrong second; the next labels pair as
// before.
func TestAlignedOneLateLabelIsNoJump(t *testing.T) {
	p := New(0, 990*time.Millisecond)
	for n := 0; n <= 3; n++ {
		p.Edge(sec(n))
		if _, r := p.Label(sec(n), sec(n), sec(n).Add(100*time.Millisecond), true); r != OK {
			t.Fatalf("label %d: %v", n, r)
		}
	}
	p.Edge(sec(4))
	p.Edge(sec(5))
	if s, r := p.Label(sec(4), sec(4), sec(5).Add(50*time.Millisecond), true); r != Disagree {
		t.Errorf("stalled label: %v %+v, want second_disagree", r, s)
	}
	for n := 5; n <= 8; n++ {
		if n > 5 {
			p.Edge(sec(n))
		}
		if s, r := p.Label(sec(n), sec(n), sec(n).Add(100*time.Millisecond), true); r != OK || s.Offset() != 0 || s.ByWindow {
			t.Errorf("label %d after the stall: %v %+v", n, r, s)
		}
	}
}

// The receiver stalls for two seconds, pulses and sentences alike: the
// edge of 3 came, its label did not, 4 came neither way, and the label
// of 5 arrives before edge 5, 2.1 s after edge 3 (a hog series saw this
// with gnss-sim starved). Edge 3 is the nearest to 5 but not its edge:
// no sample, not a 2 s "jump" a servo before its first lock would step by.
func TestAlignedStallIsNoJump(t *testing.T) {
	p := New(0, 990*time.Millisecond)
	for n := 0; n <= 3; n++ {
		p.Edge(sec(n))
		if n < 3 {
			if _, r := p.Label(sec(n), sec(n), sec(n).Add(100*time.Millisecond), true); r != OK {
				t.Fatalf("label %d: %v", n, r)
			}
		}
	}
	if s, r := p.Label(sec(5), sec(5), sec(5).Add(100*time.Millisecond), true); r != NoEdge {
		t.Errorf("after the stall: %v %+v, want no_edge", r, s)
	}
	// Edge 5 then comes and the label of 6 at its usual latency pairs.
	p.Edge(sec(5))
	p.Edge(sec(6))
	if s, r := p.Label(sec(6), sec(6), sec(6).Add(100*time.Millisecond), true); r != OK || s.Offset() != 0 {
		t.Errorf("after the stall, label 6: %v %+v", r, s)
	}
}

func TestQErrMissingExtraShift(t *testing.T) {
	p := New(0, 900*time.Millisecond)
	p.Edge(sec(0))
	p.Edge(sec(1))
	if !p.Edge(sec(1).Add(10 * time.Millisecond)) {
		t.Error("extra pulse kept")
	}
	p.Edge(sec(4)) // 2 and 3 missing
	if p.Stats.Missing != 2 || p.Stats.Extra != 1 {
		t.Errorf("stats %+v", p.Stats)
	}
	p.QErr(sec(4), -4500) // the pulse at 4 was 4.5 ns late
	s, r := p.Label(sec(4), sec(4), sec(4).Add(100*time.Millisecond), true)
	if r != OK || !s.QErr || s.Offset() != -4*time.Nanosecond {
		t.Errorf("qErr: %v %+v", r, s)
	}
	p.Shift(-time.Second)
	if p.edges[len(p.edges)-1].local != sec(3) {
		t.Errorf("shift: %v", p.edges)
	}
}

// A clock stepped a month back at its first sample: the history is
// shifted for the step, but one edge was stamped before the step and read
// after. The edges after the step are neither extra pulses nor millions
// of missing ones: the history starts again, and labels pair.
func TestEdgeAcrossAStep(t *testing.T) {
	month := 30 * 24 * time.Hour
	p := New(0, 900*time.Millisecond)
	p.Edge(sec(0).Add(month))
	p.Shift(-month)
	p.Edge(sec(1).Add(month)) // stamped before the step
	for n := 2; n <= 4; n++ {
		if p.Edge(sec(n)) {
			t.Fatalf("edge %d after the step taken as extra", n)
		}
	}
	if p.Stats.Extra != 0 || p.Stats.Missing != 0 || p.Stats.Discontinuities != 2 {
		t.Errorf("stats %+v", p.Stats)
	}
	if _, r := p.Label(sec(4), sec(4), sec(4).Add(100*time.Millisecond), false); r != OK {
		t.Errorf("a label after the step: %v", r)
	}
}

// A receiver whose sentences got later than the window (1.5 s, or
// creeping past a second: more sentences on a slow line, a backlog after
// a stall) is not a clock a second off: the window's edge comes at
// another latency than the receiver's usual one, and every label pairs
// with its own second's edge. (Taking any latency past the window for a
// clock a second off stepped a starting clock a second wrong in a hog
// series' kernel lab.) A backlog read all at once is no second either.
func TestAlignedLateReceiverIsNoSecondOff(t *testing.T) {
	for name, lats := range map[string][]time.Duration{
		"1.5 s late": {150, 150, 1500, 1500, 1500, 1500, 1500, 1500, 1500, 1500},
		"creeping":   {800, 900, 950, 1000, 1100, 1300, 1600, 1900, 1950, 1980},
	} {
		p := New(0, 990*time.Millisecond)
		for n, l := range lats {
			p.Edge(sec(n))
			lat := l * time.Millisecond
			if lat > time.Second {
				p.Edge(sec(n + 1)) // the next pulse is in before the label
			}
			s, r := p.Label(sec(n), sec(n), sec(n).Add(lat), true)
			if r != OK || s.Offset() != 0 || s.ByWindow {
				t.Errorf("%s: label %d at %v: %v %+v", name, n, lat, r, s)
			}
			if lat > time.Second {
				p.edges = p.edges[:len(p.edges)-1] // the next second's own Edge call adds it
			}
		}
	}
	// Five labels read at once, 5.2 s after the first's edge.
	p := New(0, 990*time.Millisecond)
	for n := 0; n < 3; n++ {
		p.Edge(sec(n))
		p.Label(sec(n), sec(n), sec(n).Add(150*time.Millisecond), true)
	}
	for n := 3; n <= 8; n++ {
		p.Edge(sec(n))
	}
	for n := 3; n < 8; n++ {
		if s, r := p.Label(sec(n), sec(n), sec(3).Add(5200*time.Millisecond), true); r == OK && s.Offset() != 0 {
			t.Errorf("backlog label %d paired %v off", n, s.Offset())
		}
	}
}
