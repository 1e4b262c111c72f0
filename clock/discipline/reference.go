package discipline

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"sitegm/clock/quality"
	"sitegm/clock/refclock"
	"sitegm/clock/servo"
	"sitegm/event"
)

// Upstreams is the NTP upstreams' selection as the discipline uses it
// (ntp/upstream.Selection, on the clock's timescale).
type Upstreams struct {
	OK bool
	// At is when the system peer's sample was taken, on the clock.
	At time.Time
	// Offset is the upstreams' time minus the clock; RootDist the
	// half-width of the interval it is known within; Jitter a sample's
	// deviation.
	Offset, RootDist, Jitter time.Duration
	// What a server synchronized to them passes on (quality.Upstream).
	Stratum   int
	RefID     [4]byte
	RootDelay time.Duration
	// Poll is the system peer's poll interval.
	Poll time.Duration
}

// rejoinAfter GNSS samples in a row agreeing with the clock the NTP
// upstreams lead give the clock back to GNSS: a receiver just re-acquired
// is given ten seconds to prove itself.
const rejoinAfter = 10

// silentPolls without a newer selection, the NTP reference counts as lost.
const silentPolls = 4

// upstreamWait: with upstreams configured, a first GNSS lock waits this
// long for their word; upstreams that never answer are given up on then,
// so that an unreachable server delays a site's first lock by a minute,
// not for good.
const upstreamWait = time.Minute

const unconfirmedReason = "waiting for the NTP upstreams to confirm GNSS"

// confirm ends the wait for the upstreams' word on GNSS.
func (d *Discipline) confirm(level slog.Level, msg string) {
	d.unconfirmed = false
	d.q.Hold("")
	d.emit(level, "gnss_confirmed", msg)
}

// checkUnconfirmed gives up waiting for upstreams that have said nothing
// within upstreamWait.
func (d *Discipline) checkUnconfirmed(now time.Time) {
	if d.unconfirmed && !d.up.OK && now.Sub(d.since) > upstreamWait {
		d.confirm(slog.LevelWarn, fmt.Sprintf("the NTP upstreams gave no time within %v: GNSS locks without their check", upstreamWait))
	}
}

// Reference is what disciplines the clock.
func (d *Discipline) Reference() quality.Reference { return d.q.Reference() }

// ReferenceChanges counts the changes of reference.
func (d *Discipline) ReferenceChanges() uint64 { return d.refChanges }

// Upstream takes the NTP upstreams' selection at clock time now; fresh
// says an answer came since the last call (only new evidence counts).
// While GNSS leads, the selection cross-checks it (CrossCheck); while the
// upstreams lead, a fresh selection is the NTP servo's sample.
func (d *Discipline) Upstream(now time.Time, u Upstreams, fresh bool) (Action, []Event) {
	var a Action
	d.up = u
	if !u.OK {
		return a, d.take()
	}
	switch d.q.Reference() {
	case quality.RefGNSS:
		if !fresh {
			return a, d.take()
		}
		return a, d.CrossCheck(u.Offset, u.RootDist, d.cfg.UpstreamMargin)
	case quality.RefNTP:
		// Every selection goes to the servo, which takes a sample only
		// once (by its time): just after a fallback the selection at hand
		// is the first sample, not the next answer a poll away.
		silent := max(silentPolls*u.Poll, time.Minute)
		d.ntpSrv.SetSilentAfter(silent)
		d.q.SetUpstream(quality.Upstream{Stratum: u.Stratum, RefID: u.RefID, RootDelay: u.RootDelay, RootDist: u.RootDist, SilentAfter: silent})
		sa := d.ntpSrv.Sample(u.At, -u.Offset, u.Jitter, now)
		if sa.Step != 0 {
			d.pair.Shift(sa.Step)
			d.steps++
			d.lastStep = sa.Step
			d.stepped = true
			d.emit(event.Notice, "clock_stepped", "clock stepped onto the NTP upstreams' time (it served no synchronized time yet)",
				"step", sa.Step.String())
		}
		a.merge(Action{Step: sa.Step, SetFreq: sa.SetFreq, Freq: sa.Freq})
	}
	return a, d.take()
}

// startNTP hands the clock to the NTP upstreams: the NTP servo starts
// from the frequency the clock runs with (freq, known to sigma ppb).
func (d *Discipline) startNTP(freq, sigma float64, stepAllowed bool) {
	if math.IsInf(sigma, 0) || math.IsNaN(sigma) || sigma <= 0 {
		sigma = 0
	}
	d.ntpSrv = servo.NewNTP(servo.NTPConfig{Osc: d.cfg.Osc, MaxFreq: d.cfg.MaxFreq, Freq: freq, FreqSigma: sigma,
		StepAllowed: stepAllowed, SilentAfter: max(silentPolls*d.up.Poll, time.Minute)})
	d.q.SetReference(quality.RefNTP)
	d.gnssAgree, d.gnssFar, d.gnssFarSaid = 0, 0, false
}

// checkFallback hands the clock to the NTP upstreams when GNSS cannot
// lead it: it never locked, its holdover ran out, or it is disputed (the
// state is FREERUN for any of these), and the upstreams agree on a time.
func (d *Discipline) checkFallback(now time.Time) {
	if d.q.Reference() != quality.RefGNSS || !d.up.OK || d.q.State() != quality.Freerun {
		return
	}
	why := "GNSS holdover exhausted"
	switch {
	case d.ntpDisagree:
		why = "GNSS disagrees with the NTP upstreams"
	case !d.q.EverLocked():
		why = "GNSS has not locked"
	}
	est := d.srv.Estimate(now)
	freq, sigma := est.Freq, est.FreqSigma
	if !d.q.EverLocked() && d.srv.State() == servo.StateInit {
		freq, sigma = d.cfg.InitialFreq, d.cfg.InitialFreqSigma
	}
	// The NTP servo may step the clock only if its time was never
	// believed (no lock yet) or is known wrong (disputed): a clock whose
	// holdover merely ran out is still the best estimate there is, and
	// is slewed onto the upstreams; their own error is often larger than
	// its.
	d.startNTP(freq, sigma, !d.q.EverLocked() || d.ntpDisagree)
	d.refChanged(quality.RefGNSS, quality.RefNTP, why)
}

func (d *Discipline) refChanged(from, to quality.Reference, why string) {
	d.refChanges++
	level := slog.LevelWarn
	if to == quality.RefGNSS {
		level = event.Notice
	}
	d.emit(level, "reference_changed", fmt.Sprintf("reference %s -> %s: %s", from, to, why),
		"reference", string(to), "reference_prev", string(from), "reason", why)
}

// distrustedBeyondNTP says whether the receiver is distrusted for a
// reason other than disagreeing with the upstreams (spoofing, its own
// accuracy): such a receiver is not taken back.
func (d *Discipline) distrustedBeyondNTP() bool {
	for r := range d.distrust {
		if r != ntpReason {
			return true
		}
	}
	return false
}

// gnssWhileNTP weighs a GNSS sample while the upstreams lead: once
// rejoinAfter in a row agree with the clock within what it advertises
// (its error bound, the receiver's own and clock.upstream_margin), GNSS
// takes the clock back by
// slewing; a clock serving no synchronized time is stepped instead.
// Samples beyond the bound are GNSS disagreeing with the upstreams: said
// once, not followed.
func (d *Discipline) gnssWhileNTP(s refclock.Sample, now time.Time) Action {
	off := s.Offset()
	synced := d.q.Synchronized()
	bound := time.Duration(math.MaxInt64)
	switch {
	case synced:
		// The upstreams' own bound (root distance) cannot see an
		// asymmetric path they share: the cross-check's margin widens
		// it here as it does there, or a right GNSS returning to a clock
		// they hold a millisecond off would be refused for good.
		bound = d.q.EstError() + d.lockErr + d.cfg.UpstreamMargin
	case d.ntpDisagree:
		// GNSS was left for disagreeing with the upstreams: it comes
		// back only by agreeing with the clock they lead, once they do.
		d.gnssAgree = 0
		return Action{}
	}
	if off.Abs() <= bound {
		d.gnssAgree, d.gnssFar = d.gnssAgree+1, 0
	} else {
		d.gnssFar, d.gnssAgree = d.gnssFar+1, 0
	}
	if d.gnssFar >= rejoinAfter && !d.gnssFarSaid {
		d.gnssFarSaid = true
		d.emit(slog.LevelError, "gnss_ntp_disagree",
			fmt.Sprintf("GNSS is %v off the clock the NTP upstreams discipline, beyond its error bound %v: GNSS is not followed", -off, bound),
			"gnss_offset", (-off).String(), "bound", bound.String())
	}
	if d.gnssAgree < rejoinAfter {
		return Action{}
	}
	est := d.ntpSrv.Estimate(now)
	step := !synced
	var sa servo.Action
	if k, ok := d.srv.(*servo.Kalman); ok {
		sa = k.Join(s.Local, off, est.Freq, est.FreqSigma, step, now)
	} else {
		// The PI baseline has no way to join a running clock: it starts
		// afresh (and steps, as its start does).
		d.srv = servo.NewPI(est.Freq, d.cfg.MaxFreq)
		sa = d.srv.Sample(s.Local, off, now)
	}
	if sa.Step != 0 {
		d.pair.Shift(sa.Step)
		d.steps++
		d.lastStep = sa.Step
		d.stepped = true
		d.emit(event.Notice, "clock_stepped", "clock stepped onto GNSS time (it served no synchronized time)", "step", sa.Step.String())
	}
	why := fmt.Sprintf("GNSS is back and agrees with the clock (%v, within %v): slewing onto it", -off, bound)
	if step {
		why = "GNSS is back; the clock served no synchronized time: stepped onto it"
	}
	if bound == time.Duration(math.MaxInt64) {
		bound = 0
	}
	d.ntpSrv = nil
	d.q.SetReference(quality.RefGNSS)
	d.ntpDisagree, d.ntpBad, d.ntpGood = false, 0, 0
	if d.unconfirmed {
		d.unconfirmed = false // agreeing with the clock the upstreams lead is their word
		d.q.Hold("")
	}
	d.Distrust(ntpReason, false)
	d.q.Dispute("")
	d.gnssAgree, d.gnssFar, d.gnssFarSaid = 0, 0, false
	d.refChanged(quality.RefNTP, quality.RefGNSS, why)
	return Action{Step: sa.Step, SetFreq: sa.SetFreq, Freq: sa.Freq}
}
