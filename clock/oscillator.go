package clock

import (
	"fmt"
	"math"
	"time"
)

// Oscillator is the noise model of an oscillator class. The same numbers
// drive the servo's process noise, the holdover error prediction that the
// advertised quality is derived from, and the simulated oscillators, so
// what sitegm claims in holdover follows from one model.
//
// Frequency noise is a sum of white FM, random-walk FM and a linear drift:
//
//	σ_y(τ)² = WhiteFM²/τ + RandomWalkFM²·τ/3,  ẏ = Drift
//
// so over an interval τ the phase wanders by WhiteFM²·τ (variance) from
// white FM and RandomWalkFM²·τ³/3 from random-walk FM, and a drift left
// uncorrected adds Drift·τ²/2.
type Oscillator struct {
	Name string
	// WhiteFM is the Allan deviation at 1 s from white frequency noise.
	WhiteFM float64
	// RandomWalkFM scales random-walk frequency noise: σ_y(τ) = RW·√(τ/3).
	RandomWalkFM float64
	// Drift is the frequency drift, 1/s (aging, plus the slow thermal
	// drift of an indoor day), whose magnitude is known but not its sign.
	Drift float64
	// DriftNoise lets the drift itself wander (1/s^1.5): drift is not
	// constant over days.
	DriftNoise float64
	// TempCo is the frequency change per °C, for temperature steps.
	TempCo float64
	// MaxFreqError bounds how far the frequency can wander from its
	// estimate during a holdover (temperature over an indoor range, aging):
	// after an outage an offset within MaxFreqError × outage is the clock's
	// own drift being corrected, not the reference jumping.
	MaxFreqError float64
	// Holdover4h and Holdover24h are a vendor's published typical holdover
	// errors for the class (Spectracom/Safran SecureSync user reference
	// guide, "Estimated oscillator error rates during Holdover": TCXO 12 µs
	// and 450 µs, standard OCXO 1 µs and 25 µs, rubidium 0.2 µs and 1 µs).
	Holdover4h, Holdover24h time.Duration
}

// The classes of clock.oscillator. Noise figures are typical datasheet
// values for each class; the drifts are the ones that reproduce the
// published 24 h holdover figures as an uncorrected quadratic
// (x = Drift·t²/2), i.e. what the vendor's figures assume.
var (
	TCXO = Oscillator{Name: "tcxo", WhiteFM: 2e-10, RandomWalkFM: 3e-12, Drift: 1.2e-13, DriftNoise: 1e-17,
		TempCo: 50e-9, MaxFreqError: 1e-6, Holdover4h: 12 * time.Microsecond, Holdover24h: 450 * time.Microsecond}
	OCXO = Oscillator{Name: "ocxo", WhiteFM: 1e-11, RandomWalkFM: 3e-13, Drift: 6.7e-15, DriftNoise: 1e-18,
		TempCo: 1e-9, MaxFreqError: 5e-8, Holdover4h: time.Microsecond, Holdover24h: 25 * time.Microsecond}
	Rubidium = Oscillator{Name: "rubidium", WhiteFM: 3e-11, RandomWalkFM: 1e-14, Drift: 2.7e-16, DriftNoise: 1e-20,
		TempCo: 5e-11, MaxFreqError: 1e-9, Holdover4h: 200 * time.Nanosecond, Holdover24h: time.Microsecond}
)

// OscillatorByName finds a class by its configuration name.
func OscillatorByName(name string) (Oscillator, error) {
	for _, o := range []Oscillator{TCXO, OCXO, Rubidium} {
		if o.Name == name {
			return o, nil
		}
	}
	return Oscillator{}, fmt.Errorf("unknown oscillator %q", name)
}

// ADEV is the model's Allan deviation at τ seconds (without drift).
func (o Oscillator) ADEV(tau float64) float64 {
	return math.Sqrt(o.WhiteFM*o.WhiteFM/tau + o.RandomWalkFM*o.RandomWalkFM*tau/3)
}

// PhaseVariance is the variance (s²) of the phase wander over t seconds of
// free running from oscillator noise alone.
func (o Oscillator) PhaseVariance(t float64) float64 {
	return o.WhiteFM*o.WhiteFM*t + o.RandomWalkFM*o.RandomWalkFM*t*t*t/3 + o.DriftNoise*o.DriftNoise*t*t*t*t*t/20
}
