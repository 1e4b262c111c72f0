package gnss

import (
	"testing"
	"time"
)

// TestHealthEncoders: what gnss-sim sends about its health decodes to
// the same health.
func TestHealthEncoders(t *testing.T) {
	d := NewDecoder(Options{})
	b := AppendMonHW(nil, AntennaOpen, JammingWarning, 170)
	b = AppendTimSVIN(b, Survey{Active: true, Duration: 90 * time.Second, Observations: 90, MeanAcc: 3.5})
	var hs []Health
	for _, ev := range d.Feed(b, time.Unix(1, 0)) {
		if h, ok := ev.(Health); ok {
			hs = append(hs, h)
		}
	}
	if len(hs) != 2 {
		t.Fatalf("%d health events", len(hs))
	}
	if h := hs[0]; h.Antenna != AntennaOpen || h.Jamming != JammingWarning || h.JamInd != 170 {
		t.Errorf("MON-HW %+v", h)
	}
	if s := hs[1].Survey; s == nil || !s.Active || s.Valid || s.Duration != 90*time.Second || s.MeanAcc < 3.49 || s.MeanAcc > 3.51 {
		t.Errorf("TIM-SVIN %+v", s)
	}
}
