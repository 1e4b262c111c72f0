package sim

import (
	"math"
	"math/rand"
	"time"

	"sitegm/clock"
)

// Oscillator is a simulated free-running oscillator following a class
// model: white FM, random-walk FM, a drift (itself slowly wandering) and a
// temperature coefficient.
type Oscillator struct {
	m     clock.Oscillator
	rng   *rand.Rand
	y     float64 // fractional frequency error without temperature
	d     float64 // drift, 1/s
	tempC float64 // temperature away from the calibration point
}

// NewOscillator starts an oscillator with frequency error y0 (fraction) and
// a drift of the class's magnitude in a random direction.
func NewOscillator(m clock.Oscillator, y0 float64, seed int64) *Oscillator {
	rng := rand.New(rand.NewSource(seed))
	d := m.Drift
	if rng.Intn(2) == 0 {
		d = -d
	}
	return &Oscillator{m: m, rng: rng, y: y0, d: d}
}

// Advance runs the oscillator for dt seconds and returns the phase it
// gained (seconds) through its frequency error.
func (o *Oscillator) Advance(dt float64) float64 {
	if dt <= 0 {
		return 0
	}
	y0 := o.y + o.m.TempCo*o.tempC
	phase := (y0+o.d*dt/2)*dt + o.rng.NormFloat64()*o.m.WhiteFM*math.Sqrt(dt)
	o.y += o.d*dt + o.rng.NormFloat64()*o.m.RandomWalkFM*math.Sqrt(dt)
	o.d += o.rng.NormFloat64() * o.m.DriftNoise * math.Sqrt(dt)
	return phase
}

// Freq is the current fractional frequency error.
func (o *Oscillator) Freq() float64 { return o.y + o.m.TempCo*o.tempC }

// StepTemperature changes the temperature by dC degrees.
func (o *Oscillator) StepTemperature(dC float64) { o.tempC += dC }

// Clock is a simulated clock: an oscillator plus the adjustments a servo
// makes, read against true time. It implements clock.Clock; the simulation
// moves its true time forward with AdvanceTo.
type Clock struct {
	osc   *Oscillator
	now   time.Time // true time (TAI)
	phase float64   // clock minus true time, seconds
	u     float64   // frequency adjustment, fraction
	max   float64   // ppb
}

// NewClock starts a clock at true time start, offset by phase.
func NewClock(osc *Oscillator, start time.Time, phase time.Duration, maxPPB float64) *Clock {
	return &Clock{osc: osc, now: start, phase: phase.Seconds(), max: maxPPB}
}

// AdvanceTo moves true time to t (never backwards).
func (c *Clock) AdvanceTo(t time.Time) {
	dt := t.Sub(c.now).Seconds()
	if dt <= 0 {
		return
	}
	c.phase += c.osc.Advance(dt) + c.u*dt
	c.now = t
}

// TE is the clock's time error now (clock minus true).
func (c *Clock) TE() time.Duration { return time.Duration(math.Round(c.phase * 1e9)) }

// LocalAt reads the clock at true time t >= now without advancing it (for
// a timestamp a moment after the present).
func (c *Clock) LocalAt(t time.Time) time.Time {
	dt := t.Sub(c.now).Seconds()
	p := c.phase + (c.osc.Freq()+c.u)*dt
	return t.Add(time.Duration(math.Round(p * 1e9)))
}

var _ clock.Clock = (*Clock)(nil)

// Name implements clock.Clock.
func (c *Clock) Name() string { return "sim" }

// Timescale implements clock.Clock.
func (c *Clock) Timescale() clock.Timescale { return clock.TAI }

// Now implements clock.Clock.
func (c *Clock) Now() (time.Time, error) { return c.LocalAt(c.now), nil }

// Frequency implements clock.Clock.
func (c *Clock) Frequency() (float64, error) { return c.u * 1e9, nil }

// SetFrequency implements clock.Clock.
func (c *Clock) SetFrequency(ppb float64) error {
	c.u = math.Max(-c.max, math.Min(c.max, ppb)) * 1e-9
	return nil
}

// Step implements clock.Clock.
func (c *Clock) Step(d time.Duration) error {
	c.phase += d.Seconds()
	return nil
}

// MaxFrequency implements clock.Clock.
func (c *Clock) MaxFrequency() float64 { return c.max }
