package pps

import (
	"math"
	"testing"
	"time"
)

func TestSockSampleGolden(t *testing.T) {
	// 2026-11-24T20:06:20.123456Z, offset +0.25 s, pulse, leap insert.
	s := SockSample{Local: time.Unix(1795550780, 123456000).UTC(), Offset: 0.25, Pulse: true, Leap: 1}
	want := []byte{
		0x3c, 0xee, 0x05, 0x6b, 0, 0, 0, 0, // tv_sec 1795550780
		0x40, 0xe2, 0x01, 0, 0, 0, 0, 0, // tv_usec 123456
		0, 0, 0, 0, 0, 0, 0xd0, 0x3f, // 0.25
		1, 0, 0, 0, // pulse
		1, 0, 0, 0, // leap
		0, 0, 0, 0, // pad
		0x4b, 0x43, 0x4f, 0x53, // magic
	}
	got := s.Marshal()
	if string(got) != string(want) {
		t.Fatalf("marshal:\n got % x\nwant % x", got, want)
	}
	back, err := ParseSockSample(got)
	if err != nil || back != s {
		t.Fatalf("parse: %+v %v", back, err)
	}
}

func TestSockEdgeRecoversNanoseconds(t *testing.T) {
	edge := time.Date(2026, 11, 24, 20, 6, 20, 999_876_543, time.UTC) // local clock at the edge
	second := time.Date(2026, 11, 24, 20, 6, 21, 0, time.UTC)         // the true second it marks
	s := NewEdgeSample(edge, second, 0)
	if !s.Edge().Equal(edge) {
		t.Errorf("edge %v, want %v", s.Edge(), edge)
	}
	// The same edge described relative to the nearest second only.
	s.Offset = 0.000123457
	if got := s.Edge(); got.Sub(edge).Abs() > time.Nanosecond {
		t.Errorf("pulse-relative edge %v, want %v", got, edge)
	}
	// A local clock a minute off still recovers the local edge.
	s = NewEdgeSample(edge, second.Add(-time.Minute), 0)
	if !s.Edge().Equal(edge) {
		t.Errorf("far offset: %v", s.Edge())
	}
}

// A box whose clock is wrong at boot (no RTC battery: 1970; the image's
// date; weeks off) gets gpsd's samples with the whole difference in
// offset: each is taken, and the edge recovered within what a float64
// offset keeps.
func TestSockAnyLocalClock(t *testing.T) {
	second := time.Date(2026, 12, 6, 17, 30, 0, 0, time.UTC) // the true second
	lag := 1234567 * time.Nanosecond                         // the local edge lies this far after the local second
	for _, local := range []time.Time{
		time.Unix(12, 0).UTC(),                              // 1970, seconds after boot
		time.Date(2026, 1, 1, 0, 0, 7, 0, time.UTC),         // the image's build date
		second.AddDate(0, 0, -30), second.AddDate(0, 0, 30), // a month behind, a month ahead
	} {
		edge := local.Add(lag)
		b := NewEdgeSample(edge, second, 0).Marshal()
		s, err := ParseSockSample(b)
		if err != nil {
			t.Fatalf("local %v: %v", local, err)
		}
		// 1.8e9 s in a float64 keeps 2^-22 s; half of that is the error.
		if d := s.Edge().Sub(edge).Abs(); d > 250*time.Nanosecond {
			t.Errorf("local %v: edge %v, want %v (off by %v)", local, s.Edge(), edge, d)
		}
	}
}

// What the sample says the true time is must be a GNSS time.
func TestSockJudgesTheReceiver(t *testing.T) {
	local := time.Date(2026, 12, 6, 17, 30, 0, 5e8, time.UTC)
	for name, tru := range map[string]time.Time{
		"before the GPS epoch": time.Date(1979, 12, 31, 0, 0, 0, 0, time.UTC),
		"at 2200":              time.Date(2200, 1, 1, 0, 0, 1, 0, time.UTC),
	} {
		if _, err := ParseSockSample(NewEdgeSample(local, tru, 0).Marshal()); err != ErrSockValue {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, off := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e300} {
		s := SockSample{Local: local.Truncate(time.Microsecond), Offset: off}
		if _, err := ParseSockSample(s.Marshal()); err != ErrSockValue {
			t.Errorf("offset %v: %v", off, err)
		}
	}
}

func TestSockRejects(t *testing.T) {
	good := NewEdgeSample(time.Unix(1e9, 5e8), time.Unix(1e9+1, 0), 0).Marshal()
	if _, err := ParseSockSample(good[:39]); err != ErrSockSize {
		t.Errorf("short: %v", err)
	}
	bad := append([]byte(nil), good...)
	bad[36] = 0
	if _, err := ParseSockSample(bad); err != ErrSockMagic {
		t.Errorf("magic: %v", err)
	}
	bad = append([]byte(nil), good...)
	bad[8] = 0xff
	bad[9] = 0xff
	bad[10] = 0xff // usec > 1e6
	if _, err := ParseSockSample(bad); err != ErrSockValue {
		t.Errorf("usec: %v", err)
	}
}

func FuzzParseSockSample(f *testing.F) {
	f.Add(NewEdgeSample(time.Unix(1e9, 5e8), time.Unix(1e9+1, 0), 1).Marshal())
	f.Add(make([]byte, SockSampleSize))
	f.Add([]byte("SOCK"))
	f.Add(NewEdgeSample(time.Unix(12, 345678000), time.Unix(1796578200, 0), 0).Marshal()) // a local clock at 1970
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSockSample(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to the same bytes (except the pad).
		again := s.Marshal()
		for i := range again {
			if (i < 32 || i >= 36) && again[i] != b[i] && !(i >= 24 && i < 28) {
				t.Fatalf("byte %d: %x != %x", i, again[i], b[i])
			}
		}
		_ = s.Edge()
	})
}
