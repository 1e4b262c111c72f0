package ptp

import "time"

// Foreign is a port's table of the other masters it hears, keyed by the
// sender (K) with what it advertises (D: a v2 data set, a v1 Sync's
// credentials), for PTPv2 (IEEE 1588-2019 9.3.2.4.4, the foreign master
// data set) and PTPv1 alike (1588-2002 7.6.4 keeps one the same way).
// It is bounded: when full, a newcomer takes the place of the worst entry
// it beats (one heard only once goes first), so that a flood of invented
// masters neither grows memory nor hides a better master.
type Foreign[K comparable, D any] struct {
	// Max bounds the table; Cmp orders what masters advertise (< 0: a is
	// the better master).
	Max int
	Cmp func(a, b D) int
	m   map[K]*Heard[D]
}

// Heard is one foreign master: what it advertised last, its message
// interval (clamped by the port before it sets any timer), and the
// arrivals of its last two messages, newest first.
type Heard[D any] struct {
	D        D
	Interval time.Duration
	seen     [2]time.Time
}

// Hear records a message from k advertising d at now; it says whether k
// is new, or that it was dropped (the table full of masters d does not
// beat).
func (t *Foreign[K, D]) Hear(k K, d D, interval time.Duration, now time.Time) (isNew, dropped bool) {
	if t.m == nil {
		t.m = map[K]*Heard[D]{}
	}
	h, ok := t.m[k]
	if !ok {
		if len(t.m) >= t.Max && !t.evictWorse(d) {
			return false, true
		}
		h = &Heard[D]{}
		t.m[k] = h
	}
	h.D, h.Interval = d, interval
	h.seen[1], h.seen[0] = h.seen[0], now
	return !ok, false
}

// Expire forgets the masters silent for more than timeout of their
// intervals (announceReceiptTimeout, 1588-2019 9.2.6.12; the v1
// SYNC_RECEIPT_TIMEOUT).
func (t *Foreign[K, D]) Expire(now time.Time, timeout int) {
	for k, h := range t.m {
		if now.Sub(h.seen[0]) > time.Duration(timeout)*h.Interval {
			delete(t.m, k)
		}
	}
}

// NextExpiry is when the first master would be forgotten (zero: none).
func (t *Foreign[K, D]) NextExpiry(timeout int) time.Time {
	var first time.Time
	for _, h := range t.m {
		if at := h.seen[0].Add(time.Duration(timeout)*h.Interval + time.Millisecond); first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first
}

// Qualified lists what the qualified masters advertise: those with two
// messages within window of their intervals
// (FOREIGN_MASTER_THRESHOLD 2 within FOREIGN_MASTER_TIME_WINDOW), so that
// one stray message does not move the port.
func (t *Foreign[K, D]) Qualified(now time.Time, window int) []D {
	var ds []D
	for _, h := range t.m {
		if !h.seen[1].IsZero() && now.Sub(h.seen[1]) <= time.Duration(window)*h.Interval {
			ds = append(ds, h.D)
		}
	}
	return ds
}

// Best is the best master Qualified lists (ok false: none).
func (t *Foreign[K, D]) Best(now time.Time, window int) (best D, ok bool) {
	for _, d := range t.Qualified(now, window) {
		if !ok || t.Cmp(d, best) < 0 {
			best, ok = d, true
		}
	}
	return best, ok
}

// Len is how many masters the table holds.
func (t *Foreign[K, D]) Len() int { return len(t.m) }

// evictWorse makes room for d: the worst entry it beats goes, an entry
// heard only once before any other. It reports whether room was made.
func (t *Foreign[K, D]) evictWorse(d D) bool {
	var worstK K
	var worst *Heard[D]
	for k, h := range t.m {
		if worst == nil || t.worse(h, worst) {
			worst, worstK = h, k
		}
	}
	if worst == nil || t.Cmp(d, worst.D) >= 0 {
		return false
	}
	delete(t.m, worstK)
	return true
}

// worse: a is a better entry to drop than b.
func (t *Foreign[K, D]) worse(a, b *Heard[D]) bool {
	qa, qb := !a.seen[1].IsZero(), !b.seen[1].IsZero()
	if qa != qb {
		return !qa
	}
	return t.Cmp(a.D, b.D) > 0
}
