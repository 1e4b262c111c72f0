package monitor

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"sitegm/ntp"
)

// answer is a reply from a host whose clock is off by off, over a path
// of delay (each way half).
func answer(t1 time.Time, off, delay time.Duration) ntp.PollResult {
	t2 := t1.Add(delay/2 + off)
	t3 := t2.Add(50 * time.Microsecond)
	t4 := t3.Add(-off + delay/2)
	return ntp.PollResult{T1: t1, T4: t4, Sample: ntp.Sample{Stratum: 2, RefID: 0x0a000001, Receive: t2, Transmit: t3}}
}

// TestEvents: the offset (the least-delay sample of the last four) beyond
// warn is one WARNING, back under 80 % one NOTICE; three missed polls are
// one WARNING, an answer one NOTICE; nothing is raised while sitegm's own
// clock does not know the time.
func TestEvents(t *testing.T) {
	var log bytes.Buffer
	h := New(Config{Name: "recorder", Host: "10.0.20.10", Interval: time.Minute, Warn: 10 * time.Millisecond},
		slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	step := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	h.Record(answer(step(0), 25*time.Millisecond, time.Millisecond), 0) // sitegm not locked yet
	if strings.Contains(log.String(), "monitor_offset") {
		t.Fatal("an offset event against an unlocked clock")
	}
	h.Record(answer(step(1), 25*time.Millisecond, time.Millisecond), time.Microsecond)
	// One slow poll (a busy recorder) with a wrong-looking offset does
	// not undo it: the least-delay sample wins.
	h.Record(answer(step(2), 2*time.Millisecond, 80*time.Millisecond), time.Microsecond)
	st := h.Status(step(2))
	if !st.Off || st.OffsetNS != int64(25*time.Millisecond) || st.Stratum != 2 || st.RefID != "10.0.0.1" || st.Reach != 7 {
		t.Errorf("status %+v", st)
	}
	for i := 3; i < 8; i++ {
		h.Record(answer(step(i), 9*time.Millisecond, time.Millisecond), time.Microsecond) // at 90 %: still off
	}
	if !h.Status(step(7)).Off {
		t.Error("cleared at 90 % of warn")
	}
	for i := 8; i < 12; i++ {
		h.Record(answer(step(i), time.Millisecond, time.Millisecond), time.Microsecond)
	}
	for i := 12; i < 16; i++ {
		h.Record(ntp.PollResult{T1: step(i), Err: errors.New("i/o timeout")}, time.Microsecond)
	}
	h.Record(answer(step(16), time.Millisecond, time.Millisecond), time.Microsecond)
	out := log.String()
	for _, want := range []string{
		`level=WARN msg="monitored host's clock is off sitegm's" event=monitor_offset monitor=recorder monitor_host=10.0.20.10 monitor_offset=25ms`,
		`level=INFO+2 msg="monitored host's clock agrees with sitegm's again" event=monitor_offset`,
		`level=WARN msg="monitored host does not answer NTP" event=monitor_unreachable`,
		`monitor_error="i/o timeout" monitor_missed=3`,
		`level=INFO+2 msg="monitored host answers NTP again" event=monitor_unreachable`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	if n := strings.Count(out, "event=monitor_"); n != 4 {
		t.Errorf("%d events, want 4:\n%s", n, out)
	}
}

// TestPeerLimitIsBothBounds: the other grandmaster of a pair is off when
// the two clocks differ by more than this one's bound, the peer's root
// distance and half the sample's delay together; a peer that says it is
// not synchronized (LI 3) is not compared.
func TestPeerLimitIsBothBounds(t *testing.T) {
	var log bytes.Buffer
	h := New(Config{Name: "gm-b", Host: "10.0.10.2", Interval: 16 * time.Second, Warn: time.Hour, Peer: true},
		slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	peer := func(i int, off time.Duration, leap uint8) ntp.PollResult {
		r := answer(t0.Add(time.Duration(i)*16*time.Second), off, 100*time.Microsecond)
		r.Sample.Stratum, r.Sample.Leap, r.Sample.RootDisp, r.Sample.RootDelay = 1, leap, 15*time.Microsecond, 10*time.Microsecond
		if leap == 3 {
			r.Sample.Stratum = 0
		}
		return r
	}
	own := 20 * time.Microsecond
	// The limit: 20 + 15 + 10/2 + 100/2 = 90 us.
	h.Record(peer(0, 60*time.Microsecond, 0), own)
	if st := h.Status(t0); st.Off || st.WarnNS != int64(90*time.Microsecond) || !st.Peer || !st.Compared {
		t.Fatalf("within both bounds: %+v", st)
	}
	for i := 1; i <= filterLen; i++ {
		h.Record(peer(i, 300*time.Microsecond, 0), own)
	}
	if st := h.Status(t0); !st.Off {
		t.Fatalf("300 us apart with a 90 us limit: %+v", st)
	}
	if !strings.Contains(log.String(), "one of the two is wrong") {
		t.Errorf("no WARNING naming the pair: %s", log.String())
	}
	// The peer lost its receiver and restarted: LI 3, stratum 0, far off.
	log.Reset()
	h2 := New(Config{Name: "gm-b", Host: "10.0.10.2", Interval: 16 * time.Second, Peer: true},
		slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h2.Record(peer(0, time.Second, 3), own)
	if st := h2.Status(t0); st.Off || st.Compared || strings.Contains(log.String(), "monitor_offset") {
		t.Errorf("an unsynchronized peer compared: %+v %s", st, log.String())
	}
}
