package gnss

import "time"

// Talkers decoded (NMEA 0183 v4.11 talker identifiers): GP GPS, GL GLONASS,
// GA Galileo, GB and BD BeiDou (4.11 and the older Chinese usage), GQ QZSS,
// GI NavIC (IRNSS), GN a combined multi-constellation solution.
var talkers = map[[2]byte]string{
	{'G', 'P'}: "GP", {'G', 'N'}: "GN", {'G', 'L'}: "GL", {'G', 'A'}: "GA",
	{'G', 'B'}: "GB", {'B', 'D'}: "BD", {'G', 'Q'}: "GQ", {'G', 'I'}: "GI",
}

// Sentence types with a meaning here. Others are counted and ignored.
var sentenceTypes = map[[3]byte]string{
	{'R', 'M', 'C'}: "RMC", {'G', 'G', 'A'}: "GGA", {'G', 'N', 'S'}: "GNS",
	{'Z', 'D', 'A'}: "ZDA", {'G', 'S', 'A'}: "GSA", {'G', 'S', 'V'}: "GSV",
	{'T', 'X', 'T'}: "TXT", {'G', 'L', 'L'}: "GLL",
}

const maxFields = 40

// sentence is one checked NMEA sentence split into fields; the slices point
// into the framer's buffer.
type sentence struct {
	talker string // "" for proprietary or unknown talkers
	typ    string // "RMC"...; "" when not decoded here
	name   []byte // the address field as sent ("GPRMC", "PUBX")
	f      [maxFields][]byte
	n      int
}

// field returns field i after the address (0-based), or nil.
func (s *sentence) field(i int) []byte {
	if i < s.n {
		return s.f[i]
	}
	return nil
}

func splitSentence(body []byte, s *sentence) {
	s.n = 0
	start := 0
	first := true
	for i := 0; i <= len(body); i++ {
		if i < len(body) && body[i] != ',' {
			continue
		}
		part := body[start:i]
		start = i + 1
		if first {
			s.name = part
			first = false
			continue
		}
		if s.n < maxFields {
			s.f[s.n] = part
			s.n++
		}
	}
	s.talker, s.typ = "", ""
	if len(s.name) == 5 && s.name[0] != 'P' {
		s.talker = talkers[[2]byte{s.name[0], s.name[1]}]
		if s.talker != "" {
			s.typ = sentenceTypes[[3]byte{s.name[2], s.name[3], s.name[4]}]
		}
	}
}

// tod is a UTC time of day as a receiver sends it, hhmmss[.f...].
type tod struct {
	ok    bool
	h, m  int
	s     int // 0..60; 60 only at 23:59:60, a leap second
	nanos int
}

// ns is nanoseconds since midnight (a leap second counts past 86399).
func (t tod) ns() int64 {
	return (int64(t.h)*3600+int64(t.m)*60+int64(t.s))*1e9 + int64(t.nanos)
}

func digits(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// parseTOD reads hhmmss with an optional fraction of any length up to
// nanoseconds. A leap second (second 60) is accepted only at 23:59:60.
func parseTOD(b []byte) tod {
	if len(b) < 6 {
		return tod{}
	}
	h, ok1 := digits(b[0:2])
	m, ok2 := digits(b[2:4])
	s, ok3 := digits(b[4:6])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 60 || (s == 60 && (h != 23 || m != 59)) {
		return tod{}
	}
	t := tod{ok: true, h: h, m: m, s: s}
	if len(b) > 6 {
		if b[6] != '.' {
			return tod{}
		}
		frac := b[7:]
		if len(frac) > 9 {
			frac = frac[:9]
		}
		if len(frac) > 0 {
			v, ok := digits(frac)
			if !ok {
				return tod{}
			}
			for i := len(frac); i < 9; i++ {
				v *= 10
			}
			t.nanos = v
		}
	}
	return t
}

// civil is a calendar date.
type civil struct {
	ok   bool
	y, d int
	m    time.Month
}

func (c civil) midnight() time.Time { return time.Date(c.y, c.m, c.d, 0, 0, 0, 0, time.UTC) }

func civilOf(t time.Time) civil {
	y, m, d := t.Date()
	return civil{ok: true, y: y, m: m, d: d}
}

func validDate(y int, m time.Month, d int) bool {
	if m < 1 || m > 12 || d < 1 || y < 1980 || y > 2200 {
		return false
	}
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Day() == d
}

// expandYear turns an RMC two-digit year into a full one. GPS time starts in
// 1980, so 80..99 are 1980..1999 and 00..79 are 2000..2079; a receiver whose
// week counter rolled over shows a date 1024 weeks early, which the
// rollover correction (not this pivot) repairs.
func expandYear(yy int) int {
	if yy >= 80 {
		return 1900 + yy
	}
	return 2000 + yy
}

// parseDDMMYY reads an RMC date field.
func parseDDMMYY(b []byte) civil {
	if len(b) != 6 {
		return civil{}
	}
	d, ok1 := digits(b[0:2])
	m, ok2 := digits(b[2:4])
	yy, ok3 := digits(b[4:6])
	y := expandYear(yy)
	if !ok1 || !ok2 || !ok3 || !validDate(y, time.Month(m), d) {
		return civil{}
	}
	return civil{ok: true, y: y, m: time.Month(m), d: d}
}

// vote is a sentence's opinion on whether the receiver's time is valid.
type vote int8

const (
	noVote vote = iota
	voteValid
	voteInvalid
)

// timeSentence is what a time-bearing sentence (RMC, GGA, GNS, ZDA, GLL)
// contributes to its epoch.
type timeSentence struct {
	typ, talker string
	tod         tod
	date        civil
	vote        vote
	sats        int // satellites used, -1 unknown
	// UBX only: the fix type, the receiver's time accuracy estimate, and
	// the arrival of the epoch's first NAV message.
	fix     FixMode
	tAcc    time.Duration
	firstAt time.Time
	// nmeaTod is the first NMEA time that arrived inside the navigation
	// epoch (between its first and last NAV message).
	nmeaTod tod
}

// modeVote reads an NMEA 2.3+ FAA mode indicator. A (autonomous), D
// (differential), P (precise), R (RTK fixed), F (RTK float) are real fixes;
// N (not valid), E (estimated/dead reckoning), M (manual input) and S
// (simulator) are not a time a grandmaster may follow.
func modeVote(c byte) vote {
	switch c {
	case 'A', 'D', 'P', 'R', 'F':
		return voteValid
	case 'N', 'E', 'M', 'S':
		return voteInvalid
	}
	return noVote
}

func combine(a, b vote) vote {
	if a == voteInvalid || b == voteInvalid {
		return voteInvalid
	}
	if a == voteValid || b == voteValid {
		return voteValid
	}
	return noVote
}

func statusVote(f []byte) vote {
	if len(f) != 1 {
		return noVote
	}
	switch f[0] {
	case 'A':
		return voteValid
	case 'V':
		return voteInvalid
	}
	return noVote
}

// decodeRMC: hhmmss.ss,A,llll.ll,a,yyyyy.yy,a,x.x,x.x,ddmmyy,x.x,a[,m[,s]]
// (NMEA 0183 RMC; field 11 mode since 2.3).
func decodeRMC(s *sentence, ts *timeSentence) {
	ts.tod = parseTOD(s.field(0))
	ts.vote = statusVote(s.field(1))
	ts.date = parseDDMMYY(s.field(8))
	if m := s.field(11); len(m) == 1 {
		ts.vote = combine(ts.vote, modeVote(m[0]))
	}
	// Field 12 (NMEA 4.10 navigational status S/C/U/V) is not a validity
	// flag: u-blox and Quectel send V, "status not provided", with a fix.
}

// decodeGGA: hhmmss.ss,llll.ll,a,yyyyy.yy,a,q,nn,... Quality 1-5 are fixes
// (GPS, DGPS, PPS, RTK, float RTK); 0 is none, 6 estimated, 7 manual, 8
// simulation.
func decodeGGA(s *sentence, ts *timeSentence) {
	ts.tod = parseTOD(s.field(0))
	if q, ok := digits(s.field(5)); ok {
		if q >= 1 && q <= 5 {
			ts.vote = voteValid
		} else {
			ts.vote = voteInvalid
		}
	}
	if n, ok := digits(s.field(6)); ok {
		ts.sats = n
	}
}

// decodeGNS: hhmmss.ss,llll.ll,a,yyyyy.yy,a,c--c,nn,... The mode field has
// one FAA indicator per constellation; any real fix makes the solution
// valid, all N makes it invalid.
func decodeGNS(s *sentence, ts *timeSentence) {
	ts.tod = parseTOD(s.field(0))
	mode := s.field(5)
	for _, c := range mode {
		if modeVote(c) == voteValid {
			ts.vote = voteValid
			break
		}
	}
	if ts.vote == noVote && len(mode) > 0 {
		ts.vote = voteInvalid
	}
	if n, ok := digits(s.field(6)); ok {
		ts.sats = n
	}
}

// decodeZDA: hhmmss.ss,dd,mm,yyyy,zh,zm. No validity of its own.
func decodeZDA(s *sentence, ts *timeSentence) {
	ts.tod = parseTOD(s.field(0))
	d, ok1 := digits(s.field(1))
	m, ok2 := digits(s.field(2))
	y, ok3 := digits(s.field(3))
	if ok1 && ok2 && ok3 && len(s.field(3)) == 4 && validDate(y, time.Month(m), d) {
		ts.date = civil{ok: true, y: y, m: time.Month(m), d: d}
	}
}

// decodeGLL: llll.ll,a,yyyyy.yy,a,hhmmss.ss,A[,m].
func decodeGLL(s *sentence, ts *timeSentence) {
	ts.tod = parseTOD(s.field(4))
	ts.vote = statusVote(s.field(5))
	if m := s.field(6); len(m) == 1 {
		ts.vote = combine(ts.vote, modeVote(m[0]))
	}
}

// gsa is what GSA says: the fix dimension and how many satellites are used.
// a,x,xx,xx,...(12 PRNs),p.p,h.h,v.v[,sys]
func decodeGSA(s *sentence) (fix FixMode, used int) {
	switch string(s.field(1)) {
	case "1":
		fix = FixNone
	case "2":
		fix = Fix2D
	case "3":
		fix = Fix3D
	}
	for i := 2; i < 14 && i < s.n; i++ {
		if len(s.f[i]) > 0 {
			used++
		}
	}
	return fix, used
}

// decodeGSV returns the satellites in view and whether this is the last
// sentence of its group: total,num,inview,(prn,elev,az,snr)*.
func decodeGSV(s *sentence) (inView int, last bool, ok bool) {
	total, ok1 := digits(s.field(0))
	num, ok2 := digits(s.field(1))
	n, ok3 := digits(s.field(2))
	if !ok1 || !ok2 || !ok3 {
		return 0, false, false
	}
	return n, num == total, true
}

// Text is a TXT sentence: the receiver telling the operator something
// (u-blox reports antenna status, firmware and errors this way).
type Text struct {
	Talker   string
	Severity int // 0 error, 1 warning, 2 notice, 7 user
	Text     string
	At       time.Time
}

func (Text) event() {}

func decodeTXT(s *sentence, at time.Time) (Text, bool) {
	sev, ok := digits(s.field(2))
	if !ok || s.n < 4 {
		return Text{}, false
	}
	return Text{Talker: s.talker, Severity: sev, Text: string(s.field(3)), At: at}, true
}

// decodePUBX04 reads u-blox's PUBX,04 (time of day and clock), the one
// NMEA-mode message that carries the receiver's leap second count (u-blox
// M8 receiver description, "PUBX,04"):
//
//	$PUBX,04,hhmmss.ss,ddmmyy,utcTow,utcWk,leapSec,clkBias,clkDrift,tpGran*cs
//
// leapSec is GPS-UTC in seconds, marked with a trailing 'D' while it is
// the firmware's default rather than received from the satellites: such a
// count is reported, not valid (CurrLSSource 0, as NAV-TIMELS says it).
func decodePUBX04(s *sentence, at time.Time) (LeapInfo, bool) {
	if string(s.field(0)) != "04" || s.n < 6 {
		return LeapInfo{}, false
	}
	f := s.field(5)
	def := len(f) > 0 && f[len(f)-1] == 'D'
	if def {
		f = f[:len(f)-1]
	}
	n, ok := digits(f)
	if !ok || n > 100 { // GPS-UTC has been 18 s since 2017; a hundred is nonsense
		return LeapInfo{}, false
	}
	li := LeapInfo{CurrLS: int8(n), CurrLSSource: pubxSatellites, CurrLSValid: !def, At: at}
	if def {
		li.CurrLSSource = 0
	}
	return li, true
}

// pubxSatellites is the CurrLSSource of a PUBX,04 count received from the
// satellites (PUBX,04 does not say which system: GPS, NAV-TIMELS's 2).
const pubxSatellites = 2
