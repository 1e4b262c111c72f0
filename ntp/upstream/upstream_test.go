package upstream

import (
	"testing"
	"time"

	"sitegm/ntp"
)

// TestSelectRejectsTheFalseticker: two servers that agree and one tens of
// milliseconds off: the two survive, combined; the third is a
// falseticker. Three that all disagree leave no majority.
func TestSelectRejectsTheFalseticker(t *testing.T) {
	ms := time.Millisecond
	sel := Select([]Candidate{{Name: "a", Offset: 0, RootDist: 2 * ms, Stratum: 1},
		{Name: "b", Offset: 1 * ms, RootDist: 2 * ms, Stratum: 2}, {Name: "c", Offset: 40 * ms, RootDist: 3 * ms, Stratum: 1}})
	if !sel.OK || len(sel.Survivors) != 2 || len(sel.Falsetickers) != 1 || sel.Falsetickers[0] != "c" {
		t.Fatalf("%+v", sel)
	}
	if sel.Offset != 500*time.Microsecond || sel.Best != "a" || sel.Stratum != 1 || sel.RootDist < 2*ms || sel.RootDist > 3*ms {
		t.Errorf("combined %+v", sel)
	}
	if s := Select([]Candidate{{Name: "a", RootDist: ms}, {Name: "b", Offset: 10 * ms, RootDist: ms}, {Name: "c", Offset: 20 * ms, RootDist: ms}}); s.OK || len(s.Falsetickers) != 3 {
		t.Errorf("no majority, yet %+v", s)
	}
	// Two against one is a majority; one against one is not.
	if s := Select([]Candidate{{Name: "a", RootDist: ms}, {Name: "b", Offset: 10 * ms, RootDist: ms}}); s.OK {
		t.Errorf("two that disagree: %+v", s)
	}
	if s := Select([]Candidate{{Name: "a", Offset: 5 * ms, RootDist: ms}}); !s.OK || s.Offset != 5*ms {
		t.Errorf("one server: %+v", s)
	}
	// A prefer survivor is the system peer even when farther.
	s := Select([]Candidate{{Name: "a", RootDist: ms, Stratum: 1}, {Name: "b", Offset: ms / 2, RootDist: 2 * ms, Stratum: 2, Prefer: true}})
	if s.Best != "b" || s.Stratum != 2 {
		t.Errorf("prefer: %+v", s)
	}
}

func reply(t1 time.Time, off, delay time.Duration, stratum uint8) (ntp.Sample, time.Time) {
	t2 := t1.Add(delay/2 + off)
	t3 := t2.Add(20 * time.Microsecond)
	return ntp.Sample{Stratum: stratum, Precision: -20, RootDelay: 200 * time.Microsecond, RootDisp: 100 * time.Microsecond,
		Receive: t2, Transmit: t3}, t3.Add(-off + delay/2)
}

// TestSourceScheduleAndFilter: iburst polls 2 s apart, then minpoll,
// growing a step after 8 answers up to maxpoll and back a step on a
// miss; the filter keeps the least-delay sample and its distance adds
// up as RFC 5905 clause 11.2 says.
func TestSourceScheduleAndFilter(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := NewSource(Config{Name: "ntp1", MinPoll: 4, MaxPoll: 6, IBurst: true}, t0)
	now := t0
	var gaps []time.Duration
	for i := 0; i < 30; i++ {
		now = s.Due()
		s.Polled(now)
		delay := 2 * time.Millisecond
		if i%4 == 1 {
			delay = 500 * time.Microsecond
		}
		smp, t4 := reply(now, 3*time.Millisecond, delay, 2)
		s.Answer(smp, now, t4)
		gaps = append(gaps, s.Due().Sub(now))
	}
	if gaps[0] != 2*time.Second || gaps[3] != 16*time.Second || gaps[len(gaps)-1] != 64*time.Second {
		t.Errorf("poll gaps %v", gaps)
	}
	s.Miss("timeout")
	if s.poll != 5 {
		t.Errorf("after a miss poll 2^%d", s.poll)
	}
	c, ok := s.Candidate(s.filter[len(s.filter)-1].at)
	if !ok || c.Delay != 500*time.Microsecond || c.Offset != 3*time.Millisecond {
		t.Fatalf("candidate %+v %v", c, ok)
	}
	// The last sample, of least delay: max(1 ms, 0.2 + 0.5 ms)/2 + 0.1 ms
	// root dispersion + its own dispersion (~2 µs) + jitter (all the same
	// offset: the precision floor, ~1 µs).
	want := 500*time.Microsecond + 100*time.Microsecond
	if c.RootDist < want || c.RootDist > want+10*time.Microsecond {
		t.Errorf("root distance %v, want %v", c.RootDist, want)
	}
	for i := 0; i < 8; i++ {
		s.Polled(now)
	}
	if _, ok := s.Candidate(now); ok {
		t.Error("a source unanswered for 8 polls is still a candidate")
	}
}

// TestSetStatus: the set's selection marks each source.
func TestSetStatus(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	set := NewSet([]Config{{Name: "a", MinPoll: 4, MaxPoll: 4}, {Name: "b", MinPoll: 4, MaxPoll: 4}, {Name: "c", MinPoll: 4, MaxPoll: 4}}, t0)
	for i, off := range []time.Duration{0, time.Millisecond, 50 * time.Millisecond} {
		set.Polled(i, t0)
		smp, t4 := reply(t0, off, time.Millisecond, 1)
		set.Answer(i, smp, t0, t4)
	}
	sel, fresh := set.Select(t0.Add(time.Second))
	if !sel.OK || !fresh {
		t.Fatalf("%+v", sel)
	}
	if _, fresh := set.Select(t0.Add(2 * time.Second)); fresh {
		t.Error("fresh without a new answer")
	}
	states := map[string]string{}
	for _, st := range set.Status(t0.Add(time.Second)) {
		states[st.Name] = st.State
	}
	if states["a"] != "selected" || states["b"] != "survivor" || states["c"] != "falseticker" {
		t.Errorf("%v", states)
	}
}

// TestStepForgets: a clock step clears the filters, and an answer to a
// request sent before it is not taken.
func TestStepForgets(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	set := NewSet([]Config{{Name: "a", MinPoll: 4, MaxPoll: 4}}, t0)
	set.Polled(0, t0)
	smp, t4 := reply(t0, 0, time.Millisecond, 1)
	set.Answer(0, smp, t0, t4)
	if sel, _ := set.Select(t4); !sel.OK {
		t.Fatal("no selection")
	}
	set.Polled(0, t0.Add(16*time.Second))
	set.Stepped()
	smp, t4 = reply(t0.Add(16*time.Second), 50*time.Millisecond, time.Millisecond, 1)
	set.Answer(0, smp, t0.Add(16*time.Second), t4)
	if sel, fresh := set.Select(t4); sel.OK || fresh {
		t.Errorf("after the step: %+v fresh %v", sel, fresh)
	}
	if st := set.Status(t4); st[0].LastError == "" || st[0].State != "unusable" {
		t.Errorf("%+v", st[0])
	}
}

// TestKissSlowsDown: a RATE kiss lengthens the poll interval (a miss
// would shorten it) and ends a burst; DENY sends it to maxpoll.
func TestKissSlowsDown(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := NewSource(Config{Name: "a", MinPoll: 4, MaxPoll: 8, IBurst: true}, t0)
	s.Polled(t0)
	s.Kissed("RATE")
	if s.poll != 5 || s.burst != 0 {
		t.Errorf("after RATE: poll 2^%d, burst %d", s.poll, s.burst)
	}
	s.Polled(t0)
	if s.Due().Sub(t0) != 32*time.Second {
		t.Errorf("next poll in %v", s.Due().Sub(t0))
	}
	s.Kissed("DENY")
	if s.poll != 8 {
		t.Errorf("after DENY: poll 2^%d", s.poll)
	}
}
