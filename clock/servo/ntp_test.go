package servo

import (
	"math/rand/v2"
	"testing"
	"time"

	"sitegm/clock"
)

// ntpRun drives an NTP servo against a modelled clock (oscillator off by
// osc, adjustments applied from when they are made) with a sample every
// poll, noise sigma; it returns the clock's offset at the end and the
// steps made.
func ntpRun(n *NTP, x0 time.Duration, osc float64, poll time.Duration, sigma time.Duration, dur time.Duration) (time.Duration, []time.Duration) {
	rng := rand.New(rand.NewPCG(3, 4))
	x, u := x0, 0.0
	var steps []time.Duration
	apply := func(a Action) {
		if a.Step != 0 {
			x += a.Step
			steps = append(steps, a.Step)
		}
		if a.SetFreq {
			u = a.Freq * 1e-9
		}
	}
	for s := time.Duration(0); s < dur; s += time.Second {
		x += time.Duration((osc + u) * 1e9)
		now := t0.Add(s + x)
		if s%poll == 0 {
			noise := time.Duration(rng.NormFloat64() * float64(sigma))
			apply(n.Sample(now, x+noise, sigma, now))
		}
		apply(n.Tick(now))
	}
	return x, steps
}

// From 80 ms and 20 ppm off, one step at the first sample (allowed), then
// frequency steering: within 300 µs after an hour of 64 s polls with
// 200 µs noise, and the estimate's bound covers it.
func TestNTPServoConverges(t *testing.T) {
	n := NewNTP(NTPConfig{Osc: clock.TCXO, StepAllowed: true, SilentAfter: 5 * time.Minute})
	x, steps := ntpRun(n, 80*time.Millisecond, 20e-6, 64*time.Second, 200*time.Microsecond, 2*time.Hour)
	if len(steps) != 1 || x.Abs() > 300*time.Microsecond {
		t.Fatalf("offset %v, steps %v", x, steps)
	}
	e := n.Estimate(t0.Add(2 * time.Hour))
	if b := e.Offset.Abs() + 3*e.OffsetSigma; b < x.Abs() || e.FreqSigma > 1000 || n.State() != StateTrack {
		t.Errorf("estimate %+v against offset %v", e, x)
	}
}

// Without permission to step, a 3 ms offset is slewed out (at most
// 100 ppm), never stepped.
func TestNTPServoSlewsWhenStepsAreNotAllowed(t *testing.T) {
	n := NewNTP(NTPConfig{Osc: clock.TCXO, Freq: 0, FreqSigma: 100, SilentAfter: 5 * time.Minute})
	x, steps := ntpRun(n, 3*time.Millisecond, 50e-9, 16*time.Second, 100*time.Microsecond, 30*time.Minute)
	if len(steps) != 0 || x.Abs() > 300*time.Microsecond {
		t.Errorf("offset %v, steps %v", x, steps)
	}
}

// A sample not newer than the last one used changes nothing (RFC 5905
// clause 10); silence is holdover.
func TestNTPServoOldSamplesAndSilence(t *testing.T) {
	n := NewNTP(NTPConfig{Osc: clock.TCXO, SilentAfter: time.Minute})
	n.Sample(t0, time.Millisecond, 100*time.Microsecond, t0)
	e := n.Estimate(t0)
	if a := n.Sample(t0, 50*time.Millisecond, 100*time.Microsecond, t0.Add(time.Second)); a.SetFreq || a.Step != 0 {
		t.Errorf("an old sample steered: %+v", a)
	}
	if e2 := n.Estimate(t0); e2.Offset != e.Offset {
		t.Errorf("an old sample moved the estimate: %v -> %v", e.Offset, e2.Offset)
	}
	n.Tick(t0.Add(2 * time.Minute))
	if n.State() != StateHoldover {
		t.Errorf("state %v after two minutes of silence", n.State())
	}
}
