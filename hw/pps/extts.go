package pps

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExttsSource timestamps the PPS on a NIC's PHC: the receiver's pulse wired
// to a software-definable pin (SDP0 on an i210/i226), routed to an external
// timestamp channel. Timestamps are on the PHC.
//
// i210, i225 and i226 refuse a request for one edge under
// PTP_EXTTS_REQUEST2's strict flag checking, so both edges are requested
// and the wanted one is kept by its place in the pulse (EdgeFilter).
type ExttsSource struct {
	Device  string        // /dev/ptpN
	Channel uint32        // EXTTS channel, also the pin index
	Clear   bool          // keep the trailing edge instead of the leading one
	Width   time.Duration // the pulse's width (EdgeFilter)
	stats   Stats
}

// Name implements Source.
func (x *ExttsSource) Name() string { return fmt.Sprintf("phc:%s:%d", x.Device, x.Channel) }

// Stats implements Source.
func (x *ExttsSource) Stats() *Stats { return &x.stats }

// EdgeFilter keeps one polarity out of a stream of both edges. The gaps
// between edges alternate between the pulse's width w and 1 s - w: an
// edge w after the one before is a trailing edge, one 1 s - w after it a
// leading edge; after a gap of whole seconds (an edge missed, or a driver
// that reports one polarity only) an edge is of the same kind as the one
// before. This needs the width (gnss.pps_width): a fixed threshold at
// 500 ms, as before, took the trailing edge for the leading one with any
// pulse wider than half a second, and locked that far off. A pulse of
// exactly half a second cannot be told apart at all (the configuration
// refuses it). When the driver says which edge it saw (event flags), that
// is used instead.
type EdgeFilter struct {
	Trailing bool
	// Width is the pulse's width; zero means 100 ms, a timing receiver's
	// usual.
	Width    time.Duration
	last     time.Time
	have     bool
	lastLead bool // the previous edge's polarity
	known    bool // whether that polarity is known
	width    time.Duration
}

// PulseWidth is the last pulse's width as measured (a trailing edge less
// than a second after a leading one); 0 until one was.
func (f *EdgeFilter) PulseWidth() time.Duration { return f.width }

// measure notes the width when a trailing edge follows a leading one.
func (f *EdgeFilter) measure(prev, t time.Time, prevLead, prevKnown, lead bool) {
	if prevKnown && prevLead && !lead {
		if w := t.Sub(prev); w > 0 && w < time.Second {
			f.width = w
		}
	}
}

// Push takes one event; it returns whether it is the wanted edge.
func (f *EdgeFilter) Push(t time.Time, flags uint32) bool {
	prev, had, prevLead, prevKnown := f.last, f.have, f.lastLead, f.known && f.have
	if flags&(unix.PTP_RISING_EDGE|unix.PTP_FALLING_EDGE) != 0 && flags&(unix.PTP_RISING_EDGE|unix.PTP_FALLING_EDGE) != unix.PTP_RISING_EDGE|unix.PTP_FALLING_EDGE {
		f.last, f.have = t, true
		f.lastLead, f.known = flags&unix.PTP_RISING_EDGE != 0, true
		f.measure(prev, t, prevLead, prevKnown, f.lastLead)
		return (flags&unix.PTP_FALLING_EDGE != 0) == f.Trailing
	}
	f.last, f.have = t, true
	if !had {
		return false // unknown polarity until we have a gap
	}
	w := f.Width
	if w <= 0 {
		w = 100 * time.Millisecond
	}
	// Half the distance between the cases (w, 1 s - w and whole seconds),
	// at most 50 ms: edge noise is microseconds, so this only has to keep
	// the cases apart.
	tol := min(50*time.Millisecond, (time.Second-2*w).Abs()/2, w/2, (time.Second-w)/2)
	frac := t.Sub(prev) % time.Second
	near := func(a, b time.Duration) bool { return (a - b).Abs() < tol }
	var lead bool
	switch {
	case near(frac, w):
		lead = false
	case near(frac, time.Second-w):
		lead = true
	case near(frac, 0) || near(frac, time.Second):
		// Whole seconds since the last edge: the same polarity; a driver
		// that timestamps one polarity only gives leading edges.
		lead = !f.known || f.lastLead
	default:
		f.known = false
		return false // not this pulse's rhythm (a glitch)
	}
	f.measure(prev, t, prevLead, prevKnown, lead)
	f.lastLead, f.known = lead, true
	return lead != f.Trailing
}

// pinAndRequest routes the pin and enables the channel (both edges).
func (x *ExttsSource) pinAndRequest(fd int, enable bool) error {
	if enable {
		pd := unix.PtpPinDesc{Index: x.Channel, Func: unix.PTP_PF_EXTTS, Chan: x.Channel}
		if err := unix.IoctlPtpPinSetfunc(fd, &pd); err != nil && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOTTY) {
			// Some drivers have fixed pins (no PTP_PIN_SETFUNC): go on.
			return fmt.Errorf("PTP_PIN_SETFUNC pin %d: %w", x.Channel, err)
		}
	}
	req := unix.PtpExttsRequest{Index: x.Channel}
	if enable {
		req.Flags = unix.PTP_ENABLE_FEATURE | unix.PTP_RISING_EDGE | unix.PTP_FALLING_EDGE
	}
	return unix.IoctlPtpExttsRequest(fd, &req)
}

// Run implements Source.
func (x *ExttsSource) Run(ctx context.Context, out chan<- Edge) error {
	fd, err := unix.Open(x.Device, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), x.Device) // pollable: reads honour deadlines
	defer f.Close()
	if err := x.pinAndRequest(fd, true); err != nil {
		return fmt.Errorf("%s: %w", x.Device, err)
	}
	defer x.pinAndRequest(fd, false)
	stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Now()) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("%s: %w", x.Device, err)
	}
	q := queueReader{rc: rc}
	filt := EdgeFilter{Trailing: x.Clear, Width: x.Width}
	var ev unix.PtpExttsEvent
	buf := make([]byte, unsafe.Sizeof(ev))
	for {
		n, after, err := q.read(buf)
		if err == nil && n != len(buf) {
			err = fmt.Errorf("short read: %d of %d bytes", n, len(buf))
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: read EXTTS: %w", x.Device, err)
		}
		ev = *(*unix.PtpExttsEvent)(unsafe.Pointer(&buf[0]))
		if ev.Index != x.Channel {
			continue
		}
		t := time.Unix(ev.T.Sec, int64(ev.T.Nsec))
		keep := filt.Push(t, ev.Flags)
		x.stats.Width.Store(int64(filt.PulseWidth()))
		if !keep {
			x.stats.Dropped.Add(1)
			continue
		}
		x.stats.Edges.Add(1)
		if !send(ctx, out, Edge{Time: t, Clock: x.Device, After: after}) {
			return nil
		}
	}
}
