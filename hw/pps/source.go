package pps

import (
	"context"
	"sync/atomic"
	"time"

	"sitegm/clock/timebase"
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
