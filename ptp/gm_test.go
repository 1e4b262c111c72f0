package ptp

import (
	"testing"
	"time"

	"github.com/facebook/time/ptp/protocol"

	"sitegm/clock/quality"
	"sitegm/clock/quality/qualitytest"
)

// What a PTPv2 port advertises in each state of the clock (IEEE 1588-2019
// Table 4 classes, Table 5 accuracy, Table 6 time source, Table 37 flags),
// on a day that ends with a leap second.
func TestGMOfEachState(t *testing.T) {
	const (
		leap61 = protocol.FlagLeap61
		valid  = protocol.FlagCurrentUtcOffsetValid
		ptpTS  = protocol.FlagPTPTimescale
		traced = protocol.FlagTimeTraceable | protocol.FlagFrequencyTraceable
	)
	want := map[string]struct {
		class    protocol.ClockClass
		accuracy func(protocol.ClockAccuracy) bool
		source   protocol.TimeSource
		flags    uint16
	}{
		"freerun":   {248, func(a protocol.ClockAccuracy) bool { return a == protocol.ClockAccuracyUnknown }, 0xA0, ptpTS},
		"locked":    {6, func(a protocol.ClockAccuracy) bool { return a == 0x21 }, 0x20, leap61 | valid | ptpTS | traced},
		"holdover":  {7, func(a protocol.ClockAccuracy) bool { return a > 0x21 && a <= 0x27 }, 0xA0, leap61 | valid | ptpTS | traced},
		"past-spec": {52, func(a protocol.ClockAccuracy) bool { return a >= 0x27 && a < 0xFE }, 0xA0, ptpTS},
		"spoofed":   {7, func(a protocol.ClockAccuracy) bool { return a == 0x21 }, 0xA0, leap61 | valid | ptpTS | traced},
	}
	for _, c := range qualitytest.Cases() {
		g := GMOf(c.Advertised())
		w, ok := want[c.Name]
		if !ok {
			t.Fatalf("no expectation for %s", c.Name)
		}
		if g.Quality.ClockClass != w.class || !w.accuracy(g.Quality.ClockAccuracy) || g.TimeSource != w.source || g.Flags != w.flags {
			t.Errorf("%s: class %d accuracy %#x source %#x flags %#04x, want class %d source %#x flags %#04x",
				c.Name, g.Quality.ClockClass, g.Quality.ClockAccuracy, g.TimeSource, g.Flags, w.class, w.source, w.flags)
		}
		if g.UTCOffset != 37 {
			t.Errorf("%s: currentUtcOffset %d", c.Name, g.UTCOffset)
		}
		if locked := c.Name != "freerun"; locked == (g.Quality.OffsetScaledLogVariance == quality.VarianceUnknown) {
			t.Errorf("%s: offsetScaledLogVariance %#x", c.Name, g.Quality.OffsetScaledLogVariance)
		}
	}
	// Before the daemon says anything: the default class, nothing known,
	// no flags at all.
	if g := GMOf(quality.Initial()); g.Quality.ClockClass != 248 || g.Quality.ClockAccuracy != 0xFE || g.Flags != 0 || g.TimeSource != 0xA0 {
		t.Errorf("initial: %+v", g)
	}
}

// A port stamping on a slave PHC never advertises better than the clock
// plus the carrying; unknown while the slave is not measured.
func TestCarried(t *testing.T) {
	g := GM{Quality: protocol.ClockQuality{ClockAccuracy: quality.AccuracyCode(80 * time.Nanosecond)}}
	if c := g.Carried(80*time.Nanosecond, 10*time.Nanosecond, true); c.Quality.ClockAccuracy != g.Quality.ClockAccuracy {
		t.Fatalf("within the same code: %v", c.Quality.ClockAccuracy)
	}
	if c := g.Carried(80*time.Nanosecond, 900*time.Nanosecond, true); c.Quality.ClockAccuracy != quality.AccuracyCode(980*time.Nanosecond) {
		t.Fatalf("widened: %v", c.Quality.ClockAccuracy)
	}
	if c := g.Carried(80*time.Nanosecond, 0, false); c.Quality.ClockAccuracy != quality.AccuracyUnknown {
		t.Fatalf("slave not measured: %v", c.Quality.ClockAccuracy)
	}
	u := GM{Quality: protocol.ClockQuality{ClockAccuracy: quality.AccuracyUnknown}}
	if c := u.Carried(-1, 10, true); c.Quality.ClockAccuracy != quality.AccuracyUnknown {
		t.Fatalf("the clock's unknown became %v", c.Quality.ClockAccuracy)
	}
}
