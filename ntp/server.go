// Package ntp answers NTP requests (RFC 5905, and the older versions it
// stays compatible with) from the disciplined clock: the request path of
// the server, sans-I/O. The daemon owns the sockets, takes the timestamps
// and hands each datagram to a Responder, one per worker.
//
// The fixed 48-byte header is the layout of facebook/time's
// ntp/protocol.Packet; the hot path reads and writes the fields it needs
// in place (protocol.Packet's encoder allocates), and the tests check every
// reply by decoding it with protocol.Packet.
package ntp

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/facebook/time/ntp/protocol"
)

// HeaderLen is the NTP header without extension fields or MAC.
const HeaderLen = protocol.PacketSizeBytes

// Modes (RFC 5905 Figure 10).
const (
	ModeReserved         = 0
	ModeSymmetricActive  = 1
	ModeSymmetricPassive = 2
	ModeClient           = 3
	ModeServer           = 4
	ModeBroadcast        = 5
	ModeControl          = 6 // ntpq
	ModePrivate          = 7 // ntpdc
)

// Header is what the server advertises, derived by the daemon from
// clock/quality and the leap table and swapped atomically.
type Header struct {
	Leap           uint8 // 0; 1 or 2 on the day of a leap second; 3 unsynchronized
	Stratum        uint8 // 1 while locked or in holdover; 0 otherwise
	Precision      int8  // log2 s of a clock read, -29..-3
	RefID          uint32
	RootDelay      uint32 // NTP short format
	RootDispersion uint32 // NTP short format
	RefTime        uint64 // NTP timestamp of the last GNSS correction
}

// Timestamp converts a UTC time to the NTP 64-bit timestamp.
func Timestamp(t time.Time) uint64 {
	s, f := protocol.Time(t)
	return uint64(s)<<32 | uint64(f)
}

// ToTime converts an NTP timestamp back (era 0).
func ToTime(ts uint64) time.Time { return protocol.Unix(uint32(ts>>32), uint32(ts)) }

// Short converts a duration to the NTP short format (16.16 seconds),
// rounding up (it carries error bounds: a bound must not shrink in
// transit) and saturating.
func Short(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	v := (uint64(d)<<16 + uint64(time.Second) - 1) / uint64(time.Second)
	if v > 0xFFFFFFFF {
		return 0xFFFFFFFF
	}
	return uint32(v)
}

// Config of a responder.
type Config struct {
	// RateInterval is the average interval a client may keep between
	// requests and RateBurst how many it may send at once; zero interval
	// turns rate limiting off.
	RateInterval time.Duration
	RateBurst    int
	// RateTableSize is the number of client addresses tracked (fixed:
	// a flood of spoofed sources evicts, it does not grow).
	RateTableSize int
	// Xleave is the interleaved-mode table, shared by the workers of an
	// interface; nil gives the responder a table of its own of
	// XleaveTableSize entries.
	Xleave          *Xleave
	XleaveTableSize int
	// Rate is the rate-limiting table, shared by the workers of an
	// interface; nil (with RateInterval set) gives the responder its own.
	Rate *RateTable
}

// Stats counts a responder's traffic.
type Stats struct {
	Requests    uint64
	Replies     uint64
	Interleaved uint64
	Symmetric   uint64
	KoD         uint64
	RateDropped uint64
	Ignored     uint64 // modes 2, 4-7: no reply by design
	Malformed   uint64 // shorter than the header, or version 0
	BadVersion  uint64 // versions 5-7: not NTP as this server knows it
}

// Reply is what Respond decided for one request.
type Reply struct {
	N int // bytes of reply in dst; 0 for none
	// Key is the reply's receive timestamp: the key under which the
	// precise transmit time of this reply is to be recorded (Sent).
	Key uint64
	// WantTxStamp: the client uses the interleaved mode, so the precise
	// (kernel) transmit time of this reply will be sent to it next time.
	WantTxStamp bool
	// Pending: Respond was given no clock (txNow nil), so the reply's
	// transmit time is still to be taken: the caller calls Stamp just
	// before the reply leaves. Until then the reply carries its receive
	// time + 1 as transmit time (never zero, never before the receipt).
	Pending bool
}

// Responder answers requests; one per worker, not safe for concurrent
// use.
type Responder struct {
	cfg   Config
	rate  *RateTable
	xl    *Xleave
	Stats Stats
}

// NewResponder allocates the fixed tables.
func NewResponder(cfg Config) *Responder {
	if cfg.RateTableSize <= 0 {
		cfg.RateTableSize = 16384
	}
	if cfg.XleaveTableSize <= 0 {
		cfg.XleaveTableSize = 16384
	}
	r := &Responder{cfg: cfg, xl: cfg.Xleave}
	if r.xl == nil {
		r.xl = NewXleave(cfg.XleaveTableSize)
	}
	r.rate = cfg.Rate
	if r.rate == nil && cfg.RateInterval > 0 {
		r.rate = NewRateTable(cfg.RateTableSize, cfg.RateInterval, cfg.RateBurst)
	}
	return r
}

var be = binary.BigEndian

// Respond answers req, received at rx (NTP timestamp on the served clock)
// from addr at mono (a monotonic time in ns, for rate limiting). It writes
// the reply into dst (at least HeaderLen bytes); txNow is read as late as
// possible for the transmit timestamp. With txNow nil the transmit time is
// left to Stamp (Reply.Pending), which a server calls right before the
// send: whatever runs between the clock read and the send (the rest of a
// batch, bookkeeping) is error in a basic-mode reply's transmit timestamp.
// It allocates nothing.
//
// RFC 5905 9.2 and the behaviour of ntpd and chrony: mode 3 gets mode 4,
// mode 1 (symmetric active, what w32time sends by default) gets mode 2
// without any association; an NTPv1 request (no mode field, mode 0) is a
// client request; modes 2 and 4-7 get nothing, and neither do versions 0
// and 5-7: no such NTP exists, and answering them as version 4 (as this
// server did) tells a client a format it did not ask for (chrony ignores
// them too). The reply carries the request's version and is never longer
// than the request.
func (r *Responder) Respond(dst, req []byte, rx uint64, addr netip.Addr, mono int64, h *Header, txNow func() uint64) Reply {
	r.Stats.Requests++
	if len(req) < HeaderLen || len(dst) < HeaderLen {
		r.Stats.Malformed++
		return Reply{}
	}
	vn := (req[0] >> 3) & 7
	mode := req[0] & 7
	switch {
	case vn == 0:
		r.Stats.Malformed++
		return Reply{}
	case vn > 4:
		r.Stats.BadVersion++
		return Reply{}
	}
	var replyMode byte
	switch {
	case mode == ModeClient, mode == ModeReserved && vn == 1:
		replyMode = ModeServer
	case mode == ModeSymmetricActive:
		replyMode = ModeSymmetricPassive
		r.Stats.Symmetric++
	default:
		r.Stats.Ignored++
		return Reply{}
	}
	clientTx := be.Uint64(req[40:])
	if r.rate != nil {
		switch r.rate.check(addr, mono) {
		case rateDrop:
			r.Stats.RateDropped++
			return Reply{}
		case rateKoD:
			r.Stats.KoD++
			return Reply{N: kod(dst, vn, replyMode, req[2], clientTx)}
		}
	}
	rx = r.xl.unique(rx)
	b := dst[:HeaderLen]
	b[0] = h.Leap<<6 | vn<<3 | replyMode
	b[1] = h.Stratum
	b[2] = req[2] // poll: the client's
	b[3] = byte(h.Precision)
	be.PutUint32(b[4:], h.RootDelay)
	be.PutUint32(b[8:], h.RootDispersion)
	be.PutUint32(b[12:], h.RefID)
	be.PutUint64(b[16:], h.RefTime)
	be.PutUint64(b[32:], rx)
	origin := be.Uint64(req[24:])
	clientRx := be.Uint64(req[32:])
	// Interleaved (chrony's xleave; draft-ietf-ntp-interleaved-modes): the
	// client puts our previous receive timestamp in its origin field;
	// we answer with the precise transmit time of that previous reply.
	if origin != 0 && clientRx != clientTx {
		if prevTx, ok := r.xl.lookup(origin); ok {
			be.PutUint64(b[24:], clientRx)
			be.PutUint64(b[40:], prevTx)
			// Until Sent brings the kernel's time of this reply, the best
			// estimate of it is now (or, pending, when Stamp is called).
			r.Stats.Interleaved++
			r.Stats.Replies++
			if txNow == nil {
				r.xl.insert(rx, rx+1)
				return Reply{N: HeaderLen, Key: rx, WantTxStamp: true, Pending: true}
			}
			r.xl.insert(rx, max(txNow(), rx+1))
			return Reply{N: HeaderLen, Key: rx, WantTxStamp: true}
		}
	}
	be.PutUint64(b[24:], clientTx)
	r.Stats.Replies++
	if txNow == nil {
		be.PutUint64(b[40:], rx+1)
		r.xl.insert(rx, rx+1)
		return Reply{N: HeaderLen, Key: rx, Pending: true}
	}
	tx := max(txNow(), rx+1)
	be.PutUint64(b[40:], tx)
	r.xl.insert(rx, tx)
	return Reply{N: HeaderLen, Key: rx}
}

// Stamp takes the transmit time tx of a pending reply (Reply.Pending) in
// dst, read as the reply leaves: a basic-mode reply carries it (never
// before its receive time), and the interleaved table keeps it as the
// reply's time until the kernel's (Sent) replaces it. Other replies are
// left as they are.
func (r *Responder) Stamp(dst []byte, rep Reply, tx uint64) {
	if !rep.Pending || len(dst) < HeaderLen {
		return
	}
	tx = max(tx, rep.Key+1)
	if !rep.WantTxStamp {
		be.PutUint64(dst[40:], tx)
	}
	r.xl.update(rep.Key, tx)
}

// Sent records the precise transmit time of the reply with key (from the
// kernel's transmit timestamp), for the client's next interleaved request.
func (r *Responder) Sent(key, tx uint64) { r.xl.update(key, tx) }

// kod writes a Kiss-o'-Death RATE (RFC 5905 7.4): LI 3, stratum 0, refid
// "RATE", and the client's transmit timestamp as origin, receive and
// transmit, so that the client can match it but learns no time from it.
func kod(dst []byte, vn, mode, poll byte, clientTx uint64) int {
	b := dst[:HeaderLen]
	clear(b)
	b[0] = 3<<6 | vn<<3 | mode
	b[2] = poll
	copy(b[12:16], "RATE")
	be.PutUint64(b[24:], clientTx)
	be.PutUint64(b[32:], clientTx)
	be.PutUint64(b[40:], clientTx)
	return HeaderLen
}
