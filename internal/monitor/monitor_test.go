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
	h.Record(answer(step(0), 25*time.Millisecond, time.Millisecond), false) // sitegm not locked yet
	if strings.Contains(log.String(), "monitor_offset") {
		t.Fatal("an offset event against an unlocked clock")
	}
	h.Record(answer(step(1), 25*time.Millisecond, time.Millisecond), true)
	// One slow poll (a busy recorder) with a wrong-looking offset does
	// not undo it: the least-delay sample wins.
	h.Record(answer(step(2), 2*time.Millisecond, 80*time.Millisecond), true)
	st := h.Status(step(2))
	if !st.Off || st.OffsetNS != int64(25*time.Millisecond) || st.Stratum != 2 || st.RefID != "10.0.0.1" || st.Reach != 7 {
		t.Errorf("status %+v", st)
	}
	for i := 3; i < 8; i++ {
		h.Record(answer(step(i), 9*time.Millisecond, time.Millisecond), true) // at 90 %: still off
	}
	if !h.Status(step(7)).Off {
		t.Error("cleared at 90 % of warn")
	}
	for i := 8; i < 12; i++ {
		h.Record(answer(step(i), time.Millisecond, time.Millisecond), true)
	}
	for i := 12; i < 16; i++ {
		h.Record(ntp.PollResult{T1: step(i), Err: errors.New("i/o timeout")}, true)
	}
	h.Record(answer(step(16), time.Millisecond, time.Millisecond), true)
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
