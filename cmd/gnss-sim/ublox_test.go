package main

import (
	"testing"
	"time"

	"sitegm/clock/sim"
	"sitegm/hw/gnss"
)

// A PUBX,04 poll is answered with the latest second and the leap count,
// marked as the firmware's default while the receiver does not know it;
// NAV-TIMELS says the same through its source field.
func TestPUBX04Poll(t *testing.T) {
	for _, unknown := range []bool{false, true} {
		u, err := newUblox("neo-m8t", "nmea", 9600, true)
		if err != nil {
			t.Fatal(err)
		}
		u.leapUnknown = unknown
		poll := &gnss.Frame{Kind: gnss.FrameNMEA, Data: []byte("PUBX,04")}
		if b := u.handle(poll); b != nil {
			t.Fatalf("answered before any second: %q", b)
		}
		s := sim.Second{N: 5, Label: time.Date(2026, 12, 6, 12, 0, 5, 0, time.UTC), Valid: true}
		out := u.epoch(s, s, sim.ReceiverConfig{}, []string{"RMC"}, "GN")
		reply := u.handle(poll)
		d := gnss.NewDecoder(gnss.Options{})
		var got []gnss.LeapInfo
		for _, e := range d.Feed(append(out, reply...), s.Label) {
			if li, ok := e.(gnss.LeapInfo); ok {
				got = append(got, li)
			}
		}
		// NAV-TIMELS (the fifth second) and the PUBX,04 answer.
		if len(got) != 2 {
			t.Fatalf("unknown=%v: %d leap messages %+v (reply %q)", unknown, len(got), got, reply)
		}
		for _, li := range got {
			if li.CurrLS != 18 || (li.CurrLSSource == 0) != unknown {
				t.Errorf("unknown=%v: %+v", unknown, li)
			}
		}
	}
}
