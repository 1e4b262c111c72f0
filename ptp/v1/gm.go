package v1

import "sitegm/clock/quality"

// GMOf is the grandmaster a PTPv1 port advertises for the clock's state
// (IEEE 1588-2002 7.6: grandmasterClockStratum, Identifier, Variance,
// Preferred; the Sync's currentUTCOffset and leap flags).
func GMOf(a quality.Advertised) GM {
	c, tp := a.V1, a.Time
	return GM{Stratum: c.Stratum, Identifier: c.Identifier, Variance: c.Variance, Preferred: c.Preferred,
		UTCOffset: tp.CurrentUTCOffset, Leap61: tp.Leap61, Leap59: tp.Leap59, UTCReasonable: tp.UTCOffsetValid}
}
