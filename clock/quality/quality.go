// Package quality is the one state machine that says how good the
// disciplined clock is, and derives from it, and only from it, everything
// sitegm advertises: PTP clockQuality and time properties, the PTPv1
// grandmaster fields, and the NTP header fields.
package quality

import (
	"math"
	"time"

	"github.com/facebook/time/ptp/protocol"

	"sitegm/clock"
	"sitegm/clock/servo"
)

// State of the disciplined clock.
type State string

// States.
const (
	Freerun   State = "FREERUN"   // no usable reference (never had one, or holdover ran out)
	Acquiring State = "ACQUIRING" // samples flow, not yet within the lock threshold
	Locked    State = "LOCKED"    // following GNSS within the lock threshold
	Holdover  State = "HOLDOVER"  // reference lost; predicted error within spec
)

// PTP clockClass values (IEEE 1588-2019 Table 4; same in 1588-2008),
// time sources (Table 6) and the unknown accuracy and variance, in the
// standard's types as facebook/time's ptp/protocol defines them: what the
// servers put on the wire as they are.
const (
	ClassLocked     = protocol.ClockClass6                  // synchronized to a primary reference (PTP timescale)
	ClassHoldover   = protocol.ClockClass7                  // was 6, in holdover within specification
	ClassDegradedA  = protocol.ClockClass52                 // was 7, out of holdover specification (alternative A: may not become a slave)
	ClassDefault    = protocol.ClockClass(248)              // default: never synchronized
	TimeSourceGNSS  = protocol.TimeSourceGNSS               // 0x20
	TimeSourceNTP   = protocol.TimeSourceNTP                // 0x50
	TimeSourceOsc   = protocol.TimeSourceInternalOscillator // 0xA0
	AccuracyUnknown = protocol.ClockAccuracyUnknown         // 0xFE
	VarianceUnknown = 0xFFFF
	lockRunNeeded   = 5 // consecutive good updates to call the clock locked
	// referenceSilentOK: a reference silent for less than this is a glitch
	// (missed pulses, a receiver restart) ridden through in LOCKED; the
	// servo freewheels meanwhile, so the clock's error stays what it was.
	referenceSilentOK = 10 * time.Second
	// lockNoiseFactor: a converged filter's EstError (|offset| + 3 sigma)
	// stays within about three sample deviations; four leaves a margin.
	lockNoiseFactor = 4
)

// Reference is what disciplines the clock.
type Reference string

// References.
const (
	RefGNSS Reference = "GNSS" // the receiver (PPS and labels, or NMEA alone)
	RefNTP  Reference = "NTP"  // the NTP upstreams' selection (fallback, or a site without an antenna)
)

// Upstream describes the NTP selection while it leads: what the NTP
// server passes on (RFC 5905 clause 7.3: stratum one more than the
// system peer's, its address as reference ID, the root delay to the
// primary source), and the half-width of the interval the selection knows
// the time within, which the error bound includes.
type Upstream struct {
	Stratum   int
	RefID     [4]byte
	RootDelay time.Duration
	RootDist  time.Duration
	// SilentAfter without a newer sample the reference counts as lost
	// (a few poll intervals).
	SilentAfter time.Duration
}

// Config of the machine.
type Config struct {
	Osc clock.Oscillator
	// Holdover is how long holdover may last (clock.holdover).
	Holdover time.Duration
	// HoldoverMaxError ends holdover early when the predicted error exceeds
	// it (clock.holdover_max_error).
	HoldoverMaxError time.Duration
	// LockError is the estimated error under which the clock counts as
	// locked: 1 µs with a PPS, more for NMEA alone. A reference noisier
	// than that (a PPS through a USB serial adapter scatters by tens of µs
	// to a millisecond) raises it to lockNoiseFactor times the measured
	// noise: such a clock still locks, and says how good it is through
	// clockAccuracy and the NTP root dispersion, which follow EstError.
	LockError time.Duration
	// SourceError is what the reference itself may be off by, which no
	// filtering removes: a timing receiver's PPS (tens of ns), an
	// uncalibrated antenna cable, NMEA latency uncertainty without a PPS.
	SourceError time.Duration
	// NMEAOnly: no PPS (refid "NMEA" instead of "GPS").
	NMEAOnly bool
	// Timescale of the clock whose times Update receives.
	Timescale clock.Timescale
	// UpstreamMaxError is the error bound within which a clock the NTP
	// upstreams discipline counts as synchronized (clock.upstream_max_error):
	// their lock threshold and holdover specification.
	UpstreamMaxError time.Duration
}

// Machine is the quality state machine.
type Machine struct {
	cfg          Config
	st           State
	since        time.Time
	everLocked   bool
	lockRun      int
	holdoverFrom time.Time
	lastSample   time.Time // last accepted sample (NTP reference timestamp)
	est          servo.Estimate
	// accuracy is the clockAccuracy advertised: it follows the error
	// bound with hysteresis (steadyAccuracy), set at each Update.
	accuracy protocol.ClockAccuracy
	// distrust says why the reference is not believed now (the receiver
	// reports spoofing, or its time is worse than the lock threshold):
	// its samples are not taken, and the state is what it would be
	// without them. sourceAcc is the receiver's own accuracy estimate.
	distrust  string
	disputed  string
	sourceAcc time.Duration
	// ref leads the clock; up describes the NTP selection while NTP does.
	ref Reference
	up  Upstream
	// joining: the reference changed while the clock was synchronized,
	// and it is not yet within the new reference's lock threshold (GNSS
	// taking the clock back from NTP, slewing onto it): the state stays,
	// the class is not the new reference's until the threshold is met.
	joining bool
	// hold keeps the clock from locking for a reason (the NTP
	// upstreams have not yet confirmed a first GNSS lock).
	hold string
}

// Hold keeps a clock GNSS leads out of LOCKED for reason ("" lets it
// lock): it acquires as usual, and locks at the first good update once
// released. It does not hold the NTP upstreams.
func (m *Machine) Hold(reason string) { m.hold = reason }

// SetReference says what disciplines the clock from now on. The state
// machine carries on (a clock in FREERUN becomes ACQUIRING and LOCKED
// on the new reference's samples); what is advertised follows the
// reference.
func (m *Machine) SetReference(r Reference) {
	if r != m.ref {
		m.lockRun = 0
		m.joining = m.st == Locked || m.st == Holdover
	}
	m.ref = r
}

// Joining says the clock is synchronized but still on its way onto the
// reference that took it over.
func (m *Machine) Joining() bool { return m.joining }

// Reference is what disciplines the clock.
func (m *Machine) Reference() Reference { return m.ref }

// SetUpstream updates the NTP selection's description.
func (m *Machine) SetUpstream(u Upstream) { m.up = u }

// ntp says whether the NTP upstreams lead.
func (m *Machine) ntp() bool { return m.ref == RefNTP }

// Distrust marks the reference as not believed for reason ("" believes
// it again): a LOCKED clock goes to HOLDOVER at the next update, and
// nothing locks while it lasts.
func (m *Machine) Distrust(reason string) { m.distrust = reason }

// Dispute says the clock's own time is known to be wrong (reason; "" when
// it is not): a locked or holding-over clock becomes FREERUN at once, so
// that what it serves is marked unsynchronized rather than within
// specification. The NTP cross-check disputes a clock outside the
// upstreams' interval.
func (m *Machine) Dispute(reason string) { m.disputed = reason }

// Distrusted is why the reference is not believed ("" when it is).
func (m *Machine) Distrusted() string { return m.distrust }

// SetSourceAccuracy is the receiver's own estimate of its time's accuracy
// (0 unknown): the advertised error bound is never smaller.
func (m *Machine) SetSourceAccuracy(d time.Duration) { m.sourceAcc = d }

// New starts in FREERUN at now.
func New(cfg Config, now time.Time) *Machine {
	if cfg.UpstreamMaxError <= 0 {
		cfg.UpstreamMaxError = 100 * time.Millisecond
	}
	return &Machine{cfg: cfg, st: Freerun, since: now, ref: RefGNSS}
}

// State is the current state.
func (m *Machine) State() State { return m.st }

// Since is when the state was entered.
func (m *Machine) Since() time.Time { return m.since }

// EverLocked tells whether the clock was ever locked.
func (m *Machine) EverLocked() bool { return m.everLocked }

// Transition is a state change for the log.
type Transition struct {
	From, To State
	Held     time.Duration // time spent in From
	Reason   string
}

// TrustedBound is EstError while the clock knows the time (LOCKED or
// HOLDOVER), at least 1 ns, and 0 when it does not: what the monitors
// compare other clocks against. An unknown bound (EstError's MaxInt64,
// or anything past an hour) is 0 too: added to a peer's, it would wrap.
func (m *Machine) TrustedBound() time.Duration {
	if m.st != Locked && m.st != Holdover {
		return 0
	}
	if e := m.EstError(); e < time.Hour {
		return max(e, 1)
	}
	return 0
}

// EstError is the error bound the machine advertises: the estimated offset
// plus three standard deviations of the estimate and the source together.
func (m *Machine) EstError() time.Duration {
	if m.est.OffsetSigma == time.Duration(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	if m.ntp() {
		// The selection's root distance bounds what no filtering of its
		// samples removes (path asymmetry, the servers' own error).
		return m.est.Offset.Abs() + time.Duration(3*float64(m.est.OffsetSigma)) + m.up.RootDist
	}
	s := math.Hypot(float64(m.est.OffsetSigma), float64(m.cfg.SourceError))
	return m.est.Offset.Abs() + max(time.Duration(3*s), m.sourceAcc)
}

// Update feeds the servo's state and estimate at now; it returns a
// transition when the state changed.
func (m *Machine) Update(now time.Time, st servo.State, est servo.Estimate) (Transition, bool) {
	m.est = est
	m.accuracy = steadyAccuracy(m.accuracy, m.EstError())
	silentOK, lockErr, maxErr := referenceSilentOK, m.cfg.LockError, m.cfg.HoldoverMaxError
	distrust := m.distrust
	if m.ntp() {
		// The upstreams answer once a poll: silence is counted in polls,
		// and their bound is the one the site set for NTP time. The
		// receiver's distrust is no reason to distrust them.
		silentOK, lockErr, maxErr = max(m.up.SilentAfter, referenceSilentOK), m.cfg.UpstreamMaxError, m.cfg.UpstreamMaxError
		distrust = ""
	}
	tracking := (st == servo.StateTrack || st == servo.StateHoldover) && est.SinceSample < silentOK && distrust == ""
	if tracking && est.SinceSample >= 0 {
		m.lastSample = now.Add(-est.SinceSample)
	}
	if est.NoiseMeasured && !m.ntp() {
		// Only a noise the samples showed raises the threshold: the
		// configured prior would let a clock lock on its first samples.
		lockErr = max(lockErr, time.Duration(lockNoiseFactor*float64(est.MeasNoise)))
	}
	good := tracking && m.EstError() < lockErr
	if good && m.joining && m.lockRun+1 >= lockRunNeeded {
		m.joining = false
	}
	if good {
		m.lockRun++
	} else {
		m.lockRun = 0
	}
	to, reason := m.st, ""
	switch m.st {
	case Freerun, Acquiring:
		switch {
		case m.disputed != "" && !m.ntp() && m.st == Acquiring:
			to, reason = Freerun, "time disputed: "+m.disputed
		case m.lockRun >= lockRunNeeded && (m.hold == "" || m.ntp()):
			to, reason = Locked, "within the lock threshold"
		case m.st == Freerun && distrust == "" && (st == servo.StateStart || st == servo.StateTrack):
			// Only a servo taking samples is acquiring: one in its jump
			// guard (GNSS disagreeing) is not, or the state flapped
			// FREERUN/ACQUIRING ten times a second, two log lines each.
			to, reason = Acquiring, "reference samples arriving"
		case m.st == Acquiring && (distrust != "" || st == servo.StateHoldover || st == servo.StateGuard || st == servo.StateInit):
			to, reason = Freerun, "reference lost while acquiring"
		}
	case Locked:
		switch {
		case m.disputed != "" && !m.ntp():
			to, reason = Freerun, "time disputed: "+m.disputed
		case distrust != "":
			to, reason = Holdover, "reference distrusted: "+distrust
		case m.ntp() && m.EstError() > maxErr:
			// Polls far apart (maxpoll up to 36 h) leave a clock
			// "tracking" while its error grows: past the bound the site
			// set, it is not locked, whatever the poll.
			to, reason = Holdover, "error beyond clock.upstream_max_error"
		case st == servo.StateGuard:
			to, reason = Holdover, "reference jumped: not followed"
		case !tracking:
			to, reason = Holdover, "reference lost"
		}
	case Holdover:
		elapsed := now.Sub(m.holdoverFrom)
		switch {
		case m.disputed != "" && !m.ntp():
			to, reason = Freerun, "time disputed: "+m.disputed
		case m.lockRun >= lockRunNeeded:
			to, reason = Locked, "reference back"
		case elapsed >= m.cfg.Holdover:
			to, reason = Freerun, "holdover limit reached"
		case m.EstError() > maxErr:
			to, reason = Freerun, "predicted error beyond the holdover specification"
		}
	}
	if to == m.st {
		return Transition{}, false
	}
	tr := Transition{From: m.st, To: to, Held: now.Sub(m.since), Reason: reason}
	m.st, m.since = to, now
	switch to {
	case Locked:
		m.everLocked = true
	case Holdover:
		m.holdoverFrom = now
	}
	return tr, true
}

// HoldoverElapsed and HoldoverRemaining while in HOLDOVER (zero otherwise).
func (m *Machine) HoldoverElapsed(now time.Time) time.Duration {
	if m.st != Holdover {
		return 0
	}
	return now.Sub(m.holdoverFrom)
}

// HoldoverRemaining is the time left before the holdover limit.
func (m *Machine) HoldoverRemaining(now time.Time) time.Duration {
	if m.st != Holdover {
		return 0
	}
	return max(0, m.cfg.Holdover-now.Sub(m.holdoverFrom))
}

// ClockClass is the PTP clockClass of the state.
func (m *Machine) ClockClass() protocol.ClockClass {
	if (m.ntp() || m.joining) && m.Synchronized() {
		// IEEE 1588-2019 Table 4 has no class for a clock synchronized to
		// a secondary reference on the PTP timescale (13 is an
		// application-specific source on the ARB timescale; 6 and 7
		// claim a primary reference). 52, the best class that claims
		// neither, ranks it ahead of any never-synchronized clock (248);
		// clockAccuracy and timeSource (NTP) say what it is. GNSS taking
		// the clock back keeps it until the clock is within its lock
		// threshold.
		return ClassDegradedA
	}
	switch m.st {
	case Locked:
		return ClassLocked
	case Holdover:
		return ClassHoldover
	}
	if m.everLocked {
		return ClassDegradedA
	}
	return ClassDefault
}

// AccuracyCode maps an error bound to clockAccuracy (IEEE 1588-2019
// Table 5: the smallest code whose bound covers it).
func AccuracyCode(bound time.Duration) protocol.ClockAccuracy {
	return protocol.ClockAccuracyFromOffset(bound)
}

// ClockAccuracy is the clockAccuracy of the estimated error (with the
// hysteresis of steadyAccuracy); unknown before the first lock.
func (m *Machine) ClockAccuracy() protocol.ClockAccuracy {
	if !m.everLocked && m.st != Locked {
		return AccuracyUnknown
	}
	if m.accuracy == 0 {
		return AccuracyCode(m.EstError())
	}
	return m.accuracy
}

// accuracyMargin: a better clockAccuracy is advertised only once the
// bound is this fraction below the better code's limit.
const accuracyMargin = 0.8

// steadyAccuracy is the clockAccuracy to advertise for the error bound,
// given the one advertised (0: none yet). A worse code is taken at once:
// the advertised accuracy never claims better than the bound. A better
// one only once the bound is a fifth inside its limit: a bound that
// wanders across a code's limit (250 ns, 1 µs) would otherwise change
// the Announce every few seconds, and two grandmasters that differ only
// in priority2 (a primary and its backup) would swap roles with it, the
// BMCA comparing clockAccuracy before priority2 (IEEE 1588-2019 9.3.4).
func steadyAccuracy(adv protocol.ClockAccuracy, bound time.Duration) protocol.ClockAccuracy {
	c := AccuracyCode(bound)
	if adv == 0 || c >= adv {
		return c
	}
	if b := AccuracyCode(time.Duration(float64(bound) / accuracyMargin)); b < adv {
		return b
	}
	return adv
}

// OffsetScaledLogVariance (IEEE 1588-2019 7.6.3.5): log2 of the PTP variance
// in s², scaled by 2^8 and offset by 0x8000. The variance describes the
// stability of the clock when it is not synchronized (7.6.3.3): for a
// grandmaster, its own oscillator over a Sync interval, σ_x(1 s)² =
// ADEV(1 s)²/3 from the oscillator model. It is not the filter's phase
// deviation of the moment: that wanders sample by sample, and two
// grandmasters that differ only in priority2 would swap roles with it
// (the BMCA compares the variance before priority2); how close the clock
// is to its reference is the accuracy's to say.
func (m *Machine) OffsetScaledLogVariance() uint16 {
	if !m.everLocked && m.st != Locked {
		return VarianceUnknown
	}
	osc := m.cfg.Osc.ADEV(1)
	return ScaledLogVariance(osc * osc / 3)
}

// ScaledLogVariance encodes a variance in s².
func ScaledLogVariance(v float64) uint16 {
	if v <= 0 {
		return 0
	}
	x := math.Log2(v)*256 + 0x8000
	return uint16(math.Max(0, math.Min(0xFFFE, math.Round(x))))
}

// TimeSource is GNSS while locked to it, NTP while the NTP upstreams
// keep the clock synchronized, the internal oscillator otherwise (IEEE
// 1588-2019 Table 6).
func (m *Machine) TimeSource() protocol.TimeSource {
	switch {
	case m.ntp() && m.Synchronized():
		return TimeSourceNTP
	case m.st == Locked && !m.ntp():
		return TimeSourceGNSS
	}
	return TimeSourceOsc
}

// Traceable: time and frequency are traceable to GNSS while locked and in
// holdover within specification.
func (m *Machine) Traceable() bool { return m.st == Locked || m.st == Holdover }

// Synchronized: the clock serves time it believes (NTP stratum 1, PTP
// traceability). False before the first lock and after holdover ran out.
func (m *Machine) Synchronized() bool { return m.Traceable() }

// Estimate is the last servo estimate seen.
func (m *Machine) Estimate() servo.Estimate { return m.est }
