package discipline

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"
	"sitegm/event"
)

// What the receiver tells the discipline besides its pulses: its epochs
// (the UTC second each names, whether valid, when it arrived), its own
// accuracy, its leap second knowledge, the quantisation error of the next
// pulse, and whether it is to be believed. The daemon maps hw/gnss's
// events onto these values: the discipline knows no receiver protocol.

// Epoch is one epoch of the receiver.
type Epoch struct {
	UTC       time.Time // normalised (23:59:60 is the next 00:00:00 with Leap60)
	Leap60    bool
	Valid     bool          // the receiver calls its time valid
	Dated     bool          // the epoch names a date, not only a time of day
	Plausible bool          // the date passed the decoder's checks (rollover, floor)
	TAcc      time.Duration // the receiver's own accuracy estimate, 0 unknown
	// Host is when the epoch was read (host clock). Arrival (its first
	// byte) and Now are on the disciplined clock; both zero when the
	// clock could not be read, which makes no sample.
	Host, Arrival, Now time.Time
}

// Epoch takes one receiver epoch: a dated, plausible one is the
// receiver's latest word on UTC (ReceiverUTC), a valid one's accuracy
// estimate bounds what is advertised (SourceAccuracy), and a dated one
// is labelled onto its pulse (Label).
func (d *Discipline) Epoch(e Epoch) (Action, []Event) {
	if e.Dated && e.Plausible {
		d.lastEpoch, d.lastEpochAt = e.UTC, e.Host
	}
	if e.Valid {
		d.SourceAccuracy(e.TAcc)
	}
	if !e.Dated || e.Arrival.IsZero() {
		return Action{}, d.take()
	}
	return d.Label(Label{UTC: e.UTC, Leap60: e.Leap60, Valid: e.Valid, Arrival: e.Arrival, Now: e.Now})
}

// ReceiverUTC is the UTC time of a receiver message read at host time
// at: the disciplined clock's UTC (clockNow is its time, on its own
// timescale) while it is synchronized, which is the time sitegm serves;
// otherwise the receiver's latest dated epoch carried forward by the
// host's elapsed time. A leap second a receiver announces "in N seconds"
// is placed on that timeline, never on the host's clock, which may be
// anything at boot.
func (d *Discipline) ReceiverUTC(at, clockNow time.Time) (time.Time, bool) {
	if d.q.Synchronized() {
		if d.cfg.Timescale == clock.TAI {
			utc, _ := d.leapTable.TAIToUTC(clockNow)
			return utc, true
		}
		return clockNow, true
	}
	if d.lastEpoch.IsZero() {
		return time.Time{}, false
	}
	return d.lastEpoch.Add(at.Sub(d.lastEpochAt)), true
}

// LeapInfo is ReceiverLeap for a message read at host time at (a u-blox
// NAV-TIMELS), placed on ReceiverUTC's timeline; nothing is taken before
// there is one.
func (d *Discipline) LeapInfo(at, clockNow time.Time, currLS int, valid bool, change int, eventIn time.Duration, eventValid bool) []Event {
	now, ok := d.ReceiverUTC(at, clockNow)
	if !ok {
		return d.take()
	}
	return d.ReceiverLeap(now, currLS, valid, change, eventIn, eventValid)
}

// GPSMinusUTC is GPS-UTC in seconds at utc (TAI-UTC - 19 s), from the
// leap table: what turns a receiver's GPS time (TIM-TP) into UTC.
func (d *Discipline) GPSMinusUTC(utc time.Time) int {
	return d.leapTable.Offset(utc) + leap.GPSMinusTAI
}

// Distrust stops (on) or resumes taking the receiver's time for reason:
// while any reason holds, labels make no samples, and a locked clock holds
// over as it does when GNSS is lost (quality.Machine.Distrust). A
// receiver reporting spoofing is treated so: its time may be anyone's.
func (d *Discipline) Distrust(reason string, on bool) {
	if d.distrust[reason] == on {
		return
	}
	if on {
		d.distrust[reason] = true
	} else {
		delete(d.distrust, reason)
	}
	var why []string
	for r := range d.distrust {
		why = append(why, r)
	}
	sort.Strings(why)
	d.q.Distrust(strings.Join(why, ", "))
}

// SourceAccuracy takes the receiver's estimate of its own time accuracy
// (UBX tAcc; 0 unknown). The advertised bound is never smaller; past the
// lock threshold (1 µs with a PPS) the receiver is distrusted until it is
// back under half of it.
func (d *Discipline) SourceAccuracy(acc time.Duration) {
	if acc <= 0 {
		return
	}
	d.q.SetSourceAccuracy(acc)
	switch {
	case !d.accBad && acc > d.lockErr:
		d.accBad = true
		d.emit(slog.LevelWarn, "gnss_time_accuracy", fmt.Sprintf("the receiver's time accuracy %v is worse than the lock threshold %v: holding over", acc, d.lockErr),
			"time_accuracy", acc.String(), "threshold", d.lockErr.String())
	case d.accBad && acc < d.lockErr/2:
		d.accBad = false
		d.emit(event.Notice, "gnss_time_accuracy", fmt.Sprintf("the receiver's time accuracy %v is good again", acc), "time_accuracy", acc.String())
	}
	d.Distrust("receiver time accuracy", d.accBad)
}

// TimePulse records a u-blox TIM-TP: the pulse at UTC second utc has
// quantisation error qErrPS.
func (d *Discipline) TimePulse(utc time.Time, qErrPS int32) { d.pair.QErr(utc, qErrPS) }

// ReceiverLeap merges a receiver's leap second knowledge (NAV-TIMELS) at
// UTC time utcNow: the receiver epoch the message belongs to, or the
// disciplined clock's UTC (see leap.Table.MergeReceiver for what is
// believed). A refusal is logged once for as long as it stays the same.
func (d *Discipline) ReceiverLeap(utcNow time.Time, currLS int, valid bool, change int, eventIn time.Duration, eventValid bool) []Event {
	merged, refused := d.leapTable.MergeReceiver(utcNow, currLS, valid, change, eventIn, eventValid)
	if valid && refused == "" {
		d.receiverLS = true
	}
	if merged != "" {
		d.emit(slog.LevelWarn, "leap_table_receiver", "leap second table corrected from the receiver: "+merged)
	}
	if refused != "" && refused != d.leapRefused {
		d.emit(slog.LevelWarn, "leap_receiver_refused", "receiver's leap second information not used: "+refused)
	}
	if refused != "" {
		d.LeapRefusals++
	}
	d.leapRefused = refused
	return d.take()
}
