package servo

import (
	"math"
	"testing"
	"time"

	"sitegm/clock"
)

var t0 = time.Date(2026, 6, 1, 0, 0, 37, 0, time.UTC)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// A clock 2 ppm fast with no adjustment gains 2 µs a second; its
// uncertainty grows by the model's process noise.
func TestPredictFreeRun(t *testing.T) {
	f := filter{osc: clock.TCXO, s: vec3{1e-6, 2e-6, 0}, P: mat3{{1e-18, 0, 0}, {0, 1e-18, 0}, {0, 0, 0}}, tState: t0}
	f.predict(t0.Add(10 * time.Second))
	if !near(f.s[0], 21e-6, 1e-15) || f.s[1] != 2e-6 {
		t.Errorf("state %v", f.s)
	}
	// P00 = P00 + 2·dt·P01 + dt²·P11 + q1·dt + ...: 1e-18 + 100e-18 + the white FM.
	want := 1e-18 + 100e-18 + clock.TCXO.WhiteFM*clock.TCXO.WhiteFM*10
	if !near(f.P[0][0], want, want*1e-3) || f.P[0][1] != f.P[1][0] {
		t.Errorf("P %v, want P00 %g", f.P, want)
	}
	// Going back in time changes nothing.
	s := f.s
	f.predict(t0)
	if f.s != s {
		t.Error("predicted backwards")
	}
}

// The adjustment is integrated piecewise: 1 ppm for the first 4 s, then
// -1 ppm, over 10 s, leaves -2 µs of phase.
func TestAdjustmentIntegratedPiecewise(t *testing.T) {
	f := filter{osc: clock.Rubidium, tState: t0}
	f.setU(t0, 1e-6)
	f.setU(t0.Add(4*time.Second), -1e-6)
	if got := f.uIntegral(t0, t0.Add(10*time.Second)); !near(got, -2e-6, 1e-15) {
		t.Errorf("integral %g", got)
	}
	if f.uAt(t0.Add(3*time.Second)) != 1e-6 || f.uAt(t0.Add(5*time.Second)) != -1e-6 {
		t.Error("uAt")
	}
	f.predict(t0.Add(10 * time.Second))
	if !near(f.s[0], -2e-6, 1e-15) || len(f.uLog) != 0 || f.uBefore != -1e-6 {
		t.Errorf("state %v, log %v, before %g", f.s, f.uLog, f.uBefore)
	}
	// A step moves the log with the clock.
	f.setU(t0.Add(12*time.Second), 0)
	f.shiftTime(time.Second)
	if !f.uLog[0].at.Equal(t0.Add(13*time.Second)) || !f.tState.Equal(t0.Add(11*time.Second)) {
		t.Errorf("shift: %v %v", f.uLog, f.tState)
	}
}

// The update is the Kalman gain: with equal prior and measurement
// variance the phase moves half way and its variance halves.
func TestUpdate(t *testing.T) {
	f := filter{P: mat3{{4e-12, 0, 0}, {0, 1e-12, 0}, {0, 0, 0}}}
	f.update(2e-6, 8e-12)
	if !near(f.s[0], 1e-6, 1e-18) || f.s[1] != 0 || !near(f.P[0][0], 2e-12, 1e-24) || f.P[1][1] != 1e-12 {
		t.Errorf("s %v P %v", f.s, f.P)
	}
	// Correlated phase and frequency: the frequency learns too.
	f = filter{P: mat3{{4e-12, 1e-12, 0}, {1e-12, 1e-12, 0}, {0, 0, 0}}}
	f.update(2e-6, 8e-12)
	if !near(f.s[1], 0.25e-6, 1e-18) || f.P[0][1] != f.P[1][0] {
		t.Errorf("s %v P %v", f.s, f.P)
	}
}

// R follows the innovations' robust scale after eight of them, within
// its bounds, and an outlier does not inflate it.
func TestAdaptR(t *testing.T) {
	f := filter{measNoise: 2e-6, R: 4e-12}
	for i := 0; i < 7; i++ {
		f.adaptR(20e-9, 0)
	}
	if f.R != 4e-12 {
		t.Errorf("adapted before eight innovations: %g", f.R)
	}
	for i := 0; i < 25; i++ {
		nu := 20e-9
		if i == 10 {
			nu = 1e-3 // one outlier
		}
		f.adaptR(nu, 0)
	}
	want := math.Pow(1.4826*20e-9, 2)
	if !near(f.R, want, want*1e-9) {
		t.Errorf("R %g, want %g", f.R, want)
	}
	// Bounded below by a hundredth of the configured noise.
	for i := 0; i < 32; i++ {
		f.adaptR(1e-12, 0)
	}
	if f.R != 4e-12/1e4 {
		t.Errorf("R %g below its bound", f.R)
	}
	// And above by 10 ms.
	for i := 0; i < 32; i++ {
		f.adaptR(1, 0)
	}
	if f.R != 1e-4 {
		t.Errorf("R %g above its bound", f.R)
	}
}

func TestWidenCapped(t *testing.T) {
	f := filter{osc: clock.TCXO}
	f.widen(1e-6, 1)
	if f.P[0][0] != 1e-12 || f.P[1][1] != clock.TCXO.MaxFreqError*clock.TCXO.MaxFreqError {
		t.Errorf("P %v", f.P)
	}
}

func TestMat3(t *testing.T) {
	a := mat3{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}
	id := mat3{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}
	if a.mul(id) != a || id.mul(a) != a || a.t().t() != a || a.t()[0][2] != 7 {
		t.Error("mul/transpose")
	}
	if s := (mat3{{1, 2, 0}, {4, 1, 0}, {0, 0, 1}}).symmetric(); s[0][1] != 3 || s[1][0] != 3 {
		t.Errorf("symmetric %v", s)
	}
}
