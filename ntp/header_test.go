package ntp

import (
	"testing"
	"time"

	"sitegm/clock/quality/qualitytest"
)

// What every NTP reply says in each state of the clock (RFC 5905 7.3):
// stratum 1 and a growing root dispersion while traceable, LI 3 and
// stratum 0 otherwise; the leap indicator announces the day's leap second.
func TestHeaderOfEachState(t *testing.T) {
	type want struct {
		li, stratum uint8
		refid       string
		dispLo      time.Duration // root dispersion at least
		dispHi      time.Duration // and at most
	}
	ws := map[string]want{
		"freerun":   {3, 0, "INIT", 16 * time.Second, 17 * time.Second},
		"locked":    {1, 1, "GPS\x00", 0, 16 * time.Microsecond}, // one unit of the short format: 15.3 µs
		"holdover":  {1, 1, "GPS\x00", 5 * time.Microsecond, 100 * time.Microsecond},
		"past-spec": {3, 0, "INIT", 16 * time.Second, 17 * time.Second},
		"spoofed":   {1, 1, "GPS\x00", 0, 16 * time.Microsecond},
	}
	for _, c := range qualitytest.Cases() {
		h := HeaderOf(c.M.NTP(c.UTC, c.Table), -20, c.UTC)
		w := ws[c.Name]
		refid := string([]byte{byte(h.RefID >> 24), byte(h.RefID >> 16), byte(h.RefID >> 8), byte(h.RefID)})
		disp := time.Duration(uint64(h.RootDispersion) * uint64(time.Second) >> 16)
		if h.Leap != w.li || h.Stratum != w.stratum || refid != w.refid || disp < w.dispLo || disp > w.dispHi || h.Precision != -20 {
			t.Errorf("%s: LI %d stratum %d refid %q dispersion %v, want LI %d stratum %d refid %q dispersion %v..%v",
				c.Name, h.Leap, h.Stratum, refid, disp, w.li, w.stratum, w.refid, w.dispLo, w.dispHi)
		}
		if (h.RefTime == 0) != (w.stratum == 0) {
			t.Errorf("%s: reference time %#x", c.Name, h.RefTime)
		}
		if h.RefTime > Timestamp(c.UTC) {
			t.Errorf("%s: reference time after now", c.Name)
		}
	}
	// A clock that cannot be read says so and keeps its precision.
	h := HeaderOf(qualitytest.Cases()[1].Advertised().NTP, -20, time.Now()).Unsynchronized()
	if h.Leap != 3 || h.Stratum != 0 || h.RefID != 0x494E4954 || h.Precision != -20 {
		t.Errorf("unsynchronized: %+v", h)
	}
	// Held: the header as it is for ClockHold of failed reads, then
	// unsynchronized.
	locked := HeaderOf(qualitytest.Cases()[1].Advertised().NTP, -20, time.Now())
	if locked.Held(0) != locked || locked.Held(ClockHold) != locked || locked.Held(ClockHold+time.Millisecond) != locked.Unsynchronized() {
		t.Errorf("held: %+v %+v", locked.Held(ClockHold), locked.Held(ClockHold+time.Millisecond))
	}
}

// Precision is log2 of the smallest step between reads, clamped.
func TestPrecision(t *testing.T) {
	step := func(d time.Duration) func() (time.Time, error) {
		t0 := time.Unix(0, 0)
		return func() (time.Time, error) { t0 = t0.Add(d); return t0, nil }
	}
	for d, want := range map[time.Duration]int8{time.Nanosecond: -29, time.Microsecond: -19, time.Millisecond: -9, time.Second: -3} {
		if got := Precision(step(d)); got != want {
			t.Errorf("%v: %d, want %d", d, got, want)
		}
	}
}
