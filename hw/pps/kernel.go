package pps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sitegm/clock"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RFC 2783 / linux/pps.h mode bits.
const (
	ppsCaptureAssert = 0x01
	ppsCaptureClear  = 0x02
	ppsCanWait       = 0x100
	ppsTSFmtTSpec    = 0x1000
	ppsAPIVers       = 1
)

// KernelSource reads a kernel PPS device (/dev/ppsN: pps-gpio, pps-ldisc on
// a serial DCD line) with PPS_FETCH. Its timestamps are CLOCK_REALTIME.
type KernelSource struct {
	Path string
	// Clear selects the clear (falling) edge instead of assert.
	Clear bool
	stats Stats
}

// Name implements Source.
func (k *KernelSource) Name() string { return k.Path }

// Stats implements Source.
func (k *KernelSource) Stats() *Stats { return &k.stats }

// seqTracker turns the kernel's edge counters into new, missed and repeated
// edges, and says since when a new one can have come.
type seqTracker struct {
	have bool
	last uint32
	// seen is when the fetch that read last began (CLOCK_MONOTONIC).
	seen time.Time
}

// next takes the sequence seq a fetch that began at began read: whether
// it is a new edge, how many were missed before it (the counter is 32
// bits and wraps), and after, a time the new edge cannot have come
// before (pps.Edge.After). The kernel's counter had not moved when the
// previous fetch read it, and that fetch began before it read: a new edge
// came after that beginning. The first fetch's edge may be of any age
// (zero after).
func (t *seqTracker) next(seq uint32, began time.Time) (fresh bool, missed uint32, after time.Time) {
	after, t.seen = t.seen, began
	if !t.have {
		t.have, t.last = true, seq
		return seq != 0, 0, time.Time{} // sequence 0: nothing captured yet
	}
	d := seq - t.last
	t.last = seq
	if d == 0 {
		return false, 0, after
	}
	return true, d - 1, after
}

// waitedFor narrows the time a new edge came after (seqTracker.next's
// after) for a fetch that began at began and waited: the kernel wakes it
// for an event after it began (PPS_FETCH waits for its event counter to
// move), and when no edge of the other kind came since the last read,
// that event was the wanted edge, which the fetch returns the latest of.
// With the other edge fresh too, it may have been the one that woke the
// fetch, and the wanted edge older.
func waitedFor(waited, otherFresh bool, began, after time.Time) time.Time {
	if waited && !otherFresh {
		return began
	}
	return after
}

// pulseWidth is assert to clear when the clear edge is the same pulse's
// (less than a second after its assert).
func pulseWidth(assert, clear unix.PPSKTime) (time.Duration, bool) {
	a, c := time.Unix(assert.Sec, int64(assert.Nsec)), time.Unix(clear.Sec, int64(clear.Nsec))
	w := c.Sub(a)
	return w, assert.Sec != 0 && clear.Sec != 0 && w > 0 && w < time.Second
}

// Run implements Source.
func (k *KernelSource) Run(ctx context.Context, out chan<- Edge) error {
	f, err := os.OpenFile(k.Path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	var caps int32
	if err := clock.Ioctl(fd, unix.PPS_GETCAP, unsafe.Pointer(&caps)); err != nil {
		return fmt.Errorf("%s: PPS_GETCAP: %w", k.Path, err)
	}
	want := int32(ppsCaptureAssert)
	if k.Clear {
		want = ppsCaptureClear
	}
	if caps&want == 0 {
		return fmt.Errorf("%s cannot capture the %s edge", k.Path, map[bool]string{false: "assert", true: "clear"}[k.Clear])
	}
	// Both edges where the device captures both: the other edge gives the
	// pulse's width (a check of gnss.pps_width and of the wiring), and
	// fetches it wakes that are not a new wanted edge are told apart by
	// its own sequence.
	mode := want
	if caps&(ppsCaptureAssert|ppsCaptureClear) == ppsCaptureAssert|ppsCaptureClear {
		mode = ppsCaptureAssert | ppsCaptureClear
	}
	params := unix.PPSKParams{Api_version: ppsAPIVers, Mode: mode | ppsTSFmtTSpec}
	if err := clock.Ioctl(fd, unix.PPS_SETPARAMS, unsafe.Pointer(&params)); err != nil && !errors.Is(err, unix.EPERM) {
		// EPERM: not allowed to change the parameters (another user set
		// them); fetching still works if they suit us.
		return fmt.Errorf("%s: PPS_SETPARAMS: %w", k.Path, err)
	}
	canWait := caps&ppsCanWait != 0
	var seq, other seqTracker
	for ctx.Err() == nil {
		var fd4 unix.PPSFData
		if canWait {
			// Block up to a second for the next edge, so that ctx is
			// noticed within a second.
			fd4.Timeout = unix.PPSKTime{Sec: 1}
		}
		began := time.Now()
		err := clock.Ioctl(fd, unix.PPS_FETCH, unsafe.Pointer(&fd4))
		switch {
		case errors.Is(err, unix.ETIMEDOUT), errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("%s: PPS_FETCH: %w", k.Path, err)
		}
		s, ts, cs := fd4.Info.Assert_sequence, fd4.Info.Assert_tu, fd4.Info.Clear_sequence
		if k.Clear {
			s, ts, cs = fd4.Info.Clear_sequence, fd4.Info.Clear_tu, fd4.Info.Assert_sequence
		}
		otherFresh, _, _ := other.next(cs, began)
		fresh, missed, after := seq.next(s, began)
		after = waitedFor(canWait, otherFresh, began, after)
		k.stats.Missed.Add(uint64(missed))
		if w, ok := pulseWidth(fd4.Info.Assert_tu, fd4.Info.Clear_tu); ok {
			k.stats.Width.Store(int64(w))
		}
		if !fresh && otherFresh {
			continue // the other edge of the pulse: not a repeat
		}
		if !fresh {
			k.stats.Repeated.Add(1)
			if !canWait {
				time.Sleep(100 * time.Millisecond)
			}
			continue
		}
		k.stats.Edges.Add(1)
		if !send(ctx, out, Edge{Time: time.Unix(ts.Sec, int64(ts.Nsec)), Clock: Realtime, After: after}) {
			return nil
		}
	}
	return nil
}
