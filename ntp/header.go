package ntp

import (
	"math"
	"time"

	"sitegm/clock/quality"
)

// HeaderOf is the header every reply carries for the clock's state at UTC
// time now (RFC 5905 7.3): leap indicator, stratum, reference ID, the
// root delay (0 on GNSS), the reference time (when the reference last
// corrected the clock, never after now), and a root dispersion that is the clock's error bound plus the
// resolution of reading it (2^precision s).
func HeaderOf(n quality.NTP, precision int8, now time.Time) Header {
	h := Header{Leap: n.LI, Stratum: n.Stratum, Precision: precision,
		RefID:          uint32(n.RefID[0])<<24 | uint32(n.RefID[1])<<16 | uint32(n.RefID[2])<<8 | uint32(n.RefID[3]),
		RootDelay:      Short(n.RootDelay),
		RootDispersion: Short(n.RootDispersion + time.Duration(math.Ldexp(1e9, int(precision))))}
	if !n.RefTime.IsZero() {
		if n.RefTime.After(now) {
			h.RefTime = Timestamp(now)
		} else {
			h.RefTime = Timestamp(n.RefTime)
		}
	}
	return h
}

// Unsynchronized is h saying that its time is not to be trusted (LI 3,
// stratum 0, reference ID "INIT", 16 s of dispersion: RFC 5905 7.3 and
// Figure 13's unsynchronized values), for replies while the clock cannot
// be read.
func (h Header) Unsynchronized() Header {
	h.Leap, h.Stratum, h.RefID = 3, 0, 0x494E4954 // "INIT"
	h.RootDispersion = Short(16 * time.Second)
	return h
}

// ClockHold is how long replies keep the last header when the disciplined
// clock cannot be read: the PHC-to-realtime offset measured last (the
// servers stamp on CLOCK_REALTIME, slaved to the PHC) is good for that
// long; after it, replies say unsynchronized.
const ClockHold = 2 * time.Second

// Held is the header to serve while the clock's reads have been failing
// for failing (0: they read): h itself within ClockHold, h saying it is
// unsynchronized after it. A served time is never another clock's: past
// the hold, the reply admits it does not know.
func (h Header) Held(failing time.Duration) Header {
	if failing > ClockHold && h.Leap != 3 {
		return h.Unsynchronized()
	}
	return h
}

// Precision measures the precision of a clock read as NTP wants it (RFC
// 5905 7.3: log2 s): the smallest step between successive reads, clamped
// to -29..-3 (older w32time discards replies outside that range).
func Precision(read func() (time.Time, error)) int8 {
	best := time.Duration(math.MaxInt64)
	prev, perr := read()
	for i := 0; i < 2000; i++ {
		t, err := read()
		if d := t.Sub(prev); err == nil && perr == nil && d > 0 && d < best {
			best = d
		}
		prev, perr = t, err
	}
	if best == time.Duration(math.MaxInt64) {
		best = time.Microsecond // unreadable now: a plausible guess
	}
	p := int(math.Ceil(math.Log2(best.Seconds())))
	return int8(min(-3, max(-29, p)))
}
