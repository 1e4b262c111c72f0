package gnss

import (
	"encoding/binary"
	"math"
	"sitegm/hw/gnss/ubx"
	"time"
)

// What a u-blox receiver says about its own condition (layouts from the
// interface descriptions cited in ubxnav.go): the antenna and RF front end
// (MON-HW on generations 6 to 9, MON-RF per RF block on 9+), interference
// and spoofing detection (NAV-STATUS flags2 on protocol 18+, SEC-SIG
// version 1 on generation 9), and the survey-in of a timing receiver
// (TIM-SVIN on the M8T, NAV-SVIN on the F9T).

// Antenna is the antenna supervisor's state (MON-HW aStatus, MON-RF
// antStatus: 0 init, 1 don't know, 2 ok, 3 short, 4 open).
type Antenna uint8

// Antenna states; AntennaUnknown when no message said.
const (
	AntennaUnknown Antenna = iota
	AntennaOK
	AntennaShort
	AntennaOpen
)

func (a Antenna) String() string { return [...]string{"unknown", "ok", "short", "open"}[a] }

func antennaOf(status byte) Antenna {
	switch status {
	case 2:
		return AntennaOK
	case 3:
		return AntennaShort
	case 4:
		return AntennaOpen
	}
	return AntennaUnknown
}

// Jamming is the receiver's interference verdict (MON-HW flags
// jammingState, MON-RF flags, SEC-SIG jamFlags: 0 unknown or disabled, 1
// ok, 2 warning, 3 critical).
type Jamming uint8

// Jamming states.
const (
	JammingUnknown Jamming = iota
	JammingOK
	JammingWarning
	JammingCritical
)

func (j Jamming) String() string { return [...]string{"unknown", "ok", "warning", "critical"}[j&3] }

// Spoofing is the receiver's spoofing detector (NAV-STATUS spoofDetState:
// 0 unknown or off, 1 none indicated, 2 indicated, 3 multiple indications;
// SEC-SIG spoofingState: 0 unknown, 1 none, 2 indicated, 3 affirmed).
type Spoofing uint8

// Spoofing states.
const (
	SpoofingUnknown Spoofing = iota
	SpoofingNone
	SpoofingIndicated
	SpoofingAffirmed
)

func (s Spoofing) String() string {
	return [...]string{"unknown", "none", "indicated", "affirmed"}[s&3]
}

// Survey is a survey-in's progress (TIM-SVIN, NAV-SVIN).
type Survey struct {
	Active, Valid bool
	Duration      time.Duration
	Observations  uint32
	// MeanAcc is the position accuracy reached (NAV-SVIN meanAcc; from
	// TIM-SVIN's variance meanV, its square root).
	MeanAcc float64 // metres
}

// Health is one message's word on the receiver's condition; a field the
// message does not carry is left unknown (HasX false, or the zero state).
type Health struct {
	Source   string // "MON-HW", "MON-RF", "NAV-STATUS", "SEC-SIG", "TIM-SVIN", "NAV-SVIN"
	Antenna  Antenna
	Jamming  Jamming
	HasJam   bool
	JamInd   int // jamming indicator 0..255 (CW interference), -1 unknown
	Noise    int // noise level per ms, -1 unknown
	Spoofing Spoofing
	HasSpoof bool
	Survey   *Survey
	At       time.Time
}

func (Health) event() {}

// decodeHealth turns a health message into an event.
func decodeHealth(fr *Frame) (Health, bool) {
	p, le := fr.Data, binary.LittleEndian
	h := Health{JamInd: -1, Noise: -1, At: fr.At}
	switch {
	case fr.Class == ubx.ClassMON && fr.ID == ubx.MonHW && len(p) >= 60:
		h.Source = "MON-HW"
		h.Noise = int(le.Uint16(p[16:]))
		h.Antenna = antennaOf(p[20])
		h.Jamming, h.HasJam = Jamming(p[22]>>2&3), true
		h.JamInd = int(p[45])
	case fr.Class == ubx.ClassMON && fr.ID == ubx.MonRF && len(p) >= 4:
		// The worst of the RF blocks (L1, L2/L5) is the receiver's.
		n := int(p[1])
		if n == 0 || len(p) < 4+24*n {
			return h, false
		}
		h.Source, h.HasJam = "MON-RF", true
		for i := 0; i < n; i++ {
			b := p[4+24*i:]
			h.Jamming = max(h.Jamming, Jamming(b[1]&3))
			if a := antennaOf(b[2]); a > h.Antenna {
				h.Antenna = a
			}
			h.Noise = max(h.Noise, int(le.Uint16(b[12:])))
			h.JamInd = max(h.JamInd, int(b[16]))
		}
	case fr.Class == ubx.ClassNAV && fr.ID == ubx.NavStatus && len(p) >= 16:
		// flags2 bits 3-4: spoofDetState (protocol 18+; 0 before).
		h.Source, h.Spoofing, h.HasSpoof = "NAV-STATUS", Spoofing(p[7]>>3&3), true
	case fr.Class == ubx.ClassSEC && fr.ID == ubx.SecSig && len(p) >= 12 && p[0] == 1:
		// Version 1 only: later versions lay the flags out differently,
		// and a misread spoofing flag would hold the clock over for good.
		h.Source = "SEC-SIG"
		if p[4]&1 != 0 {
			h.Jamming, h.HasJam = Jamming(p[4]>>1&3), true
		}
		if p[8]&1 != 0 {
			s := p[8] >> 1 & 7
			h.Spoofing, h.HasSpoof = Spoofing(min(s, 3)), true
		}
	case fr.Class == ubx.ClassTIM && fr.ID == ubx.TimSVIN && len(p) >= 28:
		h.Source = "TIM-SVIN"
		h.Survey = &Survey{Duration: time.Duration(le.Uint32(p)) * time.Second, Observations: le.Uint32(p[20:]),
			Valid: p[24] != 0, Active: p[25] != 0, MeanAcc: sqrtMM2(le.Uint32(p[16:]))}
	case fr.Class == ubx.ClassNAV && fr.ID == ubx.NavSVIN && len(p) >= 40:
		h.Source = "NAV-SVIN"
		h.Survey = &Survey{Duration: time.Duration(le.Uint32(p[8:])) * time.Second, Observations: le.Uint32(p[32:]),
			Valid: p[36] != 0, Active: p[37] != 0, MeanAcc: float64(le.Uint32(p[28:])) / 1e4}
	default:
		return h, false
	}
	return h, true
}

// sqrtMM2 is the standard deviation in metres of a variance in mm².
func sqrtMM2(v uint32) float64 { return math.Sqrt(float64(v)) / 1000 }

// decodeINF turns a UBX INF message (class 0x04: ERROR 0x00, WARNING
// 0x01, NOTICE 0x02, TEST 0x03, DEBUG 0x04; ASCII text) into the same
// Text event NMEA TXT gives, with TXT's severities (0 error, 1 warning,
// 2 notice, 7 user).
func decodeINF(fr *Frame) (Text, bool) {
	if fr.Class != ubx.ClassINF || fr.ID > 4 {
		return Text{}, false
	}
	sev := [...]int{0, 1, 2, 7, 7}[fr.ID]
	b := make([]byte, 0, len(fr.Data))
	for _, c := range fr.Data {
		if c >= 0x20 && c < 0x7F {
			b = append(b, c)
		}
	}
	return Text{Talker: "UBX", Severity: sev, Text: string(b), At: fr.At}, true
}
