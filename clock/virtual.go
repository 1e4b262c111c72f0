package clock

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Virtual is a software clock defined over the host's CLOCK_REALTIME:
//
//	v(h) = v0 + (h - h0) * (1 + ppb*1e-9)
//
// re-anchored (h0, v0) at every adjustment so the line stays continuous.
// It never touches the host clock, which makes it the clock of tests, the
// demo and `make run`; it keeps TAI, like the PHC it stands in for.
//
// Kernel timestamps (SO_TIMESTAMPING software stamps, SOCK samples, PPS
// device stamps) are CLOCK_REALTIME, so FromHost maps them exactly: it uses
// the segment that was in force at the host time given, from a short
// history, not today's frequency extrapolated backwards.
//
// Reads are lock-free (one atomic load); adjustments take a mutex.
type Virtual struct {
	mu   sync.Mutex
	cur  atomic.Pointer[vseg]
	host func() time.Time
}

type vseg struct {
	h0, v0 int64 // host and virtual Unix nanoseconds at the anchor
	ppb    float64
	prev   atomic.Pointer[vseg] // the segment before, for FromHost on older stamps
	depth  int
}

// virtualHistory bounds how many past segments FromHost can use: at one
// adjustment a second this covers stamps up to a minute old, more than any
// kernel timestamp waits in a socket queue.
const virtualHistory = 64

// VirtualMaxPPB is the adjustment range, as wide as common PHCs (i210:
// ±62.5 ppm is narrower; a virtual clock has no hardware limit, and a wide
// range lets it follow a host clock that is itself being slewed).
const VirtualMaxPPB = 500000

// NewVirtual starts a virtual clock at host time plus offset (e.g. TAI-UTC
// so that it starts on TAI), free-running at the host's rate.
func NewVirtual(offset time.Duration) *Virtual {
	return NewVirtualOver(time.Now, offset)
}

// NewVirtualOver builds a virtual clock over another host clock reader
// (simulations and tests).
func NewVirtualOver(host func() time.Time, offset time.Duration) *Virtual {
	v := &Virtual{host: host}
	h := host().UnixNano()
	v.cur.Store(&vseg{h0: h, v0: h + int64(offset)})
	return v
}

func (s *vseg) at(h int64) int64 {
	d := h - s.h0
	return s.v0 + d + int64(math.Round(float64(d)*s.ppb*1e-9))
}

// Name implements Clock.
func (v *Virtual) Name() string { return "virtual" }

// Timescale implements Clock.
func (v *Virtual) Timescale() Timescale { return TAI }

// Now implements Clock.
func (v *Virtual) Now() (time.Time, error) { return v.FromHost(v.host()), nil }

// NowTime is Now for callers that cannot fail.
func (v *Virtual) NowTime() time.Time { return v.FromHost(v.host()) }

// FromHost maps a CLOCK_REALTIME time to the virtual clock.
func (v *Virtual) FromHost(h time.Time) time.Time {
	hn := h.UnixNano()
	s := v.cur.Load()
	for hn < s.h0 {
		p := s.prev.Load()
		if p == nil {
			break
		}
		s = p
	}
	return time.Unix(0, s.at(hn))
}

// ToHost maps a virtual time back to CLOCK_REALTIME (to schedule a timer
// for a virtual instant), using the current segment.
func (v *Virtual) ToHost(t time.Time) time.Time {
	s := v.cur.Load()
	d := float64(t.UnixNano()-s.v0) / (1 + s.ppb*1e-9)
	return time.Unix(0, s.h0+int64(math.Round(d)))
}

// Frequency implements Clock.
func (v *Virtual) Frequency() (float64, error) { return v.cur.Load().ppb, nil }

// SetFrequency implements Clock.
func (v *Virtual) SetFrequency(ppb float64) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	ppb = math.Max(-VirtualMaxPPB, math.Min(VirtualMaxPPB, ppb))
	v.anchor(0, ppb)
	return nil
}

// Step implements Clock.
func (v *Virtual) Step(d time.Duration) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.anchor(d, v.cur.Load().ppb)
	return nil
}

func (v *Virtual) anchor(step time.Duration, ppb float64) {
	old := v.cur.Load()
	h := v.host().UnixNano()
	if h < old.h0 {
		h = old.h0 // the host clock went back: keep segments ordered
	}
	n := &vseg{h0: h, v0: old.at(h) + int64(step), ppb: ppb, depth: old.depth + 1}
	n.prev.Store(old)
	if n.depth > virtualHistory {
		// Cut the chain behind the oldest segment worth keeping.
		s := n
		for i := 0; i < virtualHistory; i++ {
			p := s.prev.Load()
			if p == nil {
				break
			}
			s = p
		}
		s.prev.Store(nil)
		n.depth = virtualHistory
	}
	v.cur.Store(n)
}

// MaxFrequency implements Clock.
func (v *Virtual) MaxFrequency() float64 { return VirtualMaxPPB }
