package gnss

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sitegm/hw/gnss/ubx"
	"strings"
	"testing"
	"time"
)

// nmea wraps a sentence body with '$', its checksum and CR LF.
func nmea(body string) string {
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	return fmt.Sprintf("$%s*%02X\r\n", body, sum)
}

// ubxFrame builds a UBX frame with its Fletcher checksum.
func ubxFrame(class, id byte, payload []byte) []byte {
	f := []byte{0xB5, 0x62, class, id, byte(len(payload)), byte(len(payload) >> 8)}
	f = append(f, payload...)
	var a, b byte
	for _, x := range f[2:] {
		a += x
		b += a
	}
	return append(f, a, b)
}

func decodeAll(opt Options, chunks ...string) ([]Event, *Decoder) {
	d := NewDecoder(opt)
	var out []Event
	for _, c := range chunks {
		out = append(out, d.Feed([]byte(c), time.Time{})...)
	}
	out = append(out, d.Flush(time.Time{})...)
	return out, d
}

func reports(evs []Event, _ ...*Decoder) []Report {
	var rs []Report
	for _, e := range evs {
		if r, ok := e.(Report); ok {
			rs = append(rs, r)
		}
	}
	return rs
}

func TestRMCGGAEpoch(t *testing.T) {
	in := nmea("GNRMC,171926.00,A,4404.14063,N,12118.85478,W,0.117,,180315,,,A") +
		nmea("GNGGA,171926.00,4404.14063,N,12118.85478,W,1,12,0.91,1147.2,M,-21.3,M,,") +
		nmea("GNGSA,A,3,01,11,31,14,22,32,04,25,03,,,,1.56,0.91,1.27") +
		nmea("GPGSV,1,1,04,01,53,280,36,03,29,301,24,04,55,223,37,08,38,166,16")
	rs := reports(decodeAll(Options{}, in))
	if len(rs) != 1 {
		t.Fatalf("want 1 report, got %d", len(rs))
	}
	r := rs[0]
	want := time.Date(2015, 3, 18, 17, 19, 26, 0, time.UTC)
	if !r.Time.Equal(want) || !r.Valid || r.Sats != 12 || r.Talker != "GN" || r.Sentence != "RMC" ||
		r.DateFrom != "RMC" || r.Fix != Fix3D || r.InView != 4 {
		t.Errorf("report %+v", r)
	}
}

func TestValidityVotes(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		valid bool
	}{
		{"RMC V", nmea("GPRMC,120000,V,,,,,,,010120,,,N"), false},
		{"RMC A mode N", nmea("GPRMC,120000,A,,,,,,,010120,,,N"), false},
		{"RMC A simulator", nmea("GPRMC,120000,A,,,,,,,010120,,,S"), false},
		{"RMC A navstatus V", nmea("GPRMC,120000,A,,,,,,,010120,,,A,V"), true},
		{"RMC A, GGA 0", nmea("GPRMC,120000,A,,,,,,,010120,,,A") + nmea("GPGGA,120000,,,,,0,00,,,M,,M,,"), false},
		{"GGA 6 estimated", nmea("GPZDA,120000,01,01,2020,00,00") + nmea("GPGGA,120000,,,,,6,05,,,M,,M,,"), false},
		{"GGA 1 zero sats", nmea("GPZDA,120000,01,01,2020,00,00") + nmea("GPGGA,120000,,,,,1,00,,,M,,M,,"), false},
		{"GGA 1 zero sats, GSA 2D", nmea("GPZDA,120000,01,01,2020,00,00") + nmea("GPGGA,120000,,,,,1,00,,,M,,M,,") +
			nmea("GPGSA,A,2,01,03,,14,,,,,,,,,3.1,3.1,"), true},
		{"GNS AAN", nmea("GNZDA,120000.00,01,01,2020,00,00") + nmea("GNGNS,120000.00,,,,,AAN,08,1.3,,,,,V"), true},
		{"GNS NNN", nmea("GNZDA,120000.00,01,01,2020,00,00") + nmea("GNGNS,120000.00,,,,,NNN,00,,,,,,V"), false},
		{"ZDA alone", nmea("GPZDA,120000,01,01,2020,00,00"), false},
		{"GLL A", nmea("GPZDA,120000,01,01,2020,00,00") + nmea("GPGLL,4808.9977,N,01135.0800,E,120000,A,A"), true},
	}
	for _, c := range cases {
		rs := reports(decodeAll(Options{}, c.in))
		if len(rs) != 1 || rs[0].Valid != c.valid || !rs[0].HasDate {
			t.Errorf("%s: %+v, want valid=%v", c.name, rs, c.valid)
		}
	}
}

func TestLowerCaseChecksumAndLongSentence(t *testing.T) {
	body := "GPRMC,120000.00,A,4404.14063,N,12118.85478,W,0.117,,180315,,,A"
	var sum byte
	for i := 0; i < len(body); i++ {
		sum ^= body[i]
	}
	lower := fmt.Sprintf("$%s*%02x\r\n", body, sum)
	long := nmea("GPTXT,01,01,02," + strings.Repeat("x", 110)) // 130+ characters
	evs, d := decodeAll(Options{}, lower+long)
	if len(reports(evs)) != 1 {
		t.Errorf("lower-case checksum not accepted")
	}
	var texts int
	for _, e := range evs {
		if _, ok := e.(Text); ok {
			texts++
		}
	}
	if texts != 1 || d.FramerStats().Skipped != 0 {
		t.Errorf("long TXT: texts=%d skipped=%d", texts, d.FramerStats().Skipped)
	}
}

func TestRejectsAreCounted(t *testing.T) {
	good := nmea("GPRMC,120000,A,,,,,,,010120,,,A")
	bad := strings.Replace(good, "*", "*F", 1)[:len(good)-2] + "\r\n" // wrong checksum
	noSum := "$GPRMC,120001,A,,,,,,,010120,,,A\r\n"
	tooLong := "$GPTXT," + strings.Repeat("y", 300) + "\r\n"
	cut := "$GPGGA,1200" // interrupted by the next '$'
	binary := "$GPGSV,\x01\x02\x03\r\n"
	evs, d := decodeAll(Options{}, good+bad+noSum+tooLong+cut+good+binary+"junk\r\n")
	fs := d.FramerStats()
	if fs.NMEA != 2 || fs.Rejects[RejectNMEAChecksum] == 0 || fs.Rejects[RejectNMEANoSum] == 0 ||
		fs.Rejects[RejectNMEATooLong] == 0 || fs.Rejects[RejectNMEATruncated] == 0 ||
		fs.Rejects[RejectNMEABadChar] == 0 || fs.Rejects[RejectNoise] != 4+3 {
		t.Errorf("stats %+v", fs)
	}
	// Both good copies name 12:00:00: one epoch.
	if rs := reports(evs); len(rs) != 1 || !rs[0].Valid {
		t.Errorf("reports %+v", rs)
	}
}

func TestResyncBehindFalseUBXSync(t *testing.T) {
	// 0xB5 0x62 then a valid class and a length that swallows the next
	// sentence: the UBX checksum fails and the sentence inside is rescanned.
	s := nmea("GPRMC,120000,A,,,,,,,010120,,,A")
	in := []byte{0xB5, 0x62, 0x01, 0x07, byte(len(s) - 4), 0x00}
	in = append(in, s...)
	in = append(in, []byte(nmea("GPRMC,120001,A,,,,,,,010120,,,A"))...)
	evs, d := decodeAll(Options{}, string(in))
	if rs := reports(evs); len(rs) != 2 {
		t.Errorf("want 2 reports after resync, got %d (%+v)", len(rs), d.FramerStats())
	}
	if d.FramerStats().Rejects[RejectUBXChecksum] != 1 {
		t.Errorf("stats %+v", d.FramerStats())
	}
}

func TestSiRFFramesSkippedCleanly(t *testing.T) {
	payload := []byte{0x29, '$', 'G', 'P', 0x00, 0x10}
	sum := 0
	for _, b := range payload {
		sum += int(b)
	}
	fr := []byte{0xA0, 0xA2, 0, byte(len(payload))}
	fr = append(fr, payload...)
	fr = append(fr, byte(sum>>8&0x7f), byte(sum), 0xB0, 0xB3)
	evs, d := decodeAll(Options{}, string(fr)+nmea("GPRMC,120000,A,,,,,,,010120,,,A"))
	if d.FramerStats().SiRF != 1 || d.FramerStats().Skipped != 0 || len(reports(evs)) != 1 {
		t.Errorf("stats %+v", d.FramerStats())
	}
}

func TestLeapSecond(t *testing.T) {
	in := nmea("GPRMC,235959,A,,,,,,,311216,,,A") + nmea("GPRMC,235960,A,,,,,,,311216,,,A") +
		nmea("GPRMC,000000,A,,,,,,,010117,,,A")
	rs := reports(decodeAll(Options{}, in))
	if len(rs) != 3 {
		t.Fatalf("got %d reports", len(rs))
	}
	if !rs[1].Leap60 || rs[1].UTCString() != "2016-12-31T23:59:60Z" || !rs[1].Time.Equal(rs[2].Time) || rs[2].Leap60 {
		t.Errorf("leap second: %+v / %+v", rs[1], rs[2])
	}
	if got := (Report{HasDate: true, Leap60: true, Time: time.Date(2017, 1, 1, 0, 0, 0, 250e6, time.UTC)}).UTCString(); got != "2016-12-31T23:59:60.25Z" {
		t.Errorf("leap fraction: %s", got)
	}
	// A second 60 anywhere but 23:59 is a bad time field.
	_, d := decodeAll(Options{}, nmea("GPRMC,125960,A,,,,,,,311216,,,A"))
	if d.Stats.BadTime != 1 {
		t.Errorf("12:59:60 accepted")
	}
}

func TestTwoDigitYears(t *testing.T) {
	for yy, want := range map[string]int{"80": 1980, "99": 1999, "00": 2000, "26": 2026, "79": 2079} {
		rs := reports(decodeAll(Options{}, nmea("GPRMC,120000,A,,,,,,,0101"+yy+",,,A")))
		if len(rs) != 1 || rs[0].Time.Year() != want {
			t.Errorf("yy=%s: %+v", yy, rs)
		}
	}
}

func TestDateCarriedAcrossMidnight(t *testing.T) {
	in := nmea("GPRMC,235959.50,A,,,,,,,311225,,,A") + nmea("GPGGA,235959.50,,,,,1,08,,,M,,M,,") +
		nmea("GPGGA,000000.50,,,,,1,08,,,M,,M,,") + nmea("GPGGA,000001.50,,,,,1,08,,,M,,M,,")
	rs := reports(decodeAll(Options{}, in))
	if len(rs) != 3 {
		t.Fatalf("got %d", len(rs))
	}
	if rs[1].UTCString() != "2026-01-01T00:00:00.5Z" || rs[1].DateFrom != "earlier RMC" || rs[2].UTCString() != "2026-01-01T00:00:01.5Z" {
		t.Errorf("carried: %s %s %s", rs[1].UTCString(), rs[1].DateFrom, rs[2].UTCString())
	}
	// Without any date, the epoch is reported undated.
	rs = reports(decodeAll(Options{}, nmea("GPGGA,120000,,,,,1,08,,,M,,M,,")))
	if len(rs) != 1 || rs[0].HasDate || rs[0].UTCString() != "" {
		t.Errorf("undated: %+v", rs)
	}
}

func TestWeekRollover(t *testing.T) {
	// A receiver with a stale week epoch reports 2019-04-06 as 1999-08-21.
	floor := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	rs := reports(decodeAll(Options{DateFloor: floor}, nmea("GPRMC,235724.02,A,,,,,,,210899,,,A")))
	want := time.Date(2019, 4, 6, 23, 57, 24, 20e6, time.UTC)
	if len(rs) != 1 || !rs[0].Time.Equal(want) || !rs[0].Rollover {
		t.Errorf("rollover: %+v, want %v", rs, want)
	}
	// Without a floor, no correction.
	rs = reports(decodeAll(Options{}, nmea("GPRMC,235724.02,A,,,,,,,210899,,,A")))
	if rs[0].Rollover || rs[0].Time.Year() != 1999 {
		t.Errorf("corrected without a floor: %+v", rs)
	}
}

// gpsd's regression run corrected neo-m8n's correct 2015 dates by 1024
// weeks, which shows its date floor was later than 2015: with a 2026 floor
// ours does exactly the same, second for second.
func TestRolloverMatchesGpsdOnOldCapture(t *testing.T) {
	log := filepath.Join(capturesDir, "neo-m8n.log")
	rs, _ := decodeFile(t, log, Options{DateFloor: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	theirs := gpsdSeconds(t, log+".chk", 0)
	n := 0
	for _, r := range rs {
		if r.Valid && r.HasDate && r.Time.Unix() != time.Date(2015, 3, 18, 17, 19, 48, 0, time.UTC).Add(weeks1024).Unix() {
			n++
			if !r.Rollover || !theirs[r.Time.Unix()] {
				t.Errorf("%s: rollover=%v, in gpsd=%v", r.UTCString(), r.Rollover, theirs[r.Time.Unix()])
			}
		}
	}
	if n == 0 {
		t.Error("no reports")
	}
}

func TestEpochClosesEarlyOnceLearned(t *testing.T) {
	d := NewDecoder(Options{})
	t0 := time.Unix(1000, 0)
	burst := func(s int) string {
		ts := fmt.Sprintf("1200%02d", s)
		return nmea("GPRMC,"+ts+",A,,,,,,,010120,,,A") + nmea("GPGGA,"+ts+",,,,,1,08,,,M,,M,,") +
			nmea("GPGSA,A,3,01,02,03,04,,,,,,,,,2.0,1.0,1.5")
	}
	// First burst: the epoch stays open until the next one starts.
	if rs := reports(d.Feed([]byte(burst(0)), t0)); len(rs) != 0 {
		t.Fatalf("first epoch closed before its end was known")
	}
	// Second burst: closes the first when it starts, and itself as soon as
	// its GGA arrives (RMC and GGA make a complete epoch).
	rs := reports(d.Feed([]byte(burst(1)), t0.Add(time.Second)))
	if len(rs) != 2 || rs[1].Time.Second() != 1 {
		t.Fatalf("got %+v", rs)
	}
	// An idle line closes an open epoch (Tick), with no early close learned.
	d2 := NewDecoder(Options{})
	d2.Feed([]byte(burst(0)), t0)
	if len(d2.Tick(t0.Add(100*time.Millisecond))) != 0 {
		t.Error("closed before the idle time")
	}
	if rs := reports(d2.Tick(t0.Add(400 * time.Millisecond))); len(rs) != 1 || rs[0].At != t0.Add(400*time.Millisecond) {
		t.Errorf("idle close: %+v", rs)
	}
}

func TestUBXTimeMessages(t *testing.T) {
	le := binary.LittleEndian
	tp := make([]byte, 16)
	le.PutUint32(tp[0:], 345600000)
	le.PutUint32(tp[4:], 1<<31)
	qerr := int32(-1234)
	le.PutUint32(tp[8:], uint32(qerr))
	le.PutUint16(tp[12:], 2300)
	tp[14] = 0x03
	ls := make([]byte, 24)
	ls[8], ls[9], ls[10], ls[11] = 2, 18, 2, 1
	le.PutUint32(ls[12:], 86400)
	le.PutUint16(ls[16:], 2400)
	le.PutUint16(ls[18:], 7)
	ls[23] = 3
	tu := make([]byte, 20)
	le.PutUint32(tu[4:], 25)
	nano := int32(-500)
	le.PutUint32(tu[8:], uint32(nano))
	le.PutUint16(tu[12:], 2016)
	tu[14], tu[15], tu[16], tu[17], tu[18], tu[19] = 12, 31, 23, 59, 60, 0x07
	var in []byte
	in = append(in, ubxFrame(0x0D, 0x01, tp)...)
	in = append(in, ubxFrame(0x01, 0x26, ls)...)
	in = append(in, ubxFrame(0x01, 0x21, tu)...)
	in = append(in, ubxFrame(0x01, 0x07, make([]byte, 92))...) // NAV-PVT without a valid time: no time from it
	evs, d := decodeAll(Options{}, string(in))
	if len(evs) != 3 || d.FramerStats().UBX != 4 {
		t.Fatalf("events %+v stats %+v", evs, d.FramerStats())
	}
	p := evs[0].(TimePulse)
	if p.TowMS != 345600000 || p.QErr != -1234 || p.Week != 2300 || !p.TimeBaseUTC || !p.UTCValid || p.QErrInvalid {
		t.Errorf("TIM-TP %+v", p)
	}
	l := evs[1].(LeapInfo)
	if l.CurrLS != 18 || l.LSChange != 1 || l.TimeToLSEvent != 86400 || !l.CurrLSValid || !l.TimeToValid || l.DateWeek != 2400 {
		t.Errorf("NAV-TIMELS %+v", l)
	}
	// NAV-TIMEUTC names the inserted second; NAV-PVT's fix type 0 says
	// there is no fix, so the epoch is dated but not valid.
	u := evs[2].(Report)
	if !u.Leap60 || u.Valid || u.TAcc != 25 || u.UTCString() != "2016-12-31T23:59:60Z" || u.Fix != FixNone {
		t.Errorf("NAV-TIMEUTC epoch %+v %s", u, u.UTCString())
	}
}

// BenchmarkDecode measures the decoder on a real capture; a receiver sends
// a few hundred bytes a second, so this only guards against a pathological
// slowdown.
func BenchmarkDecode(b *testing.B) {
	data := []byte(strings.Repeat(nmea("GNRMC,171926.00,A,4404.14063,N,12118.85478,W,0.117,,180315,,,A")+
		nmea("GNGGA,171926.00,4404.14063,N,12118.85478,W,1,12,0.91,1147.2,M,-21.3,M,,"), 100))
	d := NewDecoder(Options{})
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		d.Feed(data, time.Time{})
	}
}

// Issue 11 item 8: a receiver reporting 1980 or 1999 from power-on (no
// almanac) or 2099 is not "rollover-corrected" into a time: its reports
// are invalid with the reason; one real rollover is still corrected.
func TestImplausibleDates(t *testing.T) {
	floor := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name, in string
		valid    bool
		want     string // the served date when valid
	}{
		{"gps epoch", nmea("GPRMC,000012.00,A,,,,,,,060180,,,A"), false, ""},
		{"1999 twice too early", nmea("GPRMC,120000.00,A,,,,,,,210899,,,A"), false, ""},
		{"2099 via ZDA", nmea("GPRMC,120000.00,A,,,,,,,010199,,,A") + nmea("GPZDA,120000.00,01,01,2099,00,00"), false, ""},
		{"2099 alone", nmea("GPZDA,120000.00,01,01,2099,00,00") + nmea("GPGGA,120000.00,,,,,1,08,,,M,,M,,"), false, ""},
		{"one rollover", nmea("GPRMC,120000.00,A,,,,,,,150407,,,A"), true, "2026-11-29"},
		{"today", nmea("GPRMC,120000.00,A,,,,,,,261126,,,A"), true, "2026-11-26"},
		{"ZDA states the century", nmea("GPRMC,120000.00,A,,,,,,,261126,,,A") + nmea("GPZDA,120000.00,26,11,2026,00,00"), true, "2026-11-26"},
		{"RMC and ZDA disagree", nmea("GPRMC,120000.00,A,,,,,,,261126,,,A") + nmea("GPZDA,120000.00,27,11,2026,00,00"), false, ""},
	} {
		d := NewDecoder(Options{DateFloor: floor})
		var rs []Report
		for _, e := range append(append([]Event{}, d.Feed([]byte(c.in), time.Unix(1, 0))...), d.Flush(time.Unix(2, 0))...) {
			if r, ok := e.(Report); ok {
				rs = append(rs, r)
			}
		}
		if len(rs) != 1 {
			t.Errorf("%s: %d reports", c.name, len(rs))
			continue
		}
		r := rs[0]
		if r.Valid != c.valid || (c.valid && r.Time.Format("2006-01-02") != c.want) || (!c.valid && r.Implausible == "") {
			t.Errorf("%s: valid %v time %s implausible %q", c.name, r.Valid, r.UTCString(), r.Implausible)
		}
		if !c.valid && d.Stats.Implausible != 1 {
			t.Errorf("%s: not counted", c.name)
		}
	}
}

// TestVersionDecoded: a MON-VER answer becomes a Version event with the
// module, firmware and protocol picked out of its extensions.
func TestVersionDecoded(t *testing.T) {
	p := make([]byte, 40+30*4)
	copy(p, "EXT CORE 1.00 (61ce84)")
	copy(p[30:], "00190000")
	for i, e := range []string{"ROM BASE 0x118B2060", "FWVER=TIM 2.20", "PROTVER=29.00", "MOD=ZED-F9T"} {
		copy(p[40+30*i:], e)
	}
	d := NewDecoder(Options{})
	var got []Version
	for _, ev := range d.Feed(ubx.Append(nil, ubx.ClassMON, ubx.MonVER, p), time.Now()) {
		if v, ok := ev.(Version); ok {
			got = append(got, v)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d Version events", len(got))
	}
	v := got[0]
	if v.Module != "ZED-F9T" || v.Firmware != "TIM 2.20" || v.Protocol != "29.00" || v.Hardware != "00190000" {
		t.Fatalf("decoded %+v", v)
	}
	if s := v.String(); s != "ZED-F9T firmware TIM 2.20 (hardware 00190000, software EXT CORE 1.00 (61ce84), protocol 29.00)" {
		t.Errorf("String: %s", s)
	}
	if _, ok := ParseMonVer(p[:41]); ok {
		t.Error("a payload with a partial extension decoded")
	}
}

// PUBX,04 carries the receiver's leap count in NMEA mode: from the
// satellites it is valid; marked 'D' (the firmware's default) it is
// reported, not valid; anything else is dropped.
func TestPUBX04LeapCount(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in         string
		ls         int8
		valid, any bool
	}{
		{string(AppendPUBX04(nil, at, 18, false)), 18, true, true},
		{string(AppendPUBX04(nil, at, 18, true)), 18, false, true},
		{nmea("PUBX,04,120000.00,061226,475200.00,2448,x18,0,0.000,21"), 0, false, false},
		{nmea("PUBX,04,120000.00,061226"), 0, false, false},
		{nmea("PUBX,00,120000.00,4717.11,N"), 0, false, false}, // another PUBX
	} {
		d := NewDecoder(Options{})
		var got []LeapInfo
		for _, e := range d.Feed([]byte(c.in), at) {
			if li, ok := e.(LeapInfo); ok {
				got = append(got, li)
			}
		}
		if !c.any {
			if len(got) != 0 {
				t.Errorf("%q: %+v", c.in, got)
			}
			continue
		}
		if len(got) != 1 || got[0].CurrLS != c.ls || got[0].CurrLSValid != c.valid || (got[0].CurrLSSource != 0) != c.valid {
			t.Errorf("%q: %+v", c.in, got)
		}
	}
}

// The poll is what u-blox documents: "$PUBX,04*37".
func TestPUBX04PollBytes(t *testing.T) {
	if got := string(PUBX04Poll()); got != "$PUBX,04*37\r\n" {
		t.Errorf("%q", got)
	}
}
