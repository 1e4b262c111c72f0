package pps

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"sitegm/clock/timebase"
	"sitegm/hw/nic"
)

// Edge is one PPS edge as a source timestamped it.
type Edge struct {
	// Time is the edge on the source's clock.
	Time time.Time
	// Clock names that clock: "realtime" (kernel PPS, SOCK) or the PHC
	// device of an EXTTS channel.
	Clock string
	// Leap is the SOCK leap flag (0 none, 1 insert, 2 delete), if any.
	Leap int
	// After is a CLOCK_MONOTONIC time (time.Now) the pulse cannot have
	// come before: when the source last saw that no newer pulse was
	// waiting. A step of Clock since then leaves Time on either side of
	// it (timebase.FromClockAfter). Zero: the source cannot tell (SOCK,
	// a device's first fetch).
	After time.Time
}

// Realtime is the Clock of edges stamped on CLOCK_REALTIME.
const Realtime = timebase.Realtime

// Stats counts what a source saw. Safe to read while Run is going.
type Stats struct {
	Edges    atomic.Uint64
	Bad      atomic.Uint64 // malformed input dropped (SOCK datagrams)
	Missed   atomic.Uint64 // edges the kernel counted but we never fetched
	Repeated atomic.Uint64 // the same edge fetched twice (no new pulse)
	Dropped  atomic.Uint64 // edges of the unwanted polarity
	// BeforeStep counts edges dropped because their clock was stepped
	// while they were on their way (timebase.ErrBeforeStep).
	BeforeStep atomic.Uint64
	// Width is the last pulse's measured width, ns (0: not measured, as
	// from SOCK, or a device that captures one edge only).
	Width atomic.Int64
}

// Source produces edges until ctx ends.
type Source interface {
	Name() string
	Run(ctx context.Context, out chan<- Edge) error
	Stats() *Stats
}

func send(ctx context.Context, out chan<- Edge, e Edge) bool {
	select {
	case out <- e:
		return true
	case <-ctx.Done():
		return false
	}
}

// Keep runs src until ctx ends, starting it again two seconds after it
// fails (its device may appear after sitegm starts, or come back after a
// driver reload); failed hears of the first failure of a run of them.
func Keep(ctx context.Context, src Source, out chan<- Edge, failed func(error)) {
	said := false
	for ctx.Err() == nil {
		err := src.Run(ctx, out)
		if ctx.Err() != nil {
			return
		}
		if !said {
			failed(err)
			said = true
		}
		select {
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
}

// Spec names a source as gnss.pps does: Kind "kernel" (/dev/ppsN at
// Path), "sock" (a SOCK socket at Path), "phc" (channel Channel of the
// PHC of the interface or device at Path) or "none"; Clear takes the
// clear edge (kernel, PHC), Width the pulse's width (PHC: both edges are
// stamped, the width tells them apart).
type Spec struct {
	Kind, Path string
	Channel    int
	Clear      bool
	Width      time.Duration
}

// Open makes the source spec names; a PHC's pulse must be stamped on
// the disciplined clock, the PHC device disciplined ("" when it is not a
// PHC). "none" is no source (nil).
func Open(spec Spec, disciplined string) (Source, error) {
	switch spec.Kind {
	case "kernel":
		return &KernelSource{Path: spec.Path, Clear: spec.Clear}, nil
	case "sock":
		return &SockSource{Path: spec.Path}, nil
	case "phc":
		dev, err := nic.PHCDevice(spec.Path)
		if err != nil {
			return nil, err
		}
		if dev != disciplined {
			return nil, fmt.Errorf("gnss.pps %s: the PPS must be timestamped on the disciplined PHC", dev)
		}
		return &ExttsSource{Device: dev, Channel: uint32(spec.Channel), Clear: spec.Clear, Width: spec.Width}, nil
	case "none", "":
		return nil, nil
	}
	return nil, fmt.Errorf("gnss.pps: unknown kind %q", spec.Kind)
}
