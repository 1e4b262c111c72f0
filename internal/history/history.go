// Package history keeps the last 24 hours of sitegm's figures in memory,
// at a fixed size, for the status page's plots: each series at two
// resolutions (the last hour in 10-second buckets, the day in 2-minute
// buckets), each bucket its minimum, maximum, mean and last value.
//
// The series are named by the configuration (clock, GNSS, each port and
// monitored host), never by what arrives from the network, so their
// number is bounded by the file; each holds 360 + 720 buckets.
package history

import (
	"math"
	"sort"
	"sync"
	"time"
)

// Resolutions and spans of the two rings.
const (
	FineStep   = 10 * time.Second
	FineSpan   = time.Hour
	CoarseStep = 2 * time.Minute
	CoarseSpan = 24 * time.Hour
)

// Point is one bucket.
type Point struct {
	T                   time.Time // the bucket's start
	Min, Max, Sum, Last float64
	N                   int
}

// Mean is the bucket's average.
func (p Point) Mean() float64 { return p.Sum / float64(p.N) }

// ring is a fixed-size circle of buckets.
type ring struct {
	step time.Duration
	pts  []Point // len = capacity once full
	next int     // where the next new bucket goes once full
	n    int     // capacity
}

func newRing(step, span time.Duration) *ring {
	n := int(span / step)
	return &ring{step: step, pts: make([]Point, 0, n), n: n}
}

func (r *ring) add(t time.Time, v float64) {
	b := t.Truncate(r.step)
	if len(r.pts) > 0 {
		last := &r.pts[(r.next-1+len(r.pts))%len(r.pts)]
		if !b.After(last.T) {
			// The current bucket (or a late value for it: kept there,
			// never written into the past).
			last.Min, last.Max = math.Min(last.Min, v), math.Max(last.Max, v)
			last.Sum += v
			last.N++
			last.Last = v
			return
		}
	}
	p := Point{T: b, Min: v, Max: v, Sum: v, Last: v, N: 1}
	if len(r.pts) < r.n {
		r.pts = append(r.pts, p)
		r.next = len(r.pts) % r.n
		return
	}
	r.pts[r.next] = p
	r.next = (r.next + 1) % r.n
}

// since returns the buckets from from on, oldest first.
func (r *ring) since(from time.Time) []Point {
	out := make([]Point, 0, len(r.pts))
	start := 0
	if len(r.pts) == r.n {
		start = r.next
	}
	for i := 0; i < len(r.pts); i++ {
		p := r.pts[(start+i)%len(r.pts)]
		if !p.T.Before(from.Truncate(r.step)) {
			out = append(out, p)
		}
	}
	return out
}

// Series is one figure over time.
type Series struct {
	Name, Unit string
	fine       *ring
	coarse     *ring
}

// Store holds the series.
type Store struct {
	mu     sync.Mutex
	series map[string]*Series
}

// New returns an empty store.
func New() *Store { return &Store{series: map[string]*Series{}} }

// Add records value v of series name (unit for display) at t. NaN and
// infinities are not recorded (an unknown is a gap, not a point).
func (s *Store) Add(name, unit string, t time.Time, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.series[name]
	if se == nil {
		se = &Series{Name: name, Unit: unit, fine: newRing(FineStep, FineSpan), coarse: newRing(CoarseStep, CoarseSpan)}
		s.series[name] = se
	}
	se.fine.add(t, v)
	se.coarse.add(t, v)
}

// Points returns series name's buckets over the last span before now:
// the fine ring for an hour or less, the coarse one beyond.
func (s *Store) Points(name string, now time.Time, span time.Duration) (unit string, pts []Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.series[name]
	if se == nil {
		return "", nil
	}
	r := se.coarse
	if span <= FineSpan {
		r = se.fine
	}
	return se.Unit, r.since(now.Add(-span))
}

// Names lists the series, sorted.
func (s *Store) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.series))
	for n := range s.series {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
