// Package gnss decodes what a GNSS receiver sends: NMEA 0183 sentences and
// u-blox UBX frames, possibly mixed with other binary protocols, comment
// lines and line noise, into time reports.
//
// It is sans-I/O: the caller feeds bytes with the local time they arrived
// and gets events back. Nothing here reads a device or the clock.
package gnss

import "time"

// FrameKind tells what a frame is.
type FrameKind uint8

// Frame kinds found in a receiver's byte stream.
const (
	FrameNMEA FrameKind = iota + 1
	FrameUBX
	FrameSiRF // recognised and skipped cleanly, never decoded
)

// Reject is why bytes were dropped. Every byte the framer does not deliver
// in a frame is either a line terminator, part of a comment line, or counted
// under one of these reasons.
type Reject uint8

// Rejection reasons.
const (
	RejectNoise         Reject = iota // bytes outside any frame
	RejectNMEAChecksum                // '*hh' present but wrong
	RejectNMEANoSum                   // no '*hh' (NMEA 0183 makes it optional; a timing source must not)
	RejectNMEATooLong                 // longer than MaxSentence before its terminator
	RejectNMEATruncated               // cut by a new '$' or binary data before its terminator
	RejectNMEABadChar                 // a control or 8-bit byte inside a sentence
	RejectUBXChecksum                 // UBX Fletcher checksum wrong
	RejectUBXHeader                   // UBX sync followed by an unknown class or impossible length
	RejectSiRF                        // SiRF binary framing or checksum wrong
	numRejects
)

var rejectNames = [numRejects]string{
	"noise", "nmea_checksum", "nmea_no_checksum", "nmea_too_long", "nmea_truncated",
	"nmea_bad_char", "ubx_checksum", "ubx_header", "sirf_bad",
}

func (r Reject) String() string {
	if r < numRejects {
		return rejectNames[r]
	}
	return "unknown"
}

// MaxSentence is the longest NMEA sentence accepted, '$' to '*hh'. NMEA 0183
// caps sentences at 82 characters with CR LF; real receivers exceed it
// (u-blox GSV and PUBX lines, Quectel GNS and proprietary lines reach
// 120-130), so allow headroom without letting garbage grow a line forever.
const MaxSentence = 200

// maxUBXPayload bounds a UBX frame's declared length. The longest output
// messages of timing receivers (NAV-SAT with 100+ satellites, MON-VER with
// extensions) stay well under this; a larger length is a false sync.
const maxUBXPayload = 2048

// maxSiRFPayload is SiRF's limit (15-bit length, messages < 1023 bytes).
const maxSiRFPayload = 1023

// ubxClasses are the UBX message classes a receiver outputs. A sync pair
// followed by any other class is noise, which keeps a stray 0xB5 0x62 in
// binary data from swallowing the next sentences.
var ubxClasses = [256]bool{0x01: true, 0x02: true, 0x04: true, 0x05: true, 0x06: true,
	0x09: true, 0x0A: true, 0x0B: true, 0x0D: true, 0x10: true, 0x13: true, 0x21: true,
	0x27: true, 0x28: true, 0x29: true}

// Frame is one delivered frame. Its slices are only valid during the call.
type Frame struct {
	Kind FrameKind
	// NMEA: the sentence between '$' and '*', e.g. "GPRMC,123519,A,...".
	// UBX: the payload. SiRF: the payload.
	Data []byte
	// UBX class and ID.
	Class, ID byte
	// At is the arrival time of the chunk that held the frame's first byte.
	At time.Time
}

// FramerStats counts what the framer saw.
type FramerStats struct {
	Bytes        uint64
	NMEA         uint64 // sentences delivered
	UBX          uint64 // UBX frames delivered
	SiRF         uint64 // SiRF frames recognised and skipped
	CommentLines uint64 // lines starting with '#' (capture files, gpsd logs)
	Skipped      uint64 // bytes dropped, all reasons
	Rejects      [numRejects]uint64
}

type framerState uint8

const (
	stIdle framerState = iota
	stNMEA
	stComment
	stUBX  // collecting a UBX frame in buf
	stSiRF // collecting a SiRF frame in buf
)

// Framer splits a receiver byte stream into frames. It resynchronises after
// garbage: a frame that turns out bad is dropped and its bytes after the
// first are scanned again, so a sentence hidden behind a false binary sync is
// still found.
type Framer struct {
	state   framerState
	buf     []byte
	replay  []byte // bytes to scan again after a rejected binary frame
	spare   []byte
	lineBeg bool // the previous byte ended a line (or nothing came yet)
	at      time.Time
	frameAt time.Time
	emit    func(*Frame)
	frame   Frame
	Stats   FramerStats
}

// NewFramer returns a framer that calls emit for each frame.
func NewFramer(emit func(*Frame)) *Framer {
	return &Framer{emit: emit, lineBeg: true, buf: make([]byte, 0, 256)}
}

// Write feeds bytes that arrived at local time at.
func (f *Framer) Write(p []byte, at time.Time) {
	f.at = at
	f.Stats.Bytes += uint64(len(p))
	for _, b := range p {
		f.step(b)
		for len(f.replay) > 0 {
			c := f.replay[0]
			f.replay = f.replay[1:]
			f.step(c)
		}
	}
}

func (f *Framer) drop(r Reject, n int) {
	f.Stats.Rejects[r] += uint64(n)
	f.Stats.Skipped += uint64(n)
}

// rescan drops the first byte of the current binary candidate and queues the
// rest to be scanned again, ahead of anything already queued.
func (f *Framer) rescan(r Reject) {
	f.Stats.Rejects[r]++
	f.Stats.Skipped++
	rest := f.buf[1:]
	q := append(f.spare[:0], rest...)
	q = append(q, f.replay...)
	f.spare = f.replay[:0]
	f.replay = q
	f.buf = f.buf[:0]
	f.state = stIdle
}

func (f *Framer) begin(st framerState, b byte) {
	f.state = st
	f.buf = append(f.buf[:0], b)
	f.frameAt = f.at
}

func (f *Framer) step(b byte) {
	switch f.state {
	case stIdle:
		f.idle(b)
	case stComment:
		if b == '\n' || b == '\r' {
			f.state = stIdle
			f.lineBeg = true
		}
	case stNMEA:
		f.nmea(b)
	case stUBX:
		f.ubx(b)
	case stSiRF:
		f.sirf(b)
	}
}

func (f *Framer) idle(b byte) {
	switch {
	case b == '$':
		f.begin(stNMEA, b)
	case b == 0xB5:
		f.begin(stUBX, b)
	case b == 0xA0:
		f.begin(stSiRF, b)
	case b == '\r' || b == '\n':
		f.lineBeg = true
		return
	case b == '#' && f.lineBeg:
		f.Stats.CommentLines++
		f.state = stComment
	default:
		f.drop(RejectNoise, 1)
	}
	f.lineBeg = false
}

func (f *Framer) nmea(b byte) {
	switch {
	case b == '\r' || b == '\n':
		f.lineBeg = true
		f.endSentence()
	case b == '$':
		f.drop(RejectNMEATruncated, len(f.buf))
		f.begin(stNMEA, b)
	case b < 0x20 || b > 0x7e:
		// Binary data interrupted the line (or the line was noise): drop
		// what we have and look at this byte afresh, it may be a sync.
		f.drop(RejectNMEABadChar, len(f.buf))
		f.buf = f.buf[:0]
		f.state = stIdle
		f.idle(b)
	case len(f.buf) >= MaxSentence:
		f.drop(RejectNMEATooLong, len(f.buf)+1)
		f.buf = f.buf[:0]
		f.state = stComment // skip to the end of the line
	default:
		f.buf = append(f.buf, b)
	}
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// endSentence checks "$body*hh" (NMEA 0183 clause 5.3: the checksum is the
// XOR of every character between '$' and '*', as two hex digits; receivers
// send upper case, some lower case). Trailing spaces are tolerated.
func (f *Framer) endSentence() {
	s := f.buf
	f.state = stIdle
	f.buf = f.buf[:0]
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	n := len(s)
	if n < 4 || s[n-3] != '*' {
		f.drop(RejectNMEANoSum, n)
		return
	}
	hi, ok1 := hexVal(s[n-2])
	lo, ok2 := hexVal(s[n-1])
	var sum byte
	for _, c := range s[1 : n-3] {
		sum ^= c
	}
	if !ok1 || !ok2 || sum != hi<<4|lo {
		f.drop(RejectNMEAChecksum, n)
		return
	}
	f.Stats.NMEA++
	f.frame = Frame{Kind: FrameNMEA, Data: s[1 : n-3], At: f.frameAt}
	f.emit(&f.frame)
}

// ubx collects "B5 62 class id lenLE payload ckA ckB" (u-blox protocol
// specification, "UBX frame structure"; checksum: 8-bit Fletcher over class,
// id, length and payload).
func (f *Framer) ubx(b byte) {
	f.buf = append(f.buf, b)
	n := len(f.buf)
	switch {
	case n == 2 && b != 0x62:
		f.rescan(RejectNoise)
		return
	case n == 3 && !ubxClasses[b]:
		f.rescan(RejectUBXHeader)
		return
	case n == 6:
		if l := int(f.buf[4]) | int(f.buf[5])<<8; l > maxUBXPayload {
			f.rescan(RejectUBXHeader)
		}
		return
	}
	if n < 6 {
		return
	}
	l := int(f.buf[4]) | int(f.buf[5])<<8
	if n < 8+l {
		return
	}
	var a, c byte
	for _, x := range f.buf[2 : 6+l] {
		a += x
		c += a
	}
	if a != f.buf[6+l] || c != f.buf[7+l] {
		f.rescan(RejectUBXChecksum)
		return
	}
	f.Stats.UBX++
	f.frame = Frame{Kind: FrameUBX, Class: f.buf[2], ID: f.buf[3], Data: f.buf[6 : 6+l], At: f.frameAt}
	f.state = stIdle
	f.emit(&f.frame)
	f.buf = f.buf[:0]
}

// sirf collects "A0 A2 lenBE payload ckBE B0 B3" (SiRF binary protocol:
// 15-bit length and a 15-bit sum of the payload bytes). SiRF frames are
// skipped, but framing them keeps their bytes from being read as NMEA.
func (f *Framer) sirf(b byte) {
	f.buf = append(f.buf, b)
	n := len(f.buf)
	if n == 2 && b != 0xA2 {
		f.rescan(RejectNoise)
		return
	}
	if n < 4 {
		return
	}
	l := int(f.buf[2])<<8 | int(f.buf[3])
	if l > maxSiRFPayload {
		f.rescan(RejectSiRF)
		return
	}
	if n < 8+l {
		return
	}
	var sum int
	for _, x := range f.buf[4 : 4+l] {
		sum += int(x)
	}
	sum &= 0x7fff
	if int(f.buf[4+l])<<8|int(f.buf[5+l]) != sum || f.buf[6+l] != 0xB0 || f.buf[7+l] != 0xB3 {
		f.rescan(RejectSiRF)
		return
	}
	f.Stats.SiRF++
	f.frame = Frame{Kind: FrameSiRF, Data: f.buf[4 : 4+l], At: f.frameAt}
	f.state = stIdle
	f.emit(&f.frame)
	f.buf = f.buf[:0]
}
