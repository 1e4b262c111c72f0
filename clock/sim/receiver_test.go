package sim

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC)

func TestEdgesFollowOffsetAndDrift(t *testing.T) {
	r := NewReceiver(ReceiverConfig{Start: t0, Offset: 250 * time.Millisecond, DriftPPM: 10})
	prev := r.Next()
	for i := 0; i < 100; i++ {
		s := r.Next()
		// The receiver runs 10 ppm fast against the host: its seconds are
		// 1/(1+1e-5) host seconds long.
		if d := s.EdgeHost.Sub(prev.EdgeHost); d < 999989999 || d > 999990001 {
			t.Fatalf("edge spacing %v", d)
		}
		if s.Label.Sub(prev.Label) != time.Second {
			t.Fatalf("labels %v then %v", prev.Label, s.Label)
		}
		// Truth at the edge: host + TrueMinusHost is exactly the label.
		if got := s.EdgeHost.Add(s.TrueMinusHost); !got.Equal(s.Label) {
			t.Fatalf("edge %v + truth %v = %v, label %v", s.EdgeHost, s.TrueMinusHost, got, s.Label)
		}
		prev = s
	}
	// Drift accumulates: after ~100 s, true-host grew by ~1 ms.
	if d := prev.TrueMinusHost - 250*time.Millisecond; d < 990*time.Microsecond || d > 1010*time.Microsecond {
		t.Errorf("offset grew by %v", d)
	}
}

func TestLeapInsertAndDelete(t *testing.T) {
	day := time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)
	start := day.Add(24*time.Hour - 3*time.Second)
	r := NewReceiver(ReceiverConfig{Start: start, Leap: &Leap{Day: day, Sign: 1}})
	var labels []string
	for i := 0; i < 6; i++ {
		s := r.Next()
		l := s.Label.Format("15:04:05")
		if s.Leap60 {
			l = "23:59:60"
		}
		labels = append(labels, l)
		if i == 5 && s.UTCMinusHost != -time.Second {
			t.Errorf("after the leap UTC is one second behind the continuous scale: %v", s.UTCMinusHost)
		}
	}
	want := []string{"23:59:57", "23:59:58", "23:59:59", "23:59:60", "00:00:00", "00:00:01"}
	for i := range want {
		if labels[i] != want[i] {
			t.Fatalf("insert: %v", labels)
		}
	}
	r = NewReceiver(ReceiverConfig{Start: start, Leap: &Leap{Day: day, Sign: -1}})
	labels = nil
	for i := 0; i < 4; i++ {
		labels = append(labels, r.Next().Label.Format("15:04:05"))
	}
	if labels[0] != "23:59:57" || labels[1] != "23:59:58" || labels[2] != "00:00:00" || labels[3] != "00:00:01" {
		t.Fatalf("delete: %v", labels)
	}
}

func TestFaultsAndJump(t *testing.T) {
	jump, _ := ParseFault("jump=300ms@5s+3s")
	out, _ := ParseFault("outage@10s+2s")
	nofix, _ := ParseFault("nofix@13s+1s")
	r := NewReceiver(ReceiverConfig{Start: t0, Faults: []Fault{jump, out, nofix}})
	for i := 0; i < 16; i++ {
		s := r.Next()
		rel := s.EdgeHost.Sub(t0)
		inJump := rel >= 5*time.Second && rel < 8*time.Second
		if inJump != (s.Jump == 300*time.Millisecond) {
			t.Errorf("%v: jump %v", rel, s.Jump)
		}
		if inJump {
			// The receiver's edges are 300 ms early against the truth.
			if d := s.Label.Sub(s.EdgeHost.Add(s.TrueMinusHost)); d != 300*time.Millisecond {
				t.Errorf("%v: label minus truth %v", rel, d)
			}
		}
		inOutage := rel >= 10*time.Second && rel < 12*time.Second
		if s.PPS == inOutage || s.NMEA == inOutage {
			t.Errorf("%v: pps %v nmea %v", rel, s.PPS, s.NMEA)
		}
		if s.Valid == (rel >= 13*time.Second && rel < 14*time.Second) {
			t.Errorf("%v: valid %v", rel, s.Valid)
		}
	}
	for _, bad := range []string{"outage", "flood@1s+1s", "jump=x@1s+1s", "outage@1s", "outage@-1s+1s", "outage@1s+0s"} {
		if _, err := ParseFault(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// A fault injected while the receiver runs (gnss-sim --control) covers
// the edges from the time it was given for its length, as if configured
// with that start.
func TestInjectedFault(t *testing.T) {
	r := NewReceiver(ReceiverConfig{Start: t0})
	var at time.Time
	for i := 0; i < 5; i++ {
		at = r.Next().EdgeHost
	}
	f, _ := ParseFault("outage@0s+3s")
	f = r.Inject(f, at.Add(time.Millisecond))
	if f.Start != at.Add(time.Millisecond).Sub(t0) {
		t.Errorf("start %v", f.Start)
	}
	var silent []int
	for i := 0; i < 6; i++ {
		if s := r.Next(); !s.PPS && !s.NMEA {
			silent = append(silent, s.N)
		}
	}
	if len(silent) != 3 || silent[0] != 5 {
		t.Errorf("silent edges %v, want 5, 6, 7", silent)
	}
}

func TestJitterQErrAndLatency(t *testing.T) {
	r := NewReceiver(ReceiverConfig{Start: t0, PPSJitter: 20 * time.Nanosecond, QErr: 10 * time.Nanosecond,
		Latency: 900 * time.Millisecond, LatencyJitter: 400 * time.Millisecond, Seed: 1})
	var sum2 float64
	late := 0
	for i := 0; i < 1000; i++ {
		s := r.Next()
		q := s.PulseHost.Sub(s.EdgeHost)
		if q < -10*time.Nanosecond || q > 10*time.Nanosecond {
			t.Fatalf("quantisation %v", q)
		}
		// ideal = actual + qErr
		if !s.PulseHost.Add(time.Duration(s.QErrPS / 1000)).Equal(s.EdgeHost) {
			t.Fatalf("qErr %d ps does not correct %v", s.QErrPS, q)
		}
		j := float64(s.Stamp.Sub(s.PulseHost))
		sum2 += j * j
		lat := s.NMEAAt.Sub(s.EdgeHost)
		if lat < 900*time.Millisecond || lat >= 1300*time.Millisecond {
			t.Fatalf("latency %v", lat)
		}
		if lat > time.Second {
			late++
		}
	}
	if rms := time.Duration(sqrt(sum2 / 1000)); rms < 18*time.Nanosecond || rms > 22*time.Nanosecond {
		t.Errorf("jitter rms %v", rms)
	}
	if late < 100 {
		t.Errorf("only %d bursts later than a second", late)
	}
}

func sqrt(x float64) float64 {
	z := x
	for i := 0; i < 50; i++ {
		z = (z + x/z) / 2
	}
	return z
}

// TestHealthFaults: the receiver-health faults parse, bad values are
// refused, and each shows in the seconds of its window only.
func TestHealthFaults(t *testing.T) {
	for _, bad := range []string{"antenna=cut@1s+1s", "jamming=300@1s+1s", "jamming@1s+1s", "spoofing=1@1s+1s", "survey=x@0s", "antenna=open@1s"} {
		if _, err := ParseFault(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	var faults []Fault
	for _, s := range []string{"antenna=open@2s+2s", "jamming=180@5s+2s", "spoofing@8s+2s", "survey=4s@1s"} {
		f, err := ParseFault(s)
		if err != nil {
			t.Fatal(err)
		}
		faults = append(faults, f)
	}
	rx := NewReceiver(ReceiverConfig{Start: time.Unix(1_700_000_000, 0), Faults: faults})
	for i := 0; i < 12; i++ {
		s := rx.Next()
		rel := s.EdgeHost.Sub(time.Unix(1_700_000_000, 0))
		in := func(a, b time.Duration) bool { return rel >= a && rel < b }
		if (s.Antenna == "open") != in(2*time.Second, 4*time.Second) || s.Valid == (s.Antenna == "open") {
			t.Errorf("%v: antenna %q valid %v", rel, s.Antenna, s.Valid)
		}
		if (s.Jamming == 180) != in(5*time.Second, 7*time.Second) {
			t.Errorf("%v: jamming %d", rel, s.Jamming)
		}
		if s.Spoofing != in(8*time.Second, 10*time.Second) {
			t.Errorf("%v: spoofing %v", rel, s.Spoofing)
		}
		if s.Survey.Active != in(time.Second, 5*time.Second) || s.Survey.Valid != (rel >= 5*time.Second) {
			t.Errorf("%v: survey %+v", rel, s.Survey)
		}
	}
}
