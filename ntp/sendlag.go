package ntp

import "slices"

// SendLag estimates how long a reply takes from the clock read that
// stamps its transmit time to its departure (the kernel's software
// transmit stamp): the system call, the UDP and IP layers and the queue
// to the driver. A basic-mode reply carries the read; adding the lag
// brings it to the departure, which is what a client's offset assumes
// (RFC 5905 8: T3 is the time the reply left). chrony adds an estimate of
// its authentication time for the same reason; this one is measured on
// the server's own replies.
//
// The estimate is the least of the last lagSamples measurements, each
// clamped to [0, MaxSendLag], not their median: a transmit time must not
// be later than its reply's departure. A client bounds its offset by
// half the round trip only because every stamp errs toward a longer one
// (RFC 5905 8 and 10: the true offset within delta/2 of the measured);
// a T3 after the departure shortens the round trip it measures, can make
// it negative, and a minimum-delay filter (chrony's, sitegm's monitor)
// then picks exactly those replies. With the median half the replies
// left before their stamp: under a CPU hog a sitegm peer measured its
// partner with a round trip of -8.8 us and an offset 4.7 us beyond both
// error bounds. With the least, a reply is stamped late only if it went
// faster than every one of the last 15, and then by that little; a
// preempted send or a queue only makes the stamp early, inside the round
// trip. No measurement can move a served time by more than MaxSendLag.
// Not safe for concurrent use: one per worker.
type SendLag struct {
	s    [lagSamples]int64
	n, i int
	est  int64
}

const (
	lagSamples = 15
	// MaxSendLag bounds the compensation: a send path slower than this is
	// not a path to correct for but a loaded machine, which no single
	// figure describes.
	MaxSendLag = 50_000 // ns
)

// Add records one reply's lag in ns (its kernel transmit stamp minus the
// read it was stamped with).
func (l *SendLag) Add(ns int64) {
	l.s[l.i] = min(max(ns, 0), MaxSendLag)
	l.i = (l.i + 1) % lagSamples
	l.n = min(l.n+1, lagSamples)
	l.est = slices.Min(l.s[:l.n])
}

// NS is the current estimate (0 before any measurement).
func (l *SendLag) NS() int64 { return l.est }

// Fraction is ns (>= 0, < 2 s) in NTP timestamp units (2^-32 s).
func Fraction(ns int64) uint64 { return uint64(ns) << 32 / 1e9 }

// LagNS is b - a, two NTP timestamps, in ns (negative when b is earlier).
func LagNS(a, b uint64) int64 { return int64(float64(int64(b-a)) * 1e9 / (1 << 32)) }
