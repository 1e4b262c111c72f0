package gnss

import (
	"fmt"
	"sitegm/hw/gnss/ubx"
	"strings"
	"time"
)

// Event is what the decoder produces: Report, Text, TimePulse, LeapInfo or
// Health.
type Event interface{ event() }

// FixMode is the receiver's fix dimension.
type FixMode uint8

// Fix modes, from GSA.
const (
	FixUnknown FixMode = iota
	FixNone
	Fix2D
	Fix3D
	FixTime // time only: a timing receiver on a surveyed or fixed position (u-blox fix type 5)
)

func (f FixMode) String() string {
	return [...]string{"unknown", "none", "2d", "3d", "time"}[f]
}

// Report is one receiver epoch: everything the receiver said about one UTC
// time of day.
type Report struct {
	// Time is the UTC time the epoch names (second and fraction). A leap
	// second 23:59:60.x is normalised by Go to the next day's 00:00:00.x;
	// Leap60 marks it. Zero when HasDate is false.
	Time    time.Time
	HasDate bool
	Leap60  bool
	// Valid: the receiver has a fix it trusts (RMC/GLL status A and a real
	// FAA mode, GGA quality 1-5, a GNS mode with a real fix), and no sentence
	// of the epoch said otherwise.
	Valid  bool
	Fix    FixMode
	Sats   int // satellites used, -1 unknown
	InView int // satellites in view (all constellations), -1 unknown
	// Talker and Sentence name the sentence that opened the epoch.
	Talker   string
	Sentence string
	// DateFrom says where the date came from: "RMC" or "ZDA" in this epoch,
	// "earlier RMC" or "earlier ZDA" when carried from a previous epoch.
	DateFrom string
	// Rollover: the date was 1024 weeks before the date floor and was
	// moved forward.
	Rollover bool
	// Implausible says why the epoch's date cannot be right (Valid is then
	// false, and Time is the date as the receiver sent it): a date more
	// than one GPS week rollover before the date floor (a receiver without
	// an almanac reporting 1980 or 1999), one beyond what a rollover could
	// explain after it (2099), or sentences of one epoch that disagree on
	// the date (RMC and ZDA).
	Implausible string
	// TAcc is the receiver's own estimate of its time's accuracy (UBX
	// NAV-TIMEUTC, NAV-PVT or NAV-TIMEGPS tAcc), 0 when it gave none.
	TAcc time.Duration
	// Conflict says how the epoch's UBX and NMEA messages disagreed on
	// the second or the date; the UBX time was kept (Stats.Conflicts).
	Conflict string
	// FirstAt is the arrival of the epoch's first sentence; At of the
	// sentence (or idle gap) that completed it.
	FirstAt, At time.Time
}

func (Report) event() {}

// Arrival is when the epoch began to arrive: its first sentence's
// arrival, or, where none was recorded, read (when the bytes that
// completed it were read): what the discipline labels the epoch with.
func (r Report) Arrival(read time.Time) time.Time {
	if r.FirstAt.IsZero() {
		return read
	}
	return r.FirstAt
}

// UTCString formats Time in RFC 3339 with its fraction, writing a leap
// second as 23:59:60.
func (r Report) UTCString() string {
	if !r.HasDate {
		return ""
	}
	if r.Leap60 {
		prev := r.Time.Add(-time.Second)
		frac := ""
		if ns := r.Time.Nanosecond(); ns != 0 {
			frac = strings.TrimRight(fmt.Sprintf(".%09d", ns), "0")
		}
		return fmt.Sprintf("%04d-%02d-%02dT23:59:60%sZ", prev.Year(), prev.Month(), prev.Day(), frac)
	}
	return r.Time.Format("2006-01-02T15:04:05.999999999Z07:00")
}

// Options tune the decoder.
type Options struct {
	// DateFloor is the earliest legitimate date. Earlier dates are taken as
	// a GPS week-number rollover (IS-GPS-200 broadcasts the week modulo 1024,
	// so a receiver with a stale epoch reports dates 1024 weeks early) and
	// moved forward. Zero disables the correction.
	DateFloor time.Time
	// IdleClose closes an epoch when no byte came for this long (see Tick).
	// Zero means 300 ms.
	IdleClose time.Duration
}

// Stats counts what the decoder saw beyond framing.
type Stats struct {
	ByName       map[string]uint64 // sentences by address ("GNRMC", "PUBX")
	UBXByID      map[string]uint64 // UBX frames by "class-id" hex
	OtherTalker  uint64            // well-formed sentences from talkers not decoded
	BadTime      uint64            // time-bearing sentences whose time/date fields do not parse
	NoTime       uint64            // time-bearing sentences with an empty time (no fix yet)
	Late         uint64            // time sentences for an epoch already reported
	Reports      uint64
	ValidReports uint64
	NoDate       uint64 // reports without any date known yet
	Rollovers    uint64 // reports whose date was corrected
	Implausible  uint64 // reports whose date cannot be right (Report.Implausible)
	UBXNoTime    uint64 // UBX navigation epochs without a time (no flag vouched for one, no leap seconds known)
	Conflicts    uint64 // epochs whose UBX and NMEA named different seconds or dates (Report.Conflict)
}

const weeks1024 = 1024 * 7 * 24 * time.Hour

// epoch accumulates the sentences naming one time of day.
type epoch struct {
	active   bool
	tod      tod
	talker   string
	sentence string
	date     civil
	dateFrom string
	// dateConflict: two sentences of the epoch named different dates.
	dateConflict bool
	vote         vote
	sats         int
	gsaUsed      int
	gsaFix       FixMode
	types        typeSet
	firstAt      time.Time
	// UBX's contribution (preferred where both protocols speak): its
	// vote, fix and accuracy; conflict says how NMEA disagreed, and
	// sentences naming rejectTod are the refused NMEA side of it.
	ubxVote   vote
	ubxFix    FixMode
	tAcc      time.Duration
	conflict  string
	rejectTod tod
}

// typeSet is a small set of time-bearing sentence types (and UBX, for a
// navigation epoch's time).
type typeSet uint8

func typeBit(t string) typeSet {
	switch t {
	case "RMC":
		return 1
	case "GGA":
		return 2
	case "GNS":
		return 4
	case "ZDA":
		return 8
	case "GLL":
		return 16
	case "UBX":
		return 32
	}
	return 0
}

// Decoder turns receiver bytes into events. Not safe for concurrent use.
type Decoder struct {
	opt     Options
	fr      *Framer
	s       sentence
	ep      epoch
	closed  tod     // the epoch reported last
	learned typeSet // time-bearing types of a complete epoch: seeing them all ends the next one early
	// date carried between epochs
	lastDate     civil
	lastDateTOD  int64
	lastDateFrom string
	// receiver-wide state from GSA/GSV
	lastFix   FixMode
	lastFixAt time.Time
	inView    map[string]int
	lastByte  time.Time
	// UBX navigation epochs: the open one, the kinds a complete one had,
	// and the receiver's latest GPS-UTC.
	nav        navEpoch
	navLearned navKind
	navLeap    int
	navLeapOK  bool
	events     []Event
	Stats      Stats
}

// NewDecoder returns a decoder.
func NewDecoder(opt Options) *Decoder {
	if opt.IdleClose == 0 {
		opt.IdleClose = 300 * time.Millisecond
	}
	d := &Decoder{opt: opt, inView: map[string]int{}}
	d.Stats.ByName = map[string]uint64{}
	d.Stats.UBXByID = map[string]uint64{}
	d.fr = NewFramer(d.frame)
	return d
}

// FramerStats returns the framing counters.
func (d *Decoder) FramerStats() FramerStats { return d.fr.Stats }

// Feed decodes bytes that arrived at local time at and returns the events
// they completed. The returned slice is reused by the next call.
func (d *Decoder) Feed(p []byte, at time.Time) []Event {
	d.events = d.events[:0]
	if len(p) > 0 {
		d.lastByte = at
	}
	d.fr.Write(p, at)
	return d.events
}

// Tick closes an epoch left open when the line has been quiet for
// Options.IdleClose: receivers send each epoch as one burst, so a quiet line
// means the burst is over. Call it when a read times out.
func (d *Decoder) Tick(now time.Time) []Event {
	d.events = d.events[:0]
	if now.Sub(d.lastByte) >= d.opt.IdleClose {
		d.closeNav(now)
		if d.ep.active {
			d.close(now)
		}
	}
	return d.events
}

// Flush ends the input, reporting an open epoch.
func (d *Decoder) Flush(now time.Time) []Event {
	d.events = d.events[:0]
	d.closeNav(now)
	if d.ep.active {
		d.close(now)
	}
	return d.events
}

func (d *Decoder) frame(fr *Frame) {
	switch fr.Kind {
	case FrameNMEA:
		d.sentence(fr)
	case FrameUBX:
		d.Stats.UBXByID[fmt.Sprintf("%02X-%02X", fr.Class, fr.ID)]++
		if fr.Class == ubx.ClassNAV {
			d.navMessage(fr)
		}
		if ev, ok := decodeUBX(fr); ok {
			d.events = append(d.events, ev)
		}
		if h, ok := decodeHealth(fr); ok {
			d.events = append(d.events, h)
		}
		if t, ok := decodeINF(fr); ok {
			d.events = append(d.events, t)
		}
		if v, ok := decodeVersion(fr); ok {
			d.events = append(d.events, v)
		}
	}
}

func (d *Decoder) sentence(fr *Frame) {
	s := &d.s
	splitSentence(fr.Data, s)
	d.Stats.ByName[string(s.name)]++
	if string(s.name) == "PUBX" {
		if li, ok := decodePUBX04(s, fr.At); ok {
			d.events = append(d.events, li)
		}
		return
	}
	if s.talker == "" {
		if len(s.name) == 5 && s.name[0] != 'P' {
			d.Stats.OtherTalker++
		}
		return
	}
	ts := timeSentence{typ: s.typ, talker: s.talker, sats: -1}
	switch s.typ {
	case "RMC":
		decodeRMC(s, &ts)
	case "GGA":
		decodeGGA(s, &ts)
	case "GNS":
		decodeGNS(s, &ts)
	case "ZDA":
		decodeZDA(s, &ts)
	case "GLL":
		decodeGLL(s, &ts)
	case "GSA":
		fix, used := decodeGSA(s)
		if fix != FixUnknown {
			d.lastFix, d.lastFixAt = fix, fr.At
		}
		if d.ep.active {
			d.ep.gsaUsed += used
			if fix > d.ep.gsaFix {
				d.ep.gsaFix = fix
			}
		}
		return
	case "GSV":
		if n, _, ok := decodeGSV(s); ok {
			d.inView[s.talker] = n
		}
		return
	case "TXT":
		if t, ok := decodeTXT(s, fr.At); ok {
			d.events = append(d.events, t)
		}
		return
	default:
		return
	}
	if len(s.field(0)) == 0 && (s.typ != "GLL" || len(s.field(4)) == 0) {
		d.Stats.NoTime++
		return
	}
	if !ts.tod.ok {
		d.Stats.BadTime++
		return
	}
	d.timeSentence(&ts, fr.At)
}

// sameBurst: a UBX navigation epoch that began arriving this long before
// the open epoch belongs to an earlier burst of the receiver's output
// (receivers send an epoch's messages in one burst a second).
const sameBurst = 500 * time.Millisecond

func (d *Decoder) timeSentence(ts *timeSentence, at time.Time) {
	first := ts.firstAt
	if first.IsZero() {
		first = at
	}
	ubx := ts.typ == "UBX"
	e := &d.ep
	if e.active && !ubx && e.rejectTod.ok && ts.tod == e.rejectTod {
		return // more of the NMEA side of a conflict already counted
	}
	if !ubx && d.nav.active && !d.nav.nmeaTod.ok {
		d.nav.nmeaTod = ts.tod // NMEA inside a UBX navigation epoch: the same epoch
	}
	if ubx && ts.nmeaTod.ok && ts.nmeaTod != ts.tod {
		// UBX and NMEA of one navigation epoch name different seconds:
		// an error in the receiver (a default leap second count in NMEA
		// before the almanac, a firmware bug), never averaged. UBX's
		// stands; the NMEA side is refused.
		d.Stats.Conflicts++
		u, n := ts.tod, ts.nmeaTod
		conflict := fmt.Sprintf("UBX names %02d:%02d:%02d, NMEA %02d:%02d:%02d", u.h, u.m, u.s, n.h, n.m, n.s)
		if e.active && e.tod == n && e.types&typeBit("UBX") == 0 {
			// The open epoch is that NMEA's: start it again from UBX.
			*e = epoch{active: true, tod: ts.tod, talker: ts.talker, sentence: ts.typ, sats: -1, firstAt: e.firstAt}
		} else if e.active && e.tod != ts.tod {
			d.close(at)
		}
		if !e.active {
			d.ep = epoch{active: true, tod: ts.tod, talker: ts.talker, sentence: ts.typ, sats: -1, firstAt: first}
		}
		e.conflict, e.rejectTod = conflict, n
	}
	if e.active && ubx && ts.tod != e.tod && first.Before(e.firstAt.Add(-sameBurst)) {
		// A navigation epoch closed only after the next burst began: its
		// second's report is out already.
		d.Stats.Late++
		return
	}
	if e.active && ts.tod != e.tod {
		d.close(at)
	}
	if !e.active {
		if d.closed.ok && ts.tod == d.closed {
			// A sentence of the epoch already reported (it closed early):
			// keep its date, and wait for its type next time.
			d.Stats.Late++
			d.learned |= typeBit(ts.typ)
			if ts.date.ok {
				d.lastDate, d.lastDateTOD, d.lastDateFrom = ts.date, ts.tod.ns(), ts.typ
			}
			return
		}
		d.ep = epoch{active: true, tod: ts.tod, talker: ts.talker, sentence: ts.typ, sats: -1, firstAt: first}
	}
	if ubx {
		e.ubxVote, e.ubxFix, e.tAcc = ts.vote, ts.fix, ts.tAcc
		if ts.sats >= 0 {
			e.sats = ts.sats
		}
	}
	e.types |= typeBit(ts.typ)
	if !ubx {
		e.vote = combine(e.vote, ts.vote)
	}
	if ts.date.ok {
		if c := e.addDate(ts.date, ts.typ); c != "" {
			d.Stats.Conflicts++
			e.conflict = c
		}
	}
	if ts.sats >= 0 && e.sats < 0 {
		e.sats = ts.sats
	}
	// End the epoch as soon as every type a complete epoch had is in, so
	// its report is not held until the next burst. Without any date yet,
	// wait: the date-bearing sentence may come later in this burst (a
	// receiver that sent RMC without a time before its fix taught us an
	// epoch without RMC).
	// The same when the validity still hangs on a GSA to come (a fix
	// claimed with zero satellites).
	if d.learned != 0 && e.types&d.learned == d.learned && (e.date.ok || d.lastDate.ok) && !e.needsGSA() {
		d.close(at)
	}
}

// addDate merges a sentence's date into the epoch's. ZDA states the year
// in full and RMC only its last two digits (expanded by a pivot): where
// they agree on the day, ZDA's year stands. Any other disagreement means
// the receiver contradicts itself, and the epoch's date is not believed.
// UBX's date (from the GPS week, or stated in full) stands over NMEA's:
// a disagreement between the two is returned as a conflict.
func (e *epoch) addDate(d civil, from string) (conflict string) {
	ubx, hadUBX := from == "UBX", e.dateFrom == "UBX"
	switch {
	case !e.date.ok:
		e.date, e.dateFrom = d, from
	case e.date == d:
		if ubx {
			e.dateFrom = from
		}
	case ubx != hadUBX:
		conflict = fmt.Sprintf("UBX dates the epoch %04d-%02d-%02d, NMEA %04d-%02d-%02d", e.date.y, e.date.m, e.date.d, d.y, d.m, d.d)
		if ubx {
			conflict = fmt.Sprintf("UBX dates the epoch %04d-%02d-%02d, NMEA %04d-%02d-%02d", d.y, d.m, d.d, e.date.y, e.date.m, e.date.d)
			e.date, e.dateFrom = d, from
		}
	case d.m == e.date.m && d.d == e.date.d && d.y%100 == e.date.y%100 && (from == "ZDA") != (e.dateFrom == "ZDA"):
		if from == "ZDA" {
			e.date, e.dateFrom = d, from
		}
	default:
		e.dateConflict = true
	}
	return conflict
}

// needsGSA: the epoch claims a fix with zero satellites, which only a GSA
// listing the satellites used can confirm.
func (e *epoch) needsGSA() bool {
	return e.types&typeBit("UBX") == 0 && e.vote == voteValid && e.sats == 0 && (e.gsaFix < Fix2D || e.gsaUsed == 0)
}

// plausible checks a receiver's date against the date floor (the build
// date or gnss.date_floor: no real date is earlier). GPS broadcasts the
// week number modulo 1024 (IS-GPS-200 20.3.3.3.1.1), so a receiver whose
// firmware pivot is older than the floor reports dates exactly 1024
// weeks early, and that one step is corrected. A date that needs more
// than one step (1980-01-06 or 1999 from a receiver that has no almanac
// yet: corrected three times it became 2038) or that lies 1024 weeks or
// more past the floor (2099) is no rollover, and no time.
func (d *Decoder) plausible(t time.Time) (time.Time, bool, string) {
	floor := d.opt.DateFloor
	if floor.IsZero() {
		return t, false, ""
	}
	day := func(t time.Time) string { return t.Format("2006-01-02") }
	switch {
	case !t.Before(floor.Add(weeks1024)):
		return t, false, fmt.Sprintf("date %s is 1024 weeks or more after the date floor %s", day(t), day(floor))
	case !t.Before(floor):
		return t, false, ""
	case !t.Add(weeks1024).Before(floor):
		return t.Add(weeks1024), true, ""
	}
	return t, false, fmt.Sprintf("date %s is more than one GPS week rollover (1024 weeks) before the date floor %s", day(t), day(floor))
}

// close reports the open epoch.
func (d *Decoder) close(at time.Time) {
	e := &d.ep
	ubx := e.types&typeBit("UBX") != 0
	valid := e.vote == voteValid
	if ubx {
		valid = e.ubxVote == voteValid // UBX, where both speak
	}
	if e.needsGSA() {
		// A fix from zero satellites is dead reckoning or a stale solution
		// (Hemisphere sends GGA quality 1 with 00 satellites), unless GSA
		// lists the satellites (Garmin 25LP leaves GGA's count at 00).
		valid = false
	}
	r := Report{
		Valid: valid, Sats: e.sats, InView: -1, TAcc: e.tAcc, Conflict: e.conflict,
		Talker: e.talker, Sentence: e.sentence, FirstAt: e.firstAt, At: at,
	}
	date := e.date
	if date.ok {
		r.DateFrom = e.dateFrom
		d.lastDate, d.lastDateTOD, d.lastDateFrom = e.date, e.tod.ns(), e.dateFrom
	} else if d.lastDate.ok {
		// Carry the date of an earlier RMC/ZDA across midnight: a time of
		// day more than 12 h before the dated one is the next day, more
		// than 12 h after it the previous day.
		date = d.lastDate
		switch diff := e.tod.ns() - d.lastDateTOD; {
		case diff < -12*3600e9:
			date = civilOf(date.midnight().AddDate(0, 0, 1))
		case diff > 12*3600e9:
			date = civilOf(date.midnight().AddDate(0, 0, -1))
		}
		r.DateFrom = "earlier " + d.lastDateFrom
	}
	if date.ok {
		r.HasDate = true
		r.Leap60 = e.tod.s == 60
		r.Time = date.midnight().Add(time.Duration(e.tod.ns()))
		r.Time, r.Rollover, r.Implausible = d.plausible(r.Time)
		if e.dateConflict {
			r.Implausible = "the epoch's sentences name different dates"
		}
		if r.Implausible != "" {
			r.Valid = false
			d.Stats.Implausible++
		}
	}
	if r.Sats <= 0 && e.gsaUsed > 0 {
		r.Sats = e.gsaUsed
	}
	switch {
	case ubx && e.ubxFix != FixUnknown:
		r.Fix = e.ubxFix
	case e.gsaFix != FixUnknown:
		r.Fix = e.gsaFix
	case d.lastFix != FixUnknown && at.Sub(d.lastFixAt) < 2*time.Second:
		r.Fix = d.lastFix
	case !r.Valid:
		r.Fix = FixNone
	}
	if len(d.inView) > 0 {
		r.InView = 0
		for _, n := range d.inView {
			r.InView += n
		}
	}
	d.Stats.Reports++
	if r.Valid {
		d.Stats.ValidReports++
	}
	if !r.HasDate {
		d.Stats.NoDate++
	}
	if r.Rollover {
		d.Stats.Rollovers++
	}
	d.learned = e.types
	d.closed = e.tod
	*e = epoch{}
	d.events = append(d.events, r)
}
