// Package refclock pairs PPS edges with the UTC seconds the receiver's
// messages name, producing samples: "the clock read L when true time was T".
//
// The receiver's sentences for second S follow the edge of S, after a
// latency that depends on the receiver, its configuration and the line rate
// (tens of milliseconds to more than a second) and can jump when messages
// are added or the line backs up. Two regimes:
//
//   - unaligned (the clock does not know the second yet): an edge is paired
//     with a label only if exactly one edge lies in the configured latency
//     window before the label's arrival. The window must be shorter than a
//     second, or two edges could fit: such a pair is rejected as ambiguous,
//     never guessed. A receiver whose latency exceeds a second needs a
//     window that says so (gnss.nmea_latency = "1s..1.9s").
//   - aligned (the servo has stepped the clock onto GNSS time): the edge
//     whose clock time is nearest to the label's time is paired, as long as
//     it arrived before the label and nothing contradicts it. A label
//     naming a second no received edge can be, and arriving inside the
//     latency window after its nearest edge, is paired with that edge
//     anyway and the servo sees a whole-second offset: that is a time
//     jump, and the servo's guard decides, not the pairer. Arriving outside
//     the window, it is a label whose own edge went missing, and is not
//     paired, unless another edge lies in the window: see Disagree.
//
// The nearest edge alone cannot see a clock that is itself whole seconds
// off (a leap second the kernel did not apply, a step by another program):
// every label pairs with the edge a second from its own, the latency grows
// by that second and the offset reads zero. The latency window can: when
// the nearest edge's latency is outside it and exactly one other edge's is
// inside, at the receiver's usual latency (LatencyAgree), the clock's
// count of seconds and the receiver's disagree. One
// such label may be a stall (sentences a second late, the next pulse
// already in), so it is dropped; DisagreeAfter in a row are not a stall,
// and the window's edge is paired: the servo sees the whole seconds and
// its jump guard decides (holdover, an alarm, an operator's resync).
//
// A u-blox TIM-TP, sent before the pulse it describes, gives that pulse's
// quantisation error; the paired edge is corrected by it (ideal = actual +
// qErr).
package refclock

import (
	"time"
)

// Sample is one paired edge.
type Sample struct {
	Local   time.Time     // the edge on the disciplined clock (qErr applied)
	True    time.Time     // the labelled second on the clock's timescale
	Latency time.Duration // label arrival minus edge
	QErr    bool          // a TIM-TP correction was applied
	// ByWindow: paired by the latency window against the nearest edge
	// (the clock's seconds and the receiver's disagree: see Disagree).
	ByWindow bool
	// Correction is that correction (the receiver's qErr: the pulse's
	// quantisation error, the sawtooth), added to the edge.
	Correction time.Duration
}

// Offset is clock minus truth.
func (s Sample) Offset() time.Duration { return s.Local.Sub(s.True) }

// Reason says why a label produced no sample.
type Reason uint8

// Rejection reasons.
const (
	OK        Reason = iota
	NoEdge           // no edge could belong to this label (PPS missing, or latency outside the window)
	Ambiguous        // more than one edge fits the latency window
	Stale            // the label arrived too long after any fitting edge
	// Disagree: the nearest edge is outside the latency window and another
	// edge is inside it (fewer than DisagreeAfter labels in a row).
	Disagree
	numReasons
)

func (r Reason) String() string {
	return [...]string{"ok", "no_edge", "ambiguous", "stale", "second_disagree"}[r]
}

// Stats counts what the pairer did.
type Stats struct {
	Edges, Paired  uint64
	Rejected       [numReasons]uint64
	Missing, Extra uint64 // pulses missing between edges, extra pulses dropped
	// Discontinuities are edges that went back in time or leapt more than
	// a day (a step of the clock between two edges).
	Discontinuities uint64
	QErrApplied     uint64
}

type edge struct {
	local time.Time
	used  bool
}

// Pairer keeps the recent edges and pairs labels with them.
type Pairer struct {
	lo, hi time.Duration // latency window of the unaligned regime
	maxAge time.Duration // an edge older than this at the label's arrival is stale
	edges  []edge
	qerr   map[int64]int32 // UTC second (Unix) -> qErr ps, from TIM-TP
	// disagree counts the labels in a row whose nearest edge and window
	// edge differ (see Disagree).
	disagree int
	// usual is the latency of the last label paired (the receiver's, as
	// last seen), once one was (usualKnown).
	usual      time.Duration
	usualKnown bool
	// lastWindow is the window edge of the last label counted in
	// disagree: a clock off by whole seconds brings one label a second,
	// each with its own window edge; a backlog read at once brings
	// several with the same one, and counts once.
	lastWindow time.Time
	Stats      Stats
}

// DisagreeAfter is how many labels in a row must find the nearest edge
// outside the latency window and another inside it before the window's
// edge is paired. A stall of the receiver (a starved process, a USB
// hiccup) delays a second or two of sentences, not three; a clock whole
// seconds off stays so. The servo's jump guard then wants three
// consistent samples of its own, so a clock a second off is in holdover
// some six seconds after its labels first disagree.
const DisagreeAfter = 3

// LatencyAgree is how close the window edge's latency must come to the
// receiver's usual one for a label to say the clock's seconds moved. A
// clock that moved by whole seconds leaves the receiver's latency as it
// was, only measured from another edge; a receiver whose sentences got
// later (more of them on a slow line, a backlog after a stall) moves it.
// Taking every latency past the window for a clock a second off, as the
// first version of this check did, stepped a starting clock a second
// wrong behind sentences 1.5 s late (a hog series' kernel lab). 100 ms
// covers the arrival jitter of a loaded host; a receiver that got later
// by a whole second within 100 ms is not told from a clock that moved.
const LatencyAgree = 100 * time.Millisecond

// History is how many edges are kept.
const History = 8

// New returns a pairer with the latency window [lo, hi].
func New(lo, hi time.Duration) *Pairer {
	return &Pairer{lo: lo, hi: hi, maxAge: max(hi, time.Second) + 2*time.Second, qerr: map[int64]int32{}}
}

// Edge records a PPS edge at local clock time t. An edge less than 0.9 s
// after the previous one is an extra pulse (a glitch, a doubled edge) and
// is dropped; gaps of n seconds count n-1 missing pulses. An edge before
// the previous one, or more than a day after it, is a clock that was
// stepped between them (an edge stamped before a step and read after the
// history was shifted for it): the history no longer describes this
// clock and starts again from this edge. (Taking such an edge as "extra"
// once dropped every later one: a box that booted a month off never
// paired after its first step.)
func (p *Pairer) Edge(t time.Time) (extra bool) {
	p.Stats.Edges++
	if n := len(p.edges); n > 0 {
		gap := t.Sub(p.edges[n-1].local)
		switch {
		case gap < 0 || gap > 24*time.Hour:
			p.Stats.Discontinuities++
			p.edges = p.edges[:0]
		case gap < 900*time.Millisecond:
			p.Stats.Extra++
			return true
		case gap > 1500*time.Millisecond:
			p.Stats.Missing += uint64((gap+500*time.Millisecond)/time.Second - 1)
		}
	}
	p.edges = append(p.edges, edge{local: t})
	if len(p.edges) > History {
		p.edges = p.edges[len(p.edges)-History:]
	}
	return false
}

// Shift moves every stored edge by d (the clock was stepped by d).
func (p *Pairer) Shift(d time.Duration) {
	p.disagree = 0
	for i := range p.edges {
		p.edges[i].local = p.edges[i].local.Add(d)
	}
}

// QErr records a TIM-TP: the pulse at UTC second utc has quantisation
// error qErrPS (ideal minus actual).
func (p *Pairer) QErr(utc time.Time, qErrPS int32) {
	p.qerr[utc.Unix()] = qErrPS
	if len(p.qerr) > 2*History {
		cut := utc.Unix() - History
		for k := range p.qerr {
			if k < cut {
				delete(p.qerr, k)
			}
		}
	}
}

// Label pairs the label "true second tru (UTC second utc)" that arrived at
// local time arrival. aligned says the clock already counts the right
// seconds.
func (p *Pairer) Label(utc, tru, arrival time.Time, aligned bool) (Sample, Reason) {
	best := -1
	var bestDist time.Duration
	if aligned {
		for i, e := range p.edges {
			lat := arrival.Sub(e.local)
			if lat < 0 || e.used {
				continue
			}
			d := e.local.Sub(tru).Abs()
			if best < 0 || d < bestDist {
				best, bestDist = i, d
			}
		}
		if best >= 0 {
			if lat := arrival.Sub(p.edges[best].local); lat < p.lo || lat > p.hi {
				i, r := p.outside(best, bestDist, lat, arrival)
				if i < 0 {
					return Sample{}, r
				}
				return p.pair(i, utc, tru, arrival, r == Disagree), OK
			}
		}
		p.disagree = 0
	} else {
		var n int
		if best, n = p.inWindow(arrival); n > 1 {
			p.Stats.Rejected[Ambiguous]++
			return Sample{}, Ambiguous
		}
	}
	if best < 0 {
		p.Stats.Rejected[NoEdge]++
		return Sample{}, NoEdge
	}
	return p.pair(best, utc, tru, arrival, false), OK
}

// outside judges a label whose nearest edge (best, bestDist from the
// label's second) came at latency lat, outside the window. It returns the
// edge to pair (best, or with Disagree the only edge in the window), or -1
// and why the label is rejected.
func (p *Pairer) outside(best int, bestDist, lat time.Duration, arrival time.Time) (int, Reason) {
	// The window's edge first: a clock many seconds ahead finds its
	// nearest edge stale, and would otherwise never see why.
	if w, n := p.inWindow(arrival); n == 1 && p.edges[w].local.Sub(p.edges[best].local).Abs() >= 500*time.Millisecond &&
		p.usualKnown && (arrival.Sub(p.edges[w].local)-p.usual).Abs() <= LatencyAgree && !p.edges[w].local.Equal(p.lastWindow) {
		p.lastWindow = p.edges[w].local
		if p.disagree++; p.disagree < DisagreeAfter {
			p.Stats.Rejected[Disagree]++
			return -1, Disagree
		}
		return w, Disagree
	}
	p.disagree = 0
	if lat > p.maxAge {
		p.Stats.Rejected[Stale]++
		return -1, Stale
	}
	// Whole seconds between the label and its nearest edge are a jump
	// only if the label came at the receiver's usual latency after that
	// edge: a receiver times its sentences by its own pulses, whatever
	// second it names. Outside that window the label's own edge is what
	// is missing (pulse and sentences stalled together: a USB hiccup, a
	// starved process), and an older edge would show the servo a jump
	// that never was (a hog series: a 2 s stall, then a 2 s step before
	// the lock).
	if bestDist >= 500*time.Millisecond {
		p.Stats.Rejected[NoEdge]++
		return -1, NoEdge
	}
	return best, OK
}

// inWindow returns the last unused edge whose latency to arrival lies in
// the window, and how many do.
func (p *Pairer) inWindow(arrival time.Time) (last, n int) {
	last = -1
	for i, e := range p.edges {
		lat := arrival.Sub(e.local)
		if lat >= p.lo && lat <= p.hi && !e.used {
			last = i
			n++
		}
	}
	return last, n
}

// pair marks edge i used and makes its sample.
func (p *Pairer) pair(i int, utc, tru, arrival time.Time, byWindow bool) Sample {
	e := &p.edges[i]
	e.used = true
	s := Sample{Local: e.local, True: tru, Latency: arrival.Sub(e.local), ByWindow: byWindow}
	p.usual, p.usualKnown = s.Latency, true
	if q, ok := p.qerr[utc.Unix()]; ok {
		s.Correction = time.Duration(q) * time.Nanosecond / 1000
		s.Local = s.Local.Add(s.Correction)
		s.QErr = true
		p.Stats.QErrApplied++
	}
	p.Stats.Paired++
	return s
}
