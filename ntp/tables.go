package ntp

import (
	"net/netip"
	"sync"
	"time"
)

// Xleave maps our receive timestamps to the transmit timestamps of the
// replies that carried them, for the interleaved mode. It is shared by
// all workers of an interface (a client's successive requests may come
// from different source ports and land on different workers) and guarded
// by striped locks. It is direct-mapped and of fixed size: an overwritten
// entry only costs its client one exchange in basic mode.
type Xleave struct {
	rx, tx []uint64
	mask   uint64
	locks  [64]paddedMutex
}

type paddedMutex struct {
	sync.Mutex
	_ [56]byte // one cache line per lock
}

// NewXleave allocates a table of at least n entries.
func NewXleave(n int) *Xleave {
	size := 1
	for size < n {
		size <<= 1
	}
	return &Xleave{rx: make([]uint64, size), tx: make([]uint64, size), mask: uint64(size - 1)}
}

func (x *Xleave) slot(k uint64) (uint64, *paddedMutex) {
	k ^= k >> 29
	k *= 0xbf58476d1ce4e5b9
	k ^= k >> 32
	i := k & x.mask
	return i, &x.locks[i&63]
}

// unique makes a receive timestamp distinct from the one already stored
// in its slot, so that an origin names one reply.
func (x *Xleave) unique(rx uint64) uint64 {
	for {
		i, l := x.slot(rx)
		l.Lock()
		same := x.rx[i] == rx
		l.Unlock()
		if !same {
			return rx
		}
		rx++
	}
}

func (x *Xleave) lookup(rx uint64) (uint64, bool) {
	if rx == 0 {
		return 0, false
	}
	i, l := x.slot(rx)
	l.Lock()
	defer l.Unlock()
	if x.rx[i] != rx {
		return 0, false
	}
	return x.tx[i], true
}

func (x *Xleave) insert(rx, tx uint64) {
	i, l := x.slot(rx)
	l.Lock()
	x.rx[i], x.tx[i] = rx, tx
	l.Unlock()
}

// update records the kernel's transmit time of the reply that carried
// receive timestamp rx. A transmit time can only follow its own receive
// time, and within the second a reply takes at most to leave: anything
// else is not this reply's time and is not stored, so the estimate made
// when the reply was built stays (it is never later than the reply's
// real departure).
func (x *Xleave) update(rx, tx uint64) {
	if tx <= rx || tx-rx >= 1<<32 {
		return
	}
	i, l := x.slot(rx)
	l.Lock()
	if x.rx[i] == rx {
		x.tx[i] = tx
	}
	l.Unlock()
}

// RateTable limits requests per client address, in the spirit of
// chrony's ratelimit: each address has a credit of time that refills at
// real time up to burst intervals and that each request spends one
// interval of. A client out of credit gets one Kiss-o'-Death, then
// nothing until its credit is back (another KoD at most once per burst
// intervals). 4-way set-associative and of fixed size: a flood of spoofed
// addresses evicts the least recently seen entries and cannot grow
// memory; an evicted client starts again with full credit, so it is never
// punished for someone else's flood.
//
// One table serves all the workers of an interface (striped locks, as
// Xleave): the kernel spreads a client's requests over the workers by
// source port, so a table per worker let a client that changes its port
// with every request have a burst on each.
type RateTable struct {
	sets     []rateSet
	mask     uint32
	interval int64
	full     int64
	locks    [64]paddedMutex
}

type rateEntry struct {
	addr   [16]byte
	used   bool
	credit int64 // ns
	last   int64 // mono ns
	kodAt  int64
}

type rateSet [4]rateEntry

type rateVerdict int

const (
	rateOK rateVerdict = iota
	rateKoD
	rateDrop
)

// NewRateTable makes a table for at least entries client addresses that
// allows burst requests at once and one per interval on average.
func NewRateTable(entries int, interval time.Duration, burst int) *RateTable {
	n := 1
	for n*4 < entries {
		n <<= 1
	}
	return &RateTable{sets: make([]rateSet, n), mask: uint32(n - 1), interval: int64(interval), full: int64(max(1, burst)) * int64(interval)}
}

// Allow reports whether addr may be served at now (ns on a monotonic
// scale): its credit covers one more request. For callers that send no
// Kiss-o'-Death (NTS-KE admission): a KoD verdict is a refusal too.
func (t *RateTable) Allow(addr netip.Addr, now int64) bool { return t.check(addr, now) == rateOK }

// Size is how many client addresses the table holds at most.
func (t *RateTable) Size() int { return len(t.sets) * len(rateSet{}) }

func (t *RateTable) check(addr netip.Addr, now int64) rateVerdict {
	a := addr.As16()
	h := uint32(2166136261)
	for _, c := range a {
		h = (h ^ uint32(c)) * 16777619
	}
	l := &t.locks[h&t.mask&63]
	l.Lock()
	defer l.Unlock()
	set := &t.sets[h&t.mask]
	var e *rateEntry
	oldest := 0
	for i := range set {
		if set[i].used && set[i].addr == a {
			e = &set[i]
			break
		}
		if !set[i].used || set[oldest].used && set[i].last < set[oldest].last {
			oldest = i
		}
	}
	if e == nil {
		e = &set[oldest]
		*e = rateEntry{addr: a, used: true, credit: t.full, last: now, kodAt: now - t.full - 1}
	}
	e.credit = min(t.full, e.credit+max(0, now-e.last))
	e.last = now
	if e.credit >= t.interval {
		e.credit -= t.interval
		return rateOK
	}
	if now-e.kodAt > t.full {
		e.kodAt = now
		return rateKoD
	}
	return rateDrop
}
