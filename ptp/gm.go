package ptp

import (
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
