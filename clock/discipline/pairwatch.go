package discipline

import (
	"fmt"
	"log/slog"
	"time"

	"sitegm/clock/refclock"
)

// What the pairing shows beyond its samples: the sentences' latency, the
// clock's seconds against the receiver's, the labels it turned away.

// watchLatency notices the sentences' latency jumping by half a second or
// more (the receiver added messages, or its time is a second off).
func (d *Discipline) watchLatency(l time.Duration) {
	if d.latency == 0 {
		d.latency = l
		return
	}
	off := (l - d.latency).Abs() > 500*time.Millisecond
	if off && !d.latencyOff {
		d.emit(slog.LevelWarn, "nmea_latency_jump", fmt.Sprintf("NMEA now starts %v after its edge (was %v)", l.Round(time.Millisecond), d.latency.Round(time.Millisecond)),
			"latency", l.String(), "was", d.latency.String())
	}
	d.latencyOff = off
	if !off {
		d.latency += (l - d.latency) / 16
	}
}

// watchSeconds says so when the pairer starts pairing by the latency
// window against the edge nearest each label's second: the clock counts
// different seconds from the receiver's (the servo's jump guard sees the
// offset and acts; this names the likely causes).
func (d *Discipline) watchSeconds(s refclock.Sample) {
	if s.ByWindow && !d.byWindow {
		d.emit(slog.LevelError, "second_disagree", fmt.Sprintf("the clock's seconds and the receiver's disagree by %v: the receiver's sentences keep arriving outside gnss.nmea_latency after the edge nearest their second and inside it after another, so the clock is off by that much (a leap second the kernel did not apply, a step by another program) or the receiver's latency has left gnss.nmea_latency (widen it)", s.Offset().Round(time.Second)),
			"offset", s.Offset().String(), "latency", s.Latency.String())
	}
	if s.ByWindow {
		d.byWindow = true
	} else if s.Offset().Abs() < 500*time.Millisecond {
		d.byWindow = false // the seconds agree again
	}
}

// problem counts a pairing problem and warns at most once a minute.
func (d *Discipline) problem(kind string) {
	if kind == refclock.NoEdge.String() && d.pulsesDropped > 0 {
		// The label's own pulse was dropped at a step: expected, and
		// counted where it was dropped.
		d.pulsesDropped--
		return
	}
	d.problems[kind]++
}

// PulseDropped tells the discipline that the caller dropped a pulse (one
// stamped across a step of its clock, timebase.ErrBeforeStep): as many
// labels as pulses were dropped (a few at most: maxDropped) that find no
// edge before another pairs are no pairing problem.
func (d *Discipline) PulseDropped() { d.pulsesDropped = min(d.pulsesDropped+1, maxDropped) }

// maxDropped bounds the labels PulseDropped excuses: a step costs one
// pulse, a leap second three (timebase.FromClockAfter).
const maxDropped = 3
