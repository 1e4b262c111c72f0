// Package pps reads PPS edges: from a kernel PPS device, a PHC external
// timestamp channel, or SOCK datagrams (the chrony/gpsd protocol).
package pps

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// SockMagic identifies a sock_sample ("SOCK" as a 32-bit integer), as
// chrony's refclock_sock.c defines it.
const SockMagic = 0x534f434b

// SockSampleSize is sizeof(struct sock_sample) on 64-bit Linux:
//
//	struct sock_sample {
//	  struct timeval tv;  // 0: tv_sec (8), 8: tv_usec (8)   local time of the sample
//	  double offset;      // 16: true time minus local time, seconds
//	  int pulse;          // 24: non-zero: a PPS sample, offset relative to the nearest second
//	  int leap;           // 28: 0 none, 1 insert, 2 delete (at the end of the day)
//	  int _pad;           // 32
//	  int magic;          // 36: SockMagic
//	};
//
// in host byte order (little-endian on x86-64), which is how chronyd and
// gpsd on the same machine exchange it.
const SockSampleSize = 40

// SockSample is one decoded sock_sample.
type SockSample struct {
	// Local is the local (system clock) time of the sample, microseconds
	// as the wire carries it.
	Local  time.Time
	Offset float64 // seconds, true minus local
	Pulse  bool
	Leap   int // 0, 1 insert, 2 delete
}

// The range of times a sample may carry, Unix seconds: GPS time began
// 1980-01-06 (IS-GPS-200 20.3.3.5.2.4); 2200-01-01 bounds the rest.
const (
	gpsEpoch     = 315964800
	sockYear2200 = 7258118400
)

// Errors of ParseSockSample.
var (
	ErrSockSize  = errors.New("sock sample: wrong size")
	ErrSockMagic = errors.New("sock sample: bad magic")
	ErrSockValue = errors.New("sock sample: field out of range")
)

// ParseSockSample decodes one datagram.
func ParseSockSample(b []byte) (SockSample, error) {
	if len(b) != SockSampleSize {
		return SockSample{}, ErrSockSize
	}
	le := binary.LittleEndian
	if le.Uint32(b[36:]) != SockMagic {
		return SockSample{}, ErrSockMagic
	}
	sec, usec := int64(le.Uint64(b[0:])), int64(le.Uint64(b[8:]))
	off := math.Float64frombits(le.Uint64(b[16:]))
	leap := int(int32(le.Uint32(b[28:])))
	// The local clock may read anything from 1970 to 2200: a box that
	// lost its RTC boots at 1970 or at its image's date, and a wrong
	// local clock is exactly what the first samples must step. What is
	// judged here is the receiver: the true time it gives (local + offset)
	// must be a GNSS time, after the GPS epoch and before 2200; its date
	// against the build date and the leap table is judged where every
	// receiver's is, on the labels the pairer takes. (A float64 offset of
	// decades keeps 0.25 µs: the first step, not the lock, uses it.)
	if sec < 0 || sec >= sockYear2200 || usec < 0 || usec >= 1e6 || leap < 0 || leap > 2 {
		return SockSample{}, ErrSockValue
	}
	if math.IsNaN(off) || off < -sockYear2200 || off > sockYear2200 {
		return SockSample{}, ErrSockValue
	}
	if tru := float64(sec) + float64(usec)/1e6 + off; tru < gpsEpoch || tru >= sockYear2200 {
		return SockSample{}, ErrSockValue
	}
	return SockSample{
		Local:  time.Unix(sec, usec*1000).UTC(),
		Offset: off,
		Pulse:  le.Uint32(b[24:]) != 0,
		Leap:   leap,
	}, nil
}

// Marshal encodes the sample (what gnss-sim and gpsd send).
func (s SockSample) Marshal() []byte {
	b := make([]byte, SockSampleSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], uint64(s.Local.Unix()))
	le.PutUint64(b[8:], uint64(s.Local.Nanosecond()/1000))
	le.PutUint64(b[16:], math.Float64bits(s.Offset))
	if s.Pulse {
		le.PutUint32(b[24:], 1)
	}
	le.PutUint32(b[28:], uint32(s.Leap))
	le.PutUint32(b[36:], SockMagic)
	return b
}

// NewEdgeSample describes a PPS edge captured at local time edge that
// marks the true second second: gpsd's way, offset = true - local computed
// at full resolution, tv the local time truncated to microseconds.
func NewEdgeSample(edge, second time.Time, leap int) SockSample {
	return SockSample{Local: edge.Truncate(time.Microsecond), Offset: second.Sub(edge).Seconds(), Pulse: true, Leap: leap}
}

// Edge recovers the local time of the PPS edge at nanosecond resolution:
// the edge is the local time at which true time was a whole second, and
// that whole second is the one nearest to Local+Offset. This works whether
// Offset carries the whole difference (gpsd) or only its fraction (a pulse
// sample relative to the nearest second).
func (s SockSample) Edge() time.Time {
	whole, frac := math.Modf(s.Offset)
	// true at Local = Local + whole + frac; the nearest whole second
	// relative to Local+whole is Local+whole + round(frac + sub-second).
	t := s.Local.Add(time.Duration(whole) * time.Second)
	fracNS := time.Duration(math.Round(frac * 1e9))
	trueT := t.Add(fracNS)
	sec := trueT.Add(500 * time.Millisecond).Truncate(time.Second)
	return sec.Add(-time.Duration(whole) * time.Second).Add(-fracNS)
}
