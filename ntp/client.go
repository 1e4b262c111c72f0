package ntp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// The client side, for watching other hosts' clocks (sitegm's [[monitor]]):
// one request, one reply, checked the way RFC 5905 clause 8 ("On-Wire
// Protocol") and the packet sanity tests of clause 9.2 ask, before its
// timestamps are believed.

// Request writes a client request (NTPv4, mode 3) into dst (at least
// HeaderLen bytes) whose transmit timestamp is tx, and returns its length.
// The reply must echo tx as its origin timestamp. The other fields are
// zero, which tells the server nothing about this host (the "data
// minimisation" of draft-ietf-ntp-data-minimization).
func Request(dst []byte, tx uint64) int {
	clear(dst[:HeaderLen])
	dst[0] = 4<<3 | ModeClient
	binary.BigEndian.PutUint64(dst[40:], tx)
	return HeaderLen
}

// Sample is what one reply says.
type Sample struct {
	Leap, Version, Stratum uint8
	Poll, Precision        int8
	RefID                  uint32
	RootDelay, RootDisp    time.Duration
	// Receive (T2) and Transmit (T3): the server's clock.
	Receive, Transmit time.Time
}

// Offset and delay of a sample whose request left at t1 and whose reply
// arrived at t4 (both on the local clock), RFC 5905 clause 8:
// offset = ((T2 - T1) + (T3 - T4)) / 2, delay = (T4 - T1) - (T3 - T2).
// The offset is the server's clock minus this one.
func (s Sample) Offset(t1, t4 time.Time) (offset, delay time.Duration) {
	offset = (s.Receive.Sub(t1) + s.Transmit.Sub(t4)) / 2
	delay = t4.Sub(t1) - s.Transmit.Sub(s.Receive)
	return offset, delay
}

// Reply errors: each is a reason to drop the reply (and counted by the
// caller under its text).
var (
	ErrShort        = errors.New("shorter than an NTP header")
	ErrMode         = errors.New("not a server reply")
	ErrVersion      = errors.New("version outside 1-4")
	ErrBogus        = errors.New("origin timestamp is not the request's (bogus or replayed)")
	ErrUnsync       = errors.New("server not synchronized")
	ErrZeroTime     = errors.New("zero receive or transmit timestamp")
	ErrBackwards    = errors.New("transmit before receive")
	ErrHugeRootDist = errors.New("root delay or dispersion above 16 s")
)

// KissError is a Kiss-o'-Death (stratum 0): the server asks to slow down
// (RATE), or refuses (DENY, RSTR).
type KissError struct{ Code string }

func (k KissError) Error() string { return fmt.Sprintf("kiss-o'-death %q", k.Code) }

// ParseReply checks reply b against the request that carried tx and
// returns its sample. Servers answering a v4 client request may answer in
// v3 (w32time, older ntpd); a symmetric passive reply (mode 2) is what a
// peer sends and is not taken.
func ParseReply(b []byte, tx uint64) (Sample, error) {
	return parseReply(b, tx, 0)
}

// parseReply is ParseReply; a non-zero prevT2 takes the reply as an
// interleaved one, whose transmit timestamp follows prevT2 rather than its
// own receive timestamp (it is of the previous reply).
func parseReply(b []byte, tx, prevT2 uint64) (Sample, error) {
	if len(b) < HeaderLen {
		return Sample{}, ErrShort
	}
	s := Sample{Leap: b[0] >> 6, Version: b[0] >> 3 & 7, Stratum: b[1], Poll: int8(b[2]), Precision: int8(b[3]),
		RefID: binary.BigEndian.Uint32(b[12:])}
	if b[0]&7 != ModeServer {
		return s, ErrMode
	}
	if s.Version < 1 || s.Version > 4 {
		return s, ErrVersion
	}
	// Clause 8: a reply whose origin is not our transmit is bogus.
	if binary.BigEndian.Uint64(b[24:]) != tx {
		return s, ErrBogus
	}
	if s.Stratum == 0 {
		code := make([]byte, 0, 4)
		for _, c := range b[12:16] {
			if c >= 0x20 && c < 0x7F {
				code = append(code, c)
			}
		}
		return s, KissError{string(code)}
	}
	// Clause 9.2 (packet sanity): leap 3 or a stratum above 15 is an
	// unsynchronized server.
	if s.Leap == 3 || s.Stratum > 15 {
		return s, ErrUnsync
	}
	rx, txs := binary.BigEndian.Uint64(b[32:]), binary.BigEndian.Uint64(b[40:])
	if rx == 0 || txs == 0 {
		return s, ErrZeroTime
	}
	s.Receive, s.Transmit = ToTime(rx), ToTime(txs)
	if prevT2 != 0 {
		s.Receive = ToTime(prevT2)
	}
	if s.Transmit.Before(s.Receive) {
		return s, ErrBackwards
	}
	short := func(v uint32) time.Duration { return time.Duration(uint64(v) * uint64(time.Second) >> 16) }
	s.RootDelay, s.RootDisp = short(binary.BigEndian.Uint32(b[4:])), short(binary.BigEndian.Uint32(b[8:]))
	if s.RootDelay > 16*time.Second || s.RootDisp > 16*time.Second {
		return s, ErrHugeRootDist
	}
	return s, nil
}

// Exchange is a client's record of its last completed exchange with a
// server, which interleaved mode (draft-ietf-ntp-interleaved-modes,
// chrony's xleave) completes one poll later: the server's reply to the
// next request carries the precise time its previous reply left (its
// kernel's transmit timestamp), where a basic reply can only carry the
// time just before it was sent.
type Exchange struct {
	// T1 is when the request left and T4 when the reply came, on the
	// local clock; T2 the server's receive timestamp as it sent it.
	T1, T4 time.Time
	T2     uint64
}

// RequestInterleaved writes a request asking for interleaved mode after
// exchange prev (draft-ietf-ntp-interleaved-modes section 3: the origin
// timestamp is the server's receive timestamp of the previous request,
// the receive timestamp the arrival of its reply); tx as in Request. A
// server that keeps no such state answers in basic mode.
func RequestInterleaved(dst []byte, tx uint64, prev Exchange) int {
	n := Request(dst, tx)
	binary.BigEndian.PutUint64(dst[24:], prev.T2)
	binary.BigEndian.PutUint64(dst[32:], Timestamp(prev.T4))
	return n
}

// ParseReplyInterleaved checks a reply to RequestInterleaved(tx, prev): a
// basic reply echoes tx and is ParseReply's; an interleaved one echoes
// prev's T4 and measures the previous exchange: its sample has the
// previous request's receive timestamp (prev.T2) and the precise transmit
// timestamp of the previous reply, to be used with prev.T1 and prev.T4.
// rx is the server's receive timestamp of this request either way (the
// next exchange's T2).
func ParseReplyInterleaved(b []byte, tx uint64, prev Exchange) (s Sample, interleaved bool, rx uint64, err error) {
	if len(b) >= HeaderLen && prev.T2 != 0 && binary.BigEndian.Uint64(b[24:]) == Timestamp(prev.T4) &&
		binary.BigEndian.Uint64(b[24:]) != tx {
		// Checked as a basic reply whose origin is prev's T4; the
		// timestamps are then those of the previous exchange.
		s, err = parseReply(b, Timestamp(prev.T4), prev.T2)
		return s, true, binary.BigEndian.Uint64(b[32:]), err
	}
	s, err = ParseReply(b, tx)
	if len(b) >= HeaderLen {
		rx = binary.BigEndian.Uint64(b[32:])
	}
	return s, false, rx, err
}

// PollResult is one poll of a server: the reply's sample and the local
// send and receive times on the disciplined clock (UTC), or why there is
// none. hw/ntpnet makes them; the monitors ([[monitor]]) and the
// upstreams take them.
type PollResult struct {
	T1, T4 time.Time
	Sample Sample
	Err    error
	// Kernel: T1 and T4 are the kernel's send and receive timestamps
	// (SO_TIMESTAMPING software), not reads around the system calls.
	Kernel bool
	// Interleaved: the result completes the previous exchange, with the
	// server's precise transmit time of its reply (interleaved mode).
	Interleaved bool
	// From is the address that answered.
	From netip.Addr
}
