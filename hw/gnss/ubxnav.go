package gnss

import (
	"encoding/binary"
	"sitegm/hw/gnss/ubx"
	"time"
)

// The UBX navigation messages that carry an epoch's time and fix (u-blox
// 6 to 10: "u-blox 6 Receiver Description" GPS.G6-SW-10018, "u-blox 8 /
// M8 Receiver Description" UBX-13003221, "ZED-F9T Interface Description"
// UBX-19005590; layouts unchanged across them except where noted). Every
// NAV message starts with iTOW, the GPS time of week of the navigation
// epoch in ms: the key that joins one epoch's messages.

// navKind is one kind of NAV message an epoch received.
type navKind uint8

const (
	navPVT navKind = 1 << iota
	navTimeUTC
	navTimeGPS
	navSol
	navStatus
	navTimeLS
)

// civilTime is a UTC time a message gave, rounded to the millisecond
// (the navigation epoch; the nanoseconds beside it are the receiver
// clock's bias, not part of the label), with the flags that vouch for it.
type civilTime struct {
	ok     bool // the message carried a time at all
	valid  bool // every validity flag set
	t      time.Time
	leap60 bool
}

// weekTime is a GPS week and time of week a message gave.
type weekTime struct {
	ok    bool
	week  int
	towMS int64
}

// navEpoch accumulates the NAV messages of one navigation epoch.
type navEpoch struct {
	active  bool
	itow    uint32
	firstAt time.Time
	kinds   navKind
	utc     civilTime // NAV-TIMEUTC
	pvt     civilTime // NAV-PVT
	gps     weekTime  // NAV-TIMEGPS
	sol     weekTime  // NAV-SOL
	// leap is GPS-UTC from this epoch's NAV-TIMEGPS or NAV-TIMELS.
	leap    int
	leapOK  bool
	fix     vote    // the fix-bearing messages' opinion
	fixMode FixMode // the best fix type said
	sats    int
	tAcc    time.Duration
	// nmeaTod: the first NMEA time that arrived while the epoch was open.
	nmeaTod tod
}

// fixOf maps a u-blox fix type (NAV-PVT fixType, NAV-SOL and NAV-STATUS
// gpsFix: 0 none, 1 dead reckoning only, 2 2D, 3 3D, 4 GNSS + dead
// reckoning, 5 time only) with its fix-OK flag to a mode and a vote: dead
// reckoning alone is not a time a grandmaster may follow.
func fixOf(fixType byte, fixOK bool) (FixMode, vote) {
	m := FixNone
	switch fixType {
	case 2:
		m = Fix2D
	case 3, 4:
		m = Fix3D
	case 5:
		m = FixTime
	}
	if m == FixNone || !fixOK {
		return m, voteInvalid
	}
	return m, voteValid
}

// ubxCivil reads a UTC date and time of day at p (year u2, month, day,
// hour, min, sec u1) and the signed nanoseconds beside it.
func ubxCivil(p []byte, nano int32) (civilTime, bool) {
	le := binary.LittleEndian
	y, mo, d := int(le.Uint16(p)), time.Month(p[2]), int(p[3])
	h, mi, s := int(p[4]), int(p[5]), int(p[6])
	if !validDate(y, mo, d) || h > 23 || mi > 59 || s > 60 || nano <= -1e9 || nano >= 1e9 {
		return civilTime{}, false
	}
	t := time.Date(y, mo, d, h, mi, s, 0, time.UTC).Add(time.Duration(nano)).Round(time.Millisecond)
	return civilTime{ok: true, t: t, leap60: s == 60}, true
}

// navMessage folds one NAV frame into the epoch it belongs to; it returns
// false for a message that is not an epoch's (or too short to be one).
func (d *Decoder) navMessage(fr *Frame) bool {
	p, le := fr.Data, binary.LittleEndian
	var kind navKind
	switch {
	case fr.ID == ubx.NavPVT && len(p) >= 84:
		kind = navPVT
	case fr.ID == ubx.NavTimeUTC && len(p) >= 20:
		kind = navTimeUTC
	case fr.ID == ubx.NavTimeGPS && len(p) >= 16:
		kind = navTimeGPS
	case fr.ID == ubx.NavSol && len(p) >= 52:
		kind = navSol
	case fr.ID == ubx.NavStatus && len(p) >= 16:
		kind = navStatus
	case fr.ID == ubx.NavTimeLS && len(p) >= 24:
		kind = navTimeLS
	case fr.ID == ubx.NavEOE && len(p) >= 4:
		if d.nav.active && le.Uint32(p) == d.nav.itow {
			d.closeNav(fr.At)
		}
		return true
	default:
		return false
	}
	itow := le.Uint32(p)
	if d.nav.active && itow != d.nav.itow {
		d.closeNav(fr.At)
	}
	e := &d.nav
	if !e.active {
		*e = navEpoch{active: true, itow: itow, firstAt: fr.At, sats: -1}
	}
	e.kinds |= kind
	fold := func(m FixMode, v vote) {
		e.fix = combine(e.fix, v)
		e.fixMode = max(e.fixMode, m)
	}
	switch kind {
	case navPVT:
		// valid: validDate 0x01, validTime 0x02, fullyResolved 0x04;
		// flags: gnssFixOK 0x01; flags2 (protocol 19+): confirmedAvai
		// 0x20, confirmedDate 0x40, confirmedTime 0x80.
		valid, flags, flags2 := p[11], p[21], p[22]
		if c, ok := ubxCivil(p[4:], int32(le.Uint32(p[16:]))); ok && valid&0x03 == 0x03 {
			c.valid = valid&0x04 != 0 && (flags2&0x20 == 0 || flags2&0xC0 == 0xC0)
			e.pvt = c
		}
		if e.tAcc == 0 {
			e.tAcc = time.Duration(le.Uint32(p[12:]))
		}
		fold(fixOf(p[20], flags&0x01 != 0))
		e.sats = int(p[23])
	case navTimeUTC:
		// valid: validTOW 0x01, validWKN 0x02, validUTC 0x04.
		v := p[19]
		if c, ok := ubxCivil(p[12:], int32(le.Uint32(p[8:]))); ok && v&0x04 != 0 {
			c.valid = v&0x07 == 0x07
			e.utc = c
		}
		e.tAcc = time.Duration(le.Uint32(p[4:]))
	case navTimeGPS:
		// valid: towValid 0x01, weekValid 0x02, leapSValid 0x04.
		v := p[11]
		if v&0x03 == 0x03 {
			e.gps = weekTime{ok: true, week: int(int16(le.Uint16(p[8:]))), towMS: gpsTOW(itow, int32(le.Uint32(p[4:])))}
		}
		if v&0x04 != 0 {
			e.leap, e.leapOK = int(int8(p[10])), true
		}
		if e.tAcc == 0 {
			e.tAcc = time.Duration(le.Uint32(p[12:]))
		}
	case navSol:
		// flags: GPSfixOK 0x01, WKNSET 0x04, TOWSET 0x08.
		flags := p[11]
		if flags&0x0C == 0x0C {
			e.sol = weekTime{ok: true, week: int(int16(le.Uint16(p[8:]))), towMS: gpsTOW(itow, int32(le.Uint32(p[4:])))}
		}
		fold(fixOf(p[10], flags&0x01 != 0))
		if e.sats < 0 {
			e.sats = int(p[47])
		}
	case navStatus:
		fold(fixOf(p[4], p[5]&0x01 != 0))
	case navTimeLS:
		// NAV-TIMELS also goes out as LeapInfo (decodeUBX); its current
		// offset dates a GPS time when NAV-TIMEGPS does not.
		if p[23]&0x01 != 0 && !e.leapOK {
			e.leap, e.leapOK = int(int8(p[9])), true
		}
	}
	// A complete epoch (every kind the last one had) or an end-of-epoch
	// marker closes at once; otherwise the next epoch's first message or
	// a quiet line does.
	if d.navLearned != 0 && e.kinds&d.navLearned == d.navLearned {
		d.closeNav(fr.At)
	}
	return true
}

// gpsTOW is the time of week in ms, with the nanoseconds beside iTOW
// (fTOW, ±500 µs) rounded in.
func gpsTOW(itow uint32, ftowNS int32) int64 {
	return (int64(itow)*1e6 + int64(ftowNS) + 5e5) / 1e6
}

// closeNav turns the epoch's messages into one contribution to the
// report of its UTC second: the UTC time from NAV-TIMEUTC, else NAV-PVT,
// else GPS time (NAV-TIMEGPS, else NAV-SOL) less the leap seconds the
// receiver gave (this epoch's or an earlier one's). Valid only when the
// message giving the time vouches for it with every flag and the
// fix-bearing messages agree on a real fix; an epoch with no fix-bearing
// message at all is not valid (the receiver said nothing of its fix).
func (d *Decoder) closeNav(at time.Time) {
	e := &d.nav
	if !e.active {
		return
	}
	d.navLearned = e.kinds
	if e.leapOK {
		d.navLeap, d.navLeapOK = e.leap, true
	}
	c := e.utc
	if !c.ok {
		c = e.pvt
	}
	if !c.ok {
		w := e.gps
		if !w.ok {
			w = e.sol
		}
		if w.ok && d.navLeapOK {
			t := gpsEpoch.Add(time.Duration(w.week)*7*24*time.Hour + time.Duration(w.towMS)*time.Millisecond -
				time.Duration(d.navLeap)*time.Second)
			c = civilTime{ok: true, valid: true, t: t}
		}
	}
	ne := *e
	*e = navEpoch{}
	if !c.ok {
		d.Stats.UBXNoTime++
		return
	}
	v := ne.fix
	if v == noVote || !c.valid {
		v = voteInvalid
	}
	h, m, s := c.t.Clock()
	if c.leap60 {
		s = 60
		h, m, _ = c.t.Add(-time.Second).Clock()
	}
	date := civilOf(c.t)
	if c.leap60 {
		date = civilOf(c.t.Add(-time.Second))
	}
	ts := timeSentence{typ: "UBX", talker: "UBX", tod: tod{ok: true, h: h, m: m, s: s, nanos: c.t.Nanosecond()},
		date: date, vote: v, sats: ne.sats, fix: ne.fixMode, tAcc: ne.tAcc, firstAt: ne.firstAt, nmeaTod: ne.nmeaTod}
	d.timeSentence(&ts, at)
}
