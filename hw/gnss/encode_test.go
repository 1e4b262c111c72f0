package gnss

import (
	"testing"
	"time"
)

// What the simulator writes, the decoder reads back exactly.
func TestSimSentencesRoundTrip(t *testing.T) {
	types := []string{"RMC", "GGA", "GSA", "GSV", "ZDA", "GLL"}
	cases := []SimEpoch{
		{Time: time.Date(2026, 11, 24, 20, 6, 20, 0, time.UTC), Valid: true, Sats: 9, InView: 14, Talker: "GN"},
		{Time: time.Date(2026, 11, 24, 20, 6, 21, 0, time.UTC), Valid: false, Sats: 0, InView: 3, Talker: "GP"},
		{Time: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Leap60: true, Valid: true, Sats: 5, InView: 5, Talker: "GN"},
	}
	for _, c := range cases {
		var b []byte
		b = AppendTimTP(b, c.Time, -2500)
		b = AppendSimSentences(b, c, types)
		evs, d := decodeAll(Options{}, string(b))
		rs := reports(evs)
		if len(rs) != 1 || d.FramerStats().Skipped != 0 {
			t.Fatalf("%+v: reports %+v, stats %+v", c, rs, d.FramerStats())
		}
		r := rs[0]
		wantSats := c.Sats
		if !c.Valid {
			wantSats = 0
		}
		wantFix := Fix3D
		if !c.Valid {
			wantFix = FixNone
		}
		if !r.Time.Equal(c.Time) || r.Leap60 != c.Leap60 || r.Valid != c.Valid || r.Sats != wantSats ||
			r.InView != c.InView || r.Talker != c.Talker || r.DateFrom != "RMC" || r.Fix != wantFix {
			t.Errorf("wrote %+v, read %+v", c, r)
		}
		if tp, ok := evs[0].(TimePulse); !ok || tp.QErr != -2500 || !tp.TimeBaseUTC {
			t.Errorf("TIM-TP %+v", evs[0])
		}
	}
}
