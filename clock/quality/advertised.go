package quality

import (
	"math"
	"time"

	"sitegm/clock"
	"sitegm/clock/leap"

	"github.com/facebook/time/ptp/protocol"
)

// TimeProperties is PTP's timePropertiesDS (IEEE 1588-2019 8.2.4).
type TimeProperties struct {
	CurrentUTCOffset   int16
	UTCOffsetValid     bool
	Leap59, Leap61     bool
	TimeTraceable      bool
	FrequencyTraceable bool
	PTPTimescale       bool
	TimeSource         protocol.TimeSource
}

// TimeProperties derives timePropertiesDS at UTC time utc (IEEE 1588-2019
// 8.2.4). The policy (docs/clock.md, "The UTC offset when the table is
// old"):
//
//   - currentUtcOffsetValid is true whenever the clock is synchronized.
//     sitegm builds its PTP time as the UTC it serves plus this very offset
//     (one table, clock/timebase), so PTP time minus currentUtcOffset is
//     that UTC to the second, however old the table (8.2.4.3: the offset is
//     "known to be correct" for the timescale served). Withholding it when
//     the table had expired put followers that honour the flag 37 s off
//     the UTC sitegm's NTP clients got.
//   - timeTraceable (8.2.4.6) also needs the offset itself known
//     (leapKnown: a current leap second table or the receiver's count, and
//     no receiver contradicting the table: discipline.LeapKnown). With an
//     expired table and a receiver that does not say, what is uncertain is
//     TAI (a leap second nobody told the box of), so PTP time is not
//     traceable; the frequency still is.
//
// The leap flags are set for the whole UTC day that ends with the leap
// second, and only while the clock is synchronized.
func (m *Machine) TimeProperties(utc time.Time, t *leap.Table, leapKnown bool) TimeProperties {
	tp := TimeProperties{
		CurrentUTCOffset:   int16(t.Offset(utc)),
		UTCOffsetValid:     m.Synchronized(),
		TimeTraceable:      m.Traceable() && leapKnown,
		FrequencyTraceable: m.Traceable(),
		PTPTimescale:       true,
		TimeSource:         m.TimeSource(),
	}
	if m.Synchronized() {
		switch t.Pending(utc) {
		case 1:
			tp.Leap61 = true
		case -1:
			tp.Leap59 = true
		}
	}
	return tp
}

// NTP is what an NTP server derives from the clock (RFC 5905 7.3).
type NTP struct {
	LI             uint8 // 0 none, 1 insert at the end of the day, 2 delete, 3 unsynchronized
	Stratum        uint8 // 1 synchronized to GNSS; the upstream's + 1 on NTP; 0 (unspecified) when not
	RefID          [4]byte
	RootDelay      time.Duration // to the primary source: 0 on GNSS, the upstreams' on NTP
	RootDispersion time.Duration
	RefTime        time.Time // last GNSS correction (UTC); zero if none
}

// NTP derives the NTP header fields at UTC time utc. While locked or in
// holdover within spec: stratum 1, refid GPS (NMEA when there is no PPS),
// root dispersion the estimated error bound (which grows through holdover
// at the oscillator model's rate). Otherwise LI 3 and stratum 0, so clients
// drop sitegm rather than follow a clock it does not believe.
func (m *Machine) NTP(utc time.Time, t *leap.Table) NTP {
	if !m.Synchronized() {
		return NTP{LI: 3, Stratum: 0, RefID: [4]byte{'I', 'N', 'I', 'T'}, RootDispersion: 16 * time.Second}
	}
	n := NTP{Stratum: 1, RefID: [4]byte{'G', 'P', 'S', 0}, RootDispersion: m.EstError()}
	switch {
	case m.ntp():
		// RFC 5905 clause 7.3: a secondary server's stratum is its
		// system peer's plus one, its reference ID the peer's address,
		// its root delay the peer's plus the path to it; the root
		// dispersion is the error bound, which includes theirs.
		n.Stratum = uint8(min(max(m.up.Stratum+1, 2), 15))
		n.RefID, n.RootDelay = m.up.RefID, m.up.RootDelay
	case m.cfg.NMEAOnly:
		n.RefID = [4]byte{'N', 'M', 'E', 'A'}
	}
	switch t.Pending(utc) {
	case 1:
		n.LI = 1
	case -1:
		n.LI = 2
	}
	if !m.lastSample.IsZero() {
		n.RefTime = m.lastSample
		if m.cfg.Timescale == clock.TAI {
			n.RefTime, _ = t.TAIToUTC(m.lastSample)
		}
	}
	return n
}

// Kernel is what the kernel is told of the clock when it is
// CLOCK_REALTIME (clock.KernelSync): synchronized exactly when NTP says so
// (LI not 3), with the bound NTP advertises as the root dispersion, and
// one standard deviation of the estimate and the source together as the
// estimated error (chrony writes its offset's standard deviation there).
func (m *Machine) Kernel() clock.KernelSync {
	b := m.EstError()
	if !m.Synchronized() || b == time.Duration(math.MaxInt64) {
		return clock.KernelSync{}
	}
	sd := m.est.OffsetSigma
	if !m.ntp() {
		sd = time.Duration(math.Hypot(float64(sd), float64(m.cfg.SourceError)))
	}
	return clock.KernelSync{Synced: true, MaxError: b, EstError: sd}
}

// V1 is the grandmaster description of IEEE 1588-2002 (PTPv1, Dante).
type V1 struct {
	Stratum    uint8
	Identifier [4]byte
	Variance   int16
	Preferred  bool
}

// V1 maps the state onto 1588-2002's best-master fields: the best the
// 2002 algorithm allows while locked (stratum 1, "GPS", preferred), then
// worse in holdover and free-run so that a Dante device configured as
// preferred leader takes over from a free-running sitegm.
func (m *Machine) V1() V1 {
	if m.ntp() && m.Synchronized() {
		// 1588-2002 Table 7: stratum 2 is a secondary reference, "NTP"
		// its identifier.
		return V1{Stratum: 2, Identifier: [4]byte{'N', 'T', 'P', 0}, Variance: -4000, Preferred: true}
	}
	switch {
	case m.st == Locked && !m.joining:
		return V1{Stratum: 1, Identifier: [4]byte{'G', 'P', 'S', 0}, Variance: -16000, Preferred: true}
	case m.st == Locked || m.st == Holdover:
		return V1{Stratum: 2, Identifier: [4]byte{'G', 'P', 'S', 0}, Variance: -8000, Preferred: true}
	}
	return V1{Stratum: 4, Identifier: [4]byte{'D', 'F', 'L', 'T'}, Variance: 0x7FFF, Preferred: false}
}

// Advertised is everything sitegm advertises about its clock at one
// instant, derived from the one state: what ptp.GMOf, v1.GMOf and
// ntp.HeaderOf put on the wire.
type Advertised struct {
	ClockClass    protocol.ClockClass
	ClockAccuracy protocol.ClockAccuracy
	Variance      uint16 // offsetScaledLogVariance
	Time          TimeProperties
	V1            V1
	NTP           NTP
}

// Advertise derives what is advertised at UTC time utc: the disciplined
// clock's time, never the host's, so that the leap flags are for the day
// the served clock is in.
func (m *Machine) Advertise(utc time.Time, t *leap.Table, leapKnown bool) Advertised {
	return Advertised{ClockClass: m.ClockClass(), ClockAccuracy: m.ClockAccuracy(), Variance: m.OffsetScaledLogVariance(),
		Time: m.TimeProperties(utc, t, leapKnown), V1: m.V1(), NTP: m.NTP(utc, t)}
}

// Initial is what a port advertises before the daemon said anything: the
// default class with nothing known, no flags (not even the PTP timescale),
// PTPv1's worst stratum, NTP unsynchronized.
func Initial() Advertised {
	return Advertised{ClockClass: ClassDefault, ClockAccuracy: AccuracyUnknown, Variance: VarianceUnknown,
		Time: TimeProperties{TimeSource: TimeSourceOsc},
		V1:   V1{Stratum: 4, Identifier: [4]byte{'D', 'F', 'L', 'T'}, Variance: 0x7FFF},
		NTP:  NTP{LI: 3, RefID: [4]byte{'I', 'N', 'I', 'T'}, RootDispersion: 16 * time.Second}}
}
