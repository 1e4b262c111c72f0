package pps

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSeqTracker(t *testing.T) {
	var s seqTracker
	steps := []struct {
		seq    uint32
		fresh  bool
		missed uint32
	}{{0, false, 0}, {1, true, 0}, {1, false, 0}, {2, true, 0}, {5, true, 2}, {0xffffffff, true, 0xffffffff - 6}, {0, true, 0}}
	t0 := time.Unix(1000, 0)
	for i, st := range steps {
		began := t0.Add(time.Duration(i) * time.Second)
		f, m, after := s.next(st.seq, began)
		if f != st.fresh || m != st.missed {
			t.Errorf("step %d seq %d: fresh %v missed %d", i, st.seq, f, m)
		}
		// A new edge came after the previous fetch began (it read the
		// older count); the first fetch's edge may be of any age.
		want := began.Add(-time.Second)
		if i == 0 {
			want = time.Time{}
		}
		if !after.Equal(want) {
			t.Errorf("step %d: after %v, want %v", i, after, want)
		}
	}
}

func TestEdgeFilter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	// Pulses of every plausible width but 500 ms, the fourth pulse's
	// trailing edge missed and the sixth's leading edge missed.
	for _, width := range []time.Duration{time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond,
		490 * time.Millisecond, 510 * time.Millisecond, 800 * time.Millisecond, 900 * time.Millisecond} {
		var events []time.Time
		for i := 0; i < 8; i++ {
			lead := t0.Add(time.Duration(i) * time.Second).Add(time.Duration(i%3) * time.Microsecond)
			if i != 5 {
				events = append(events, lead)
			}
			if i != 3 {
				events = append(events, lead.Add(width))
			}
		}
		for _, trailing := range []bool{false, true} {
			f := EdgeFilter{Trailing: trailing, Width: width}
			var kept []time.Time
			for _, e := range events {
				if f.Push(e, 0) {
					kept = append(kept, e)
				}
			}
			want := width
			if !trailing {
				want = 0
			}
			if len(kept) < 5 {
				t.Fatalf("width %v trailing %v: kept %v", width, trailing, kept)
			}
			for _, k := range kept {
				if d := k.Sub(t0) % time.Second; (d - want).Abs() > 10*time.Microsecond {
					t.Errorf("width %v trailing %v: kept an edge %v into its second", width, trailing, d)
				}
			}
			// The width is measured from a pulse's two edges (the last
			// pulse, i=7: its lead 7 us after the second (7%3 us)).
			if got := f.PulseWidth(); (got - width).Abs() > 10*time.Microsecond {
				t.Errorf("width %v trailing %v: measured %v", width, trailing, got)
			}
		}
	}
	// Driver-reported polarity wins.
	f := EdgeFilter{}
	if !f.Push(t0, unix.PTP_RISING_EDGE) || f.Push(t0.Add(time.Second), unix.PTP_FALLING_EDGE) {
		t.Error("flags ignored")
	}
	if f.PulseWidth() != 0 {
		t.Errorf("a falling edge a second after the rising one measured a width %v", f.PulseWidth())
	}
	f.Push(t0.Add(2*time.Second), unix.PTP_RISING_EDGE)
	f.Push(t0.Add(2*time.Second+150*time.Millisecond), unix.PTP_FALLING_EDGE)
	if f.PulseWidth() != 150*time.Millisecond {
		t.Errorf("flagged edges: width %v", f.PulseWidth())
	}
	// A driver that only reports one edge: every event is a leading edge.
	f = EdgeFilter{}
	f.Push(t0, 0)
	if !f.Push(t0.Add(time.Second), 0) || !f.Push(t0.Add(2*time.Second), 0) {
		t.Error("single-edge stream")
	}
}

func TestSockSource(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pps.sock")
	// A stale socket from a previous run is replaced.
	if l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"}); err == nil {
		l.Close()
	}
	src := &SockSource{Path: path}
	c, err := src.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan Edge, 4)
	done := make(chan error, 1)
	go func() { done <- src.Serve(ctx, c, out) }()

	cl, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	edge := time.Date(2026, 11, 24, 20, 0, 0, 999_999_950, time.UTC)
	cl.Write([]byte("garbage"))
	cl.Write(NewEdgeSample(edge, edge.Add(50), 1).Marshal())
	select {
	case e := <-out:
		if !e.Time.Equal(edge) || e.Clock != Realtime || e.Leap != 1 {
			t.Errorf("edge %+v", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no edge")
	}
	if src.Stats().Bad.Load() != 1 || src.Stats().Edges.Load() != 1 {
		t.Errorf("stats bad %d edges %d", src.Stats().Bad.Load(), src.Stats().Edges.Load())
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Serve did not stop")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// TestPulseWidth: a kernel PPS device's assert and clear stamps give the
// width only when the clear edge is the same pulse's.
func TestPulseWidth(t *testing.T) {
	for _, c := range []struct {
		a, c unix.PPSKTime
		w    time.Duration
		ok   bool
	}{
		{unix.PPSKTime{Sec: 100, Nsec: 5}, unix.PPSKTime{Sec: 100, Nsec: 100000005}, 100 * time.Millisecond, true},
		{unix.PPSKTime{Sec: 100, Nsec: 900000000}, unix.PPSKTime{Sec: 101, Nsec: 100000000}, 200 * time.Millisecond, true},
		{unix.PPSKTime{Sec: 101}, unix.PPSKTime{Sec: 100, Nsec: 100000000}, 0, false}, // the clear is the previous pulse's
		{unix.PPSKTime{Sec: 100}, unix.PPSKTime{}, 0, false},                          // nothing cleared yet
		{unix.PPSKTime{Sec: 100}, unix.PPSKTime{Sec: 102}, 0, false},                  // a pulse missed
	} {
		w, ok := pulseWidth(c.a, c.c)
		if ok != c.ok || (ok && w != c.w) {
			t.Errorf("assert %v clear %v: %v %v", c.a, c.c, w, ok)
		}
	}
}

// A fetch that waited returns an edge that came after the fetch began,
// unless an edge of the other kind came too and may have woken it.
func TestWaitedFor(t *testing.T) {
	began, prev := time.Unix(1000, 0), time.Unix(999, 0)
	for _, c := range []struct {
		waited, otherFresh bool
		want               time.Time
	}{{true, false, began}, {true, true, prev}, {false, false, prev}, {false, true, prev}} {
		if got := waitedFor(c.waited, c.otherFresh, began, prev); !got.Equal(c.want) {
			t.Errorf("waited %v other fresh %v: %v, want %v", c.waited, c.otherFresh, got, c.want)
		}
	}
}

// The EXTTS reader knows since when an event can have been queued: events
// waiting at the open may be of any age; once a look found the queue
// empty, every later event came after that look (a pipe stands in for
// the PHC's queue: both are read whole events at a time and polled).
func TestQueueReaderKnowsWhenTheQueueWasEmpty(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	q := queueReader{rc: rc}
	ev := make([]byte, 16)
	if _, err := w.Write(append(append([]byte{}, ev...), ev...)); err != nil { // two events before the first read
		t.Fatal(err)
	}
	for i := range 2 {
		_, after, err := q.read(ev)
		if err != nil || !after.IsZero() {
			t.Fatalf("event %d queued before any look: after %v err %v", i, after, err)
		}
	}
	// A look that finds the queue empty (the read then waits, here until
	// a deadline: a look is what is wanted, not an event).
	start := time.Now()
	for q.empty.IsZero() {
		r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := q.read(ev); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a read of an empty queue: %v", err)
		}
	}
	looked := q.empty
	if looked.Before(start) {
		t.Fatalf("the empty look at %v, before the reads began at %v", looked, start)
	}
	r.SetReadDeadline(time.Time{})
	for i := range 2 { // two events after the look: both came after it
		if _, err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
		if n, after, err := q.read(ev); err != nil || n != len(ev) || !after.Equal(looked) {
			t.Errorf("event %d after the look: after %v (the look %v) err %v", i, after, looked, err)
		}
	}
}
