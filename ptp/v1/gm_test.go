package v1

import (
	"testing"

	"sitegm/clock/quality"
	"sitegm/clock/quality/qualitytest"
)

// What a PTPv1 (Dante) port advertises in each state (IEEE 1588-2002
// 7.6: the best stratum and preferred flag only while traceable, so that a
// preferred Dante leader takes over from a free-running sitegm).
func TestV1GMOfEachState(t *testing.T) {
	want := map[string]GM{
		"freerun":   {Stratum: 4, Identifier: [4]byte{'D', 'F', 'L', 'T'}, Variance: 0x7FFF, UTCOffset: 37},
		"locked":    {Stratum: 1, Identifier: [4]byte{'G', 'P', 'S', 0}, Variance: -16000, Preferred: true, UTCOffset: 37, Leap61: true, UTCReasonable: true},
		"holdover":  {Stratum: 2, Identifier: [4]byte{'G', 'P', 'S', 0}, Variance: -8000, Preferred: true, UTCOffset: 37, Leap61: true, UTCReasonable: true},
		"past-spec": {Stratum: 4, Identifier: [4]byte{'D', 'F', 'L', 'T'}, Variance: 0x7FFF, UTCOffset: 37},
		"spoofed":   {Stratum: 2, Identifier: [4]byte{'G', 'P', 'S', 0}, Variance: -8000, Preferred: true, UTCOffset: 37, Leap61: true, UTCReasonable: true},
	}
	for _, c := range qualitytest.Cases() {
		if g := GMOf(c.Advertised()); g != want[c.Name] {
			t.Errorf("%s: %+v, want %+v", c.Name, g, want[c.Name])
		}
	}
	if g := GMOf(quality.Initial()); g.Stratum != 4 || g.Preferred || g.UTCReasonable {
		t.Errorf("initial: %+v", g)
	}
}
