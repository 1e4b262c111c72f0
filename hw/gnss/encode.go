package gnss

import (
	"encoding/binary"
	"fmt"
	"sitegm/hw/gnss/ubx"
	"strconv"
	"time"
)

// This file writes what a receiver sends, for gnss-sim and for tests: the
// same formats the decoder reads, so the two can be checked against each
// other.

// AppendNMEA appends "$body*hh\r\n".
func AppendNMEA(dst []byte, body string) []byte {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	dst = append(dst, '$')
	dst = append(dst, body...)
	return fmt.Appendf(dst, "*%02X\r\n", sum)
}

// SimEpoch is one epoch a simulated receiver describes.
type SimEpoch struct {
	// Time is the UTC second being labelled (plus any fraction); for a leap
	// second it is the normalised next-day 00:00:00 and Leap60 is set.
	Time   time.Time
	Leap60 bool
	Valid  bool
	Sats   int // used
	InView int
	Talker string // "GN", "GP"...
}

func (e SimEpoch) clock() (hms string, y int, mo time.Month, d int) {
	t := e.Time
	sec := t.Second()
	if e.Leap60 {
		t = t.Add(-time.Second)
		sec = 60
	}
	y, mo, d = t.Date()
	hms = fmt.Sprintf("%02d%02d%02d.%02d", t.Hour(), t.Minute(), sec, t.Nanosecond()/1e7)
	return hms, y, mo, d
}

// Fixed position of the simulated antenna (a field site in the Alps).
const (
	simLat = "4608.1234"
	simLon = "00736.5432"
)

// AppendSimSentences appends the sentences of one epoch, in the order a
// u-blox receiver sends them, for each type in types (RMC, GGA, GSA, GSV,
// ZDA, GLL).
func AppendSimSentences(dst []byte, e SimEpoch, types []string) []byte {
	hms, y, mo, d := e.clock()
	status, mode, quality, gsaMode := "V", "N", 0, 1
	sats := 0
	if e.Valid {
		status, mode, quality, gsaMode = "A", "A", 1, 3
		sats = e.Sats
	}
	tk := e.Talker
	for _, typ := range types {
		switch typ {
		case "RMC":
			dst = AppendNMEA(dst, fmt.Sprintf("%sRMC,%s,%s,%s,N,%s,E,0.01,,%02d%02d%02d,,,%s", tk, hms, status, simLat, simLon, d, mo, y%100, mode))
		case "GGA":
			dst = AppendNMEA(dst, fmt.Sprintf("%sGGA,%s,%s,N,%s,E,%d,%02d,0.80,1210.5,M,47.9,M,,", tk, hms, simLat, simLon, quality, sats))
		case "GSA":
			prns := ""
			for i := 0; i < 12; i++ {
				if i < sats {
					prns += strconv.Itoa(i*3 + 2)
				}
				prns += ","
			}
			dst = AppendNMEA(dst, fmt.Sprintf("%sGSA,A,%d,%s1.50,0.80,1.27", tk, gsaMode, prns))
		case "GSV":
			n := e.InView
			msgs := max(1, (n+3)/4)
			for m := 0; m < msgs; m++ {
				body := fmt.Sprintf("GPGSV,%d,%d,%02d", msgs, m+1, n)
				for i := m * 4; i < min(n, m*4+4); i++ {
					snr := ""
					if i < sats {
						snr = strconv.Itoa(30 + i%15)
					}
					body += fmt.Sprintf(",%02d,%02d,%03d,%s", i*3+2, 10+i*7%70, i*37%360, snr)
				}
				dst = AppendNMEA(dst, body)
			}
		case "ZDA":
			dst = AppendNMEA(dst, fmt.Sprintf("%sZDA,%s,%02d,%02d,%04d,00,00", tk, hms, d, mo, y))
		case "GLL":
			dst = AppendNMEA(dst, fmt.Sprintf("%sGLL,%s,N,%s,E,%s,%s,%s", tk, simLat, simLon, hms, status, mode))
		}
	}
	return dst
}

// gpsEpoch is the start of GPS time (IS-GPS-200 clause 3.3.4).
var gpsEpoch = time.Date(1980, 1, 6, 0, 0, 0, 0, time.UTC)

// AppendTimTP appends a TIM-TP describing a pulse at UTC time t (aligned to
// UTC, so the time base flag and UTC flag are set) with quantisation error
// qErr in picoseconds.
func AppendTimTP(dst []byte, t time.Time, qErrPS int32) []byte {
	p := make([]byte, 16)
	d := t.Sub(gpsEpoch)
	week := int64(d / (7 * 24 * time.Hour))
	tow := d - time.Duration(week)*7*24*time.Hour
	binary.LittleEndian.PutUint32(p[0:], uint32(tow/time.Millisecond))
	binary.LittleEndian.PutUint32(p[8:], uint32(qErrPS))
	binary.LittleEndian.PutUint16(p[12:], uint16(week))
	p[14] = 0x03
	return ubx.Append(dst, ubx.ClassTIM, ubx.TimTP, p)
}

// AppendNavTimeLS appends a NAV-TIMELS: currLS GPS-UTC seconds (from GPS),
// and an announced change of lsChange seconds in timeToEvent seconds (0 for
// none).
func AppendNavTimeLS(dst []byte, currLS int8, lsChange int8, timeToEvent int32) []byte {
	return AppendNavTimeLSFrom(dst, currLS, 2, lsChange, timeToEvent)
}

// AppendNavTimeLSFrom is AppendNavTimeLS with the count's source (srcOfCurrLs:
// 0 the firmware's default, a receiver that has not yet read it from the
// satellites; 2 GPS).
func AppendNavTimeLSFrom(dst []byte, currLS int8, src byte, lsChange int8, timeToEvent int32) []byte {
	p := make([]byte, 24)
	p[8], p[9] = src, byte(currLS)
	if lsChange != 0 {
		p[10] = 2
	}
	p[11] = byte(lsChange)
	binary.LittleEndian.PutUint32(p[12:], uint32(timeToEvent))
	p[23] = 0x03
	return ubx.Append(dst, ubx.ClassNAV, ubx.NavTimeLS, p)
}

// PUBX04Poll is the request for a PUBX,04 ("$PUBX,04*37"): an NMEA-mode
// u-blox answers it with its time and leap second count; other receivers
// ignore a proprietary sentence they do not know.
func PUBX04Poll() []byte { return AppendNMEA(nil, "PUBX,04") }

// AppendPUBX04 appends a u-blox PUBX,04 for UTC time t: leapSec is GPS-UTC,
// marked 'D' when def (the firmware's default, not yet from the satellites).
// The clock fields are a receiver's plausible values.
func AppendPUBX04(dst []byte, t time.Time, leapSec int, def bool) []byte {
	week, itow := simITOW(t, leapSec)
	ls := strconv.Itoa(leapSec)
	if def {
		ls += "D"
	}
	body := fmt.Sprintf("PUBX,04,%02d%02d%02d.00,%02d%02d%02d,%d.00,%d,%s,0,0.000,21",
		t.Hour(), t.Minute(), t.Second(), t.Day(), int(t.Month()), t.Year()%100, itow/1000, week, ls)
	return AppendNMEA(dst, body)
}

// UBX navigation messages of one simulated epoch: what a u-blox timing
// receiver sends (interface descriptions cited in ubxnav.go).

// simITOW is GPS week and time of week (ms) of the UTC time utc, with
// gpsMinusUTC leap seconds.
func simITOW(utc time.Time, gpsMinusUTC int) (week int, itow uint32) {
	d := utc.Add(time.Duration(gpsMinusUTC) * time.Second).Sub(gpsEpoch)
	w := d / (7 * 24 * time.Hour)
	return int(w), uint32((d - w*7*24*time.Hour) / time.Millisecond)
}

// ubxFixType is the UBX fix type a simulated epoch reports: 3D with a
// fix, none without.
func (e SimEpoch) ubxFixType() (fixType, fixOK byte) {
	if e.Valid {
		return 3, 1
	}
	return 0, 0
}

// putCivil writes year..sec at p for the epoch (a leap second as :60).
func (e SimEpoch) putCivil(p []byte) {
	t, sec := e.Time, e.Time.Second()
	if e.Leap60 {
		t, sec = t.Add(-time.Second), 60
	}
	binary.LittleEndian.PutUint16(p, uint16(t.Year()))
	p[2], p[3], p[4], p[5], p[6] = byte(t.Month()), byte(t.Day()), byte(t.Hour()), byte(t.Minute()), byte(sec)
}

// AppendNavPVT appends a NAV-PVT (92 bytes, protocol 15+) for the epoch:
// date and time valid and fully resolved (confirmed, protocol 19+) when
// the epoch is valid; tAcc ns.
func AppendNavPVT(dst []byte, e SimEpoch, gpsMinusUTC int, tAccNS uint32) []byte {
	p := make([]byte, 92)
	le := binary.LittleEndian
	_, itow := simITOW(e.Time, gpsMinusUTC)
	le.PutUint32(p, itow)
	e.putCivil(p[4:])
	fixType, fixOK := e.ubxFixType()
	p[11] = 0x03 // validDate, validTime
	if e.Valid {
		p[11] |= 0x04       // fullyResolved
		p[22] = 0x20 | 0xC0 // confirmedAvai, confirmedDate, confirmedTime
	}
	le.PutUint32(p[12:], tAccNS)
	le.PutUint32(p[16:], uint32(int32(e.Time.Nanosecond()))) // the fraction of the second
	p[20], p[21], p[23] = fixType, fixOK, byte(e.Sats)
	return ubx.Append(dst, ubx.ClassNAV, ubx.NavPVT, p)
}

// AppendNavTimeUTC appends a NAV-TIMEUTC for the epoch; validUTC says
// whether the receiver knows GPS-UTC yet.
func AppendNavTimeUTC(dst []byte, e SimEpoch, gpsMinusUTC int, tAccNS uint32, validUTC bool) []byte {
	p := make([]byte, 20)
	le := binary.LittleEndian
	_, itow := simITOW(e.Time, gpsMinusUTC)
	le.PutUint32(p, itow)
	le.PutUint32(p[4:], tAccNS)
	le.PutUint32(p[8:], uint32(int32(e.Time.Nanosecond())))
	e.putCivil(p[12:])
	p[19] = 0x03
	if validUTC {
		p[19] |= 0x04
	}
	return ubx.Append(dst, ubx.ClassNAV, ubx.NavTimeUTC, p)
}

// AppendNavTimeGPS appends a NAV-TIMEGPS for the epoch, with its leap
// seconds marked valid when leapValid.
func AppendNavTimeGPS(dst []byte, e SimEpoch, gpsMinusUTC int, leapValid bool) []byte {
	p := make([]byte, 16)
	le := binary.LittleEndian
	week, itow := simITOW(e.Time, gpsMinusUTC)
	le.PutUint32(p, itow)
	le.PutUint16(p[8:], uint16(week))
	p[10], p[11] = byte(gpsMinusUTC), 0x03
	if leapValid {
		p[11] |= 0x04
	}
	return ubx.Append(dst, ubx.ClassNAV, ubx.NavTimeGPS, p)
}

// AppendNavSol appends a NAV-SOL (u-blox 6 to 8) for the epoch.
func AppendNavSol(dst []byte, e SimEpoch, gpsMinusUTC int) []byte {
	p := make([]byte, 52)
	le := binary.LittleEndian
	week, itow := simITOW(e.Time, gpsMinusUTC)
	le.PutUint32(p, itow)
	le.PutUint16(p[8:], uint16(week))
	fixType, fixOK := e.ubxFixType()
	p[10], p[11], p[47] = fixType, fixOK|0x0C, byte(e.Sats)
	return ubx.Append(dst, ubx.ClassNAV, ubx.NavSol, p)
}

// AppendNavStatus appends a NAV-STATUS for the epoch; spoof is its
// spoofDetState (0 unknown, 1 none, 2 indicated, 3 multiple indications).
func AppendNavStatus(dst []byte, e SimEpoch, gpsMinusUTC int, spoof byte) []byte {
	p := make([]byte, 16)
	_, itow := simITOW(e.Time, gpsMinusUTC)
	binary.LittleEndian.PutUint32(p, itow)
	fixType, fixOK := e.ubxFixType()
	p[4], p[5], p[7] = fixType, fixOK|0x0C, spoof<<3
	return ubx.Append(dst, ubx.ClassNAV, ubx.NavStatus, p)
}

// AppendNavEOE appends the end-of-epoch marker of the epoch.
func AppendNavEOE(dst []byte, e SimEpoch, gpsMinusUTC int) []byte {
	p := make([]byte, 4)
	_, itow := simITOW(e.Time, gpsMinusUTC)
	binary.LittleEndian.PutUint32(p, itow)
	return ubx.Append(dst, ubx.ClassNAV, ubx.NavEOE, p)
}

// AppendMonHW appends a MON-HW (60 bytes, u-blox 6 to 8): antenna status
// (2 ok, 3 short, 4 open), jamming state in flags bits 2-3 and the CW
// jamming indicator.
func AppendMonHW(dst []byte, ant Antenna, jam Jamming, jamInd uint8) []byte {
	p := make([]byte, 60)
	p[20] = map[Antenna]byte{AntennaOK: 2, AntennaShort: 3, AntennaOpen: 4}[ant]
	p[21] = 1 // aPower on
	p[22] = byte(jam&3) << 2
	p[45] = jamInd
	return ubx.Append(dst, ubx.ClassMON, ubx.MonHW, p)
}

// AppendTimSVIN appends a TIM-SVIN: survey-in duration so far, its
// position variance (mean accuracy squared, mm²), observations, valid
// and active.
func AppendTimSVIN(dst []byte, s Survey) []byte {
	p := make([]byte, 28)
	le := binary.LittleEndian
	le.PutUint32(p, uint32(s.Duration/time.Second))
	acc := s.MeanAcc * 1000
	le.PutUint32(p[16:], uint32(min(acc*acc, 4e9)))
	le.PutUint32(p[20:], s.Observations)
	if s.Valid {
		p[24] = 1
	}
	if s.Active {
		p[25] = 1
	}
	return ubx.Append(dst, ubx.ClassTIM, ubx.TimSVIN, p)
}
