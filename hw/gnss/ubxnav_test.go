package gnss

import (
	"encoding/binary"
	"sitegm/hw/gnss/ubx"
	"strings"
	"testing"
	"time"
)

// feedTimed feeds chunks one second apart, ticking the idle close between
// them, and returns the reports.
func feedTimed(d *Decoder, t0 time.Time, bursts ...[]byte) []Report {
	var rs []Report
	for i, b := range bursts {
		at := t0.Add(time.Duration(i) * time.Second)
		rs = append(rs, reports(d.Feed(b, at))...)
		rs = append(rs, reports(d.Tick(at.Add(400*time.Millisecond)))...)
	}
	return rs
}

var ubxT0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func simEpoch(i int, valid bool) SimEpoch {
	return SimEpoch{Time: ubxT0.Add(time.Duration(i) * time.Second), Valid: valid, Sats: 9, InView: 12, Talker: "GN"}
}

// Each generation's messages alone give the epoch's time: NAV-PVT (9+),
// NAV-TIMEUTC, NAV-TIMEGPS with its leap seconds, NAV-SOL (6-8) with the
// leap seconds of an earlier message; with the fix said by the epoch.
func TestUBXEpochTimes(t *testing.T) {
	for _, c := range []struct {
		name  string
		epoch func(e SimEpoch) []byte
		valid bool
	}{
		{"PVT", func(e SimEpoch) []byte { return AppendNavPVT(nil, e, 18, 20) }, true},
		{"PVT+EOE", func(e SimEpoch) []byte { return AppendNavEOE(AppendNavPVT(nil, e, 18, 20), e, 18) }, true},
		{"TIMEUTC+STATUS", func(e SimEpoch) []byte { return AppendNavStatus(AppendNavTimeUTC(nil, e, 18, 20, true), e, 18, 1) }, true},
		{"TIMEGPS+SOL", func(e SimEpoch) []byte { return AppendNavTimeGPS(AppendNavSol(nil, e, 18), e, 18, true) }, true},
		{"TIMEUTC alone", func(e SimEpoch) []byte { return AppendNavTimeUTC(nil, e, 18, 20, true) }, false},
		{"TIMEGPS without valid leap seconds", func(e SimEpoch) []byte { return AppendNavSol(AppendNavTimeGPS(nil, e, 18, false), e, 18) }, false},
	} {
		d := NewDecoder(Options{})
		var bursts [][]byte
		for i := 0; i < 4; i++ {
			bursts = append(bursts, c.epoch(simEpoch(i, true)))
		}
		rs := feedTimed(d, time.Unix(100, 0), bursts...)
		if c.name == "TIMEGPS without valid leap seconds" {
			if len(rs) != 0 || d.Stats.UBXNoTime != 4 {
				t.Errorf("%s: %d reports, %d without time", c.name, len(rs), d.Stats.UBXNoTime)
			}
			continue
		}
		if len(rs) != 4 {
			t.Errorf("%s: %d reports, want 4 (%+v)", c.name, len(rs), d.Stats)
			continue
		}
		for i, r := range rs {
			want := ubxT0.Add(time.Duration(i) * time.Second)
			if !r.HasDate || !r.Time.Equal(want) || r.Valid != c.valid || (c.valid && r.Fix != Fix3D) || r.Sentence != "UBX" {
				t.Errorf("%s #%d: %s valid %v fix %s, want %s valid %v", c.name, i, r.UTCString(), r.Valid, r.Fix, want.Format(time.RFC3339), c.valid)
			}
			if r.FirstAt != time.Unix(100+int64(i), 0) {
				t.Errorf("%s #%d: first at %v", c.name, i, r.FirstAt)
			}
		}
	}
}

// A time the receiver does not vouch for with every flag is no valid time.
func TestUBXValidityFlags(t *testing.T) {
	e := simEpoch(0, true)
	pvt := func(mut func(p []byte)) []byte {
		f := AppendNavPVT(nil, e, 18, 20)
		mut(f[6 : len(f)-2])
		// the checksum again
		var a, b byte
		for _, x := range f[2 : len(f)-2] {
			a += x
			b += a
		}
		f[len(f)-2], f[len(f)-1] = a, b
		return f
	}
	for _, c := range []struct {
		name string
		mut  func(p []byte)
	}{
		{"not fully resolved", func(p []byte) { p[11] &^= 0x04 }},
		{"no gnssFixOK", func(p []byte) { p[21] = 0 }},
		{"dead reckoning only", func(p []byte) { p[20] = 1 }},
		{"time not confirmed", func(p []byte) { p[22] = 0x20 | 0x40 }},
		{"no fix", func(p []byte) { p[20] = 0 }},
	} {
		d := NewDecoder(Options{})
		rs := feedTimed(d, time.Unix(100, 0), pvt(c.mut))
		if len(rs) != 1 || rs[0].Valid || !rs[0].HasDate {
			t.Errorf("%s: %+v", c.name, rs)
		}
	}
	// Without validTime there is no time at all.
	d := NewDecoder(Options{})
	if rs := feedTimed(d, time.Unix(100, 0), pvt(func(p []byte) { p[11] = 0x01 })); len(rs) != 0 || d.Stats.UBXNoTime != 1 {
		t.Errorf("no valid time: %+v", rs)
	}
	// u-blox 7 (protocol 14): an 84-byte NAV-PVT.
	f := AppendNavPVT(nil, e, 18, 20)
	p := f[6 : 6+84]
	short := ubx.Append(nil, ubx.ClassNAV, ubx.NavPVT, p)
	if rs := feedTimed(NewDecoder(Options{}), time.Unix(100, 0), short); len(rs) != 1 || !rs[0].Valid {
		t.Errorf("84-byte NAV-PVT: %+v", rs)
	}
}

// NAV-SOL without a NAV-TIMEGPS in its epoch takes GPS-UTC from an
// earlier epoch's NAV-TIMELS.
func TestUBXLeapFromTimeLS(t *testing.T) {
	e0, e1 := simEpoch(0, true), simEpoch(1, true)
	d := NewDecoder(Options{})
	ls := make([]byte, 24)
	_, itow := simITOW(e0.Time, 18)
	binary.LittleEndian.PutUint32(ls, itow)
	ls[9], ls[23] = 18, 0x01
	rs := feedTimed(d, time.Unix(100, 0),
		AppendNavSol(nil, e0, 18), // no leap seconds known yet
		AppendNavSol(ubx.Append(nil, ubx.ClassNAV, ubx.NavTimeLS, ls), e0, 18),
		AppendNavSol(nil, e1, 18))
	if len(rs) != 2 || !rs[0].Time.Equal(e0.Time) || !rs[1].Time.Equal(e1.Time) || !rs[1].Valid {
		t.Errorf("%+v (no time %d)", rs, d.Stats.UBXNoTime)
	}
}

// UBX and NMEA in one stream make one report per epoch; where they name
// different seconds, UBX stands and the conflict is counted and said.
func TestUBXWithNMEA(t *testing.T) {
	burst := func(i int, nmeaOffset time.Duration, ubxFirst bool) []byte {
		e := simEpoch(i, true)
		u := AppendNavEOE(AppendNavTimeGPS(AppendNavPVT(nil, e, 18, 20), e, 18, true), e, 18)
		n := e
		n.Time = n.Time.Add(nmeaOffset)
		s := AppendSimSentences(nil, n, []string{"RMC", "GGA", "ZDA"})
		if ubxFirst {
			return append(u, s...)
		}
		// NMEA inside the UBX epoch, as a ZED-F9T sends it.
		pvtLen := 6 + 92 + 2
		return append(append(append([]byte{}, u[:pvtLen]...), s...), u[pvtLen:]...)
	}
	for _, ubxFirst := range []bool{true, false} {
		d := NewDecoder(Options{})
		rs := feedTimed(d, time.Unix(100, 0), burst(0, 0, ubxFirst), burst(1, 0, ubxFirst), burst(2, 0, ubxFirst))
		if len(rs) != 3 || d.Stats.Conflicts != 0 {
			t.Fatalf("agreeing (UBX first %v): %d reports, %d conflicts", ubxFirst, len(rs), d.Stats.Conflicts)
		}
		for i, r := range rs {
			if !r.Valid || !r.Time.Equal(simEpoch(i, true).Time) || r.Conflict != "" || r.Sentence != map[bool]string{true: "UBX", false: "UBX"}[ubxFirst] && r.Sentence != "RMC" {
				t.Errorf("agreeing #%d: %+v", i, r)
			}
		}
		// NMEA one second late (a default leap second count).
		if ubxFirst {
			continue
		}
		d = NewDecoder(Options{})
		rs = feedTimed(d, time.Unix(100, 0), burst(0, -time.Second, false), burst(1, -time.Second, false), burst(2, -time.Second, false))
		if d.Stats.Conflicts != 3 {
			t.Errorf("disagreeing: %d conflicts", d.Stats.Conflicts)
		}
		var got []string
		for _, r := range rs {
			got = append(got, r.UTCString())
			if !strings.Contains(r.Conflict, "NMEA") {
				t.Errorf("disagreeing: %s conflict %q", r.UTCString(), r.Conflict)
			}
		}
		if len(rs) != 3 || !rs[0].Time.Equal(simEpoch(0, true).Time) || !rs[2].Time.Equal(simEpoch(2, true).Time) {
			t.Errorf("disagreeing: reports %v, want UBX's seconds", got)
		}
	}
}
