package ptp

import (
	"encoding/binary"
	"time"

	"github.com/facebook/time/ptp/protocol"
)

// Message types and lengths (IEEE 1588-2019 Table 36, 13.3-13.8).
const (
	headerLen    = 34
	delayReqLen  = 44
	delayRespLen = 54
	syncLen      = 44
	followUpLen  = 44
	announceLen  = 64
)

// Reasons a received message is dropped.
type Drop uint8

// Drop reasons, counted per port.
const (
	DropShort       Drop = iota // shorter than its header or its type's body
	DropVersion                 // not PTPv2 (v1 goes to the v1 port)
	DropDomain                  // another domain
	DropLength                  // messageLength beyond the datagram
	DropType                    // a type a grandmaster does not take
	DropOwn                     // our own message looped back
	DropState                   // valid, but not answered in this state (PASSIVE)
	DropBadMgmt                 // management message that does not parse
	DropOwnGM                   // an Announce of our own grandmaster, relayed back to us
	DropSteps                   // an Announce that crossed 255 boundary clocks (9.3.2.5)
	DropForeignFull             // a foreign master no better than any of the table's
	DropMgmtRate                // a management request beyond the reply rate limit
	NumDrops
)

var dropNames = [NumDrops]string{"short", "version", "domain", "length", "type", "own", "state", "bad_management",
	"own_grandmaster", "steps_removed", "foreign_table_full", "management_rate"}

// Hostile reports whether a drop reason is traffic no well-behaved PTP
// node sends (as opposed to another domain's, a passive port's, or our
// own looped back).
func (d Drop) Hostile() bool {
	switch d {
	case DropOwn, DropState, DropDomain, DropType:
		return false
	}
	return true
}

func (d Drop) String() string { return dropNames[d] }

// CheckHeader validates what every received message must satisfy and
// returns its type: PTP version 2 (low nibble of byte 1; 1588-2019 puts the
// minor version in the high nibble), the domain, a messageLength that fits
// the datagram.
func CheckHeader(b []byte, domain uint8) (protocol.MessageType, Drop, bool) {
	if len(b) < headerLen {
		return 0, DropShort, false
	}
	if b[1]&0x0f != 2 {
		return 0, DropVersion, false
	}
	if b[4] != domain {
		return 0, DropDomain, false
	}
	if int(binary.BigEndian.Uint16(b[2:])) > len(b) {
		return 0, DropLength, false
	}
	return protocol.MessageType(b[0] & 0x0f), 0, true
}

// putTimestamp writes a PTP Timestamp (48-bit seconds, 32-bit
// nanoseconds; 1588-2019 5.3.3) of t on the PTP (TAI) timescale.
func putTimestamp(b []byte, t time.Time) {
	s := uint64(t.Unix())
	b[0], b[1] = byte(s>>40), byte(s>>32)
	binary.BigEndian.PutUint32(b[2:], uint32(s))
	binary.BigEndian.PutUint32(b[6:], uint32(t.Nanosecond()))
}

// AppendDelayResp answers a Delay_Req (1588-2019 11.3.2, 13.8): the
// request's sequenceId, correctionField and sourcePortIdentity come back,
// with our port identity, the receipt time and our logMinDelayReqInterval.
// The unicast flag of the request is kept, so a unicast (hybrid) request
// gets a reply flagged unicast. It writes into dst (at least 54 bytes) and
// allocates nothing: this is the grandmaster's hot path.
func AppendDelayResp(dst []byte, req []byte, rx time.Time, id protocol.PortIdentity, logMinDelayReq int8) (n int, ok bool) {
	if len(req) < delayReqLen || len(dst) < delayRespLen || protocol.MessageType(req[0]&0x0f) != protocol.MessageDelayReq {
		return 0, false
	}
	b := dst[:delayRespLen]
	b[0] = req[0]&0xf0 | byte(protocol.MessageDelayResp) // majorSdoId kept
	b[1] = 2
	binary.BigEndian.PutUint16(b[2:], delayRespLen)
	b[4] = req[4]                                 // domain
	b[5] = req[5]                                 // minorSdoId
	b[6] = req[6] & byte(protocol.FlagUnicast>>8) // unicastFlag only
	b[7] = 0                                      //
	copy(b[8:16], req[8:16])                      // correctionField
	binary.BigEndian.PutUint32(b[16:], 0)         // messageTypeSpecific
	binary.BigEndian.PutUint64(b[20:], uint64(id.ClockIdentity))
	binary.BigEndian.PutUint16(b[28:], id.PortNumber)
	b[30], b[31] = req[30], req[31] // sequenceId
	b[32] = 3                       // controlField: Delay_Resp
	b[33] = byte(logMinDelayReq)
	putTimestamp(b[34:44], rx)
	copy(b[44:54], req[20:30]) // requestingPortIdentity
	return delayRespLen, true
}
