package ntp

import "testing"

// TestSendLag: the least of the last measurements, each clamped, so that
// a late stamp (a preempted send) never moves it up, none can move it
// beyond MaxSendLag or below zero, and the transmit time it gives is not
// after the departure of any of the replies it was measured on.
func TestSendLag(t *testing.T) {
	var l SendLag
	if l.NS() != 0 {
		t.Fatal("an estimate before any measurement")
	}
	for _, v := range []int64{4000, 4200, 3900} {
		l.Add(v)
	}
	if l.NS() != 3900 {
		t.Errorf("least of 3900, 4000, 4200: %d", l.NS())
	}
	l.Add(900_000) // one send preempted for almost a millisecond
	if l.NS() != 3900 {
		t.Errorf("one late stamp moved the estimate to %d", l.NS())
	}
	// The fast measurement leaves the window after lagSamples more.
	for range lagSamples - 1 {
		l.Add(5000)
	}
	if l.NS() != 5000 {
		t.Errorf("after the window moved past 3900: %d", l.NS())
	}
	for range lagSamples {
		l.Add(10_000_000)
	}
	if l.NS() != MaxSendLag {
		t.Errorf("a slow path gave %d, want the bound %d", l.NS(), MaxSendLag)
	}
	for range lagSamples {
		l.Add(-500) // a clock read after the stamp: impossible, clamped
	}
	if l.NS() != 0 {
		t.Errorf("negative lags gave %d", l.NS())
	}
	if f := Fraction(1e9); f != 1<<32 {
		t.Errorf("Fraction(1 s) = %#x", f)
	}
	if f := Fraction(MaxSendLag); f != 214748 {
		t.Errorf("Fraction(50 us) = %d", f)
	}
	if d := LagNS(rxT, rxT+Fraction(4000)); d < 3999 || d > 4000 {
		t.Errorf("LagNS of 4 us: %d", d)
	}
	if d := LagNS(rxT+Fraction(4000), rxT); d > -3999 || d < -4001 {
		t.Errorf("LagNS of -4 us: %d", d)
	}
	if a := testing.AllocsPerRun(100, func() { l.Add(4000) }); a != 0 {
		t.Errorf("%v allocations per measurement", a)
	}
}
