package ptp

import (
	"time"

	"github.com/facebook/time/ptp/protocol"

	"sitegm/clock/quality"
)

// GMOf is the grandmaster a port advertises for the clock's state: its
// clockQuality (IEEE 1588-2019 7.6.2), timeSource (7.6.2.8) and the flags
// of timePropertiesDS (8.2.4, carried in the header's flagField, Table 37).
func GMOf(a quality.Advertised) GM {
	tp := a.Time
	var flags uint16
	for _, f := range []struct {
		on   bool
		flag uint16
	}{{tp.Leap61, protocol.FlagLeap61}, {tp.Leap59, protocol.FlagLeap59}, {tp.UTCOffsetValid, protocol.FlagCurrentUtcOffsetValid},
		{tp.PTPTimescale, protocol.FlagPTPTimescale}, {tp.TimeTraceable, protocol.FlagTimeTraceable},
		{tp.FrequencyTraceable, protocol.FlagFrequencyTraceable}} {
		if f.on {
			flags |= f.flag
		}
	}
	return GM{Quality: protocol.ClockQuality{ClockClass: a.ClockClass, ClockAccuracy: a.ClockAccuracy, OffsetScaledLogVariance: a.Variance},
		TimeSource: tp.TimeSource, UTCOffset: tp.CurrentUTCOffset, Flags: flags}
}

// Carried is what a port whose hardware stamps are on a PHC slaved to the
// disciplined one advertises: the clock's clockAccuracy widened by the
// bound of carrying a stamp between the two PHCs (estError is the clock's
// own bound, <0 unknown), never better than the clock's own; unknown
// while the slave is not measured (ok false). The rest is the clock's:
// the port serves the one timebase.
func (g GM) Carried(estError, bound time.Duration, ok bool) GM {
	switch {
	case !ok:
		g.Quality.ClockAccuracy = quality.AccuracyUnknown
	case estError >= 0 && g.Quality.ClockAccuracy != quality.AccuracyUnknown:
		g.Quality.ClockAccuracy = max(g.Quality.ClockAccuracy, quality.AccuracyCode(estError+bound))
	}
	return g
}
