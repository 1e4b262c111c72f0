package peers

import (
	"math"
	"os"
	"sitegm/clock/leap"
	"testing"
	"time"
)

func TestReadPeers(t *testing.T) {
	out := "ptp4l[1886.056]: selected best master clock 5e6e38.fffe.eac630\n" +
		"ptp4l[1886.120]: master offset -120384711 s0 freq   -3540 path delay      2125\n" +
		"ptp4l[1887.120]: master offset        312 s2 freq   +3026 path delay     11547\n"
	o := Ptp4lOffsets(out)
	if len(o) != 2 || o[0] != (Ptp4lOffset{1886.120, -120384711, 2125}) || o[1].Offset != 312 {
		t.Errorf("%+v", o)
	}
	if v, ok := ChronySystemTime("System time     : 0.000001500 seconds fast of NTP time\n"); !ok || v != -1500 {
		t.Errorf("fast: %v %v", v, ok)
	}
	if v, ok := ChronySystemTime("System time     : 0.000000200 seconds slow of NTP time\n"); !ok || math.Abs(v-200) > 1e-6 {
		t.Errorf("slow: %v %v", v, ok)
	}
	if p := P90([]float64{-1, 2, -3, 4, 5, 6, 7, 8, 9, -100}); p != 9 {
		t.Errorf("p90 %v", p)
	}
}

// TestFreshLeapList: the list it makes parses (hash and all) and expires
// when asked.
func TestFreshLeapList(t *testing.T) {
	b, err := os.ReadFile("/usr/share/zoneinfo/leap-seconds.list")
	if err != nil {
		t.Skip("no tzdata leap-seconds.list")
	}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tab, err := leap.ParseList(FreshLeapList(b, exp))
	if err != nil {
		t.Fatal(err)
	}
	if !tab.Expires.Equal(exp) {
		t.Errorf("expires %v", tab.Expires)
	}
}
