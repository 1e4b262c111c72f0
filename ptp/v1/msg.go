// Package v1 is IEEE 1588-2002 ("PTPv1"), which Dante devices clock over:
// the wire format, the best-master comparison and a grandmaster port,
// sans-I/O like package ptp.
//
// Wire format: IEEE 1588-2002 clause 6.4 (message formats). Every offset
// below was checked against Wireshark's dissector
// (epan/dissectors/packet-ptp.c, the PTP_*_OFFSET and PTP_SDR_*/PTP_FU_*/
// PTP_DR_* definitions) and against a Dante leader's Sync and Follow_Up as
// described from a capture (Sync every 250 ms, flags ASSIST|BOUNDARY_CLOCK).
// All fields are big-endian; reserved bytes are sent as zero and ignored on
// receipt.
package v1

import (
	"encoding/binary"
	"errors"
	"time"
)

// Message lengths (IEEE 1588-2002 6.4: the 40-byte header plus the body).
const (
	HeaderLen     = 40
	SyncLen       = 124 // Sync and Delay_Req
	FollowUpLen   = 52
	DelayRespLen  = 60
	ManagementLen = 136
)

// messageType (header byte 20).
const (
	EventMessage   = 1 // Sync, Delay_Req: timestamped on the event port 319
	GeneralMessage = 2 // Follow_Up, Delay_Resp, Management: port 320
)

// control (header byte 32).
const (
	CtlSync       = 0
	CtlDelayReq   = 1
	CtlFollowUp   = 2
	CtlDelayResp  = 3
	CtlManagement = 4
)

// flags (header bytes 34-35; the defined bits are all in byte 35).
const (
	FlagLI61          = 0x0001
	FlagLI59          = 0x0002
	FlagBoundaryClock = 0x0004
	FlagAssist        = 0x0008 // two-step: a Follow_Up carries the precise time
	FlagExtSync       = 0x0010
	FlagParentStats   = 0x0020
	FlagSyncBurst     = 0x0040
)

// CommEthernet is communicationTechnology PTP_ETHER (1588-2002 Table 4).
const CommEthernet = 1

// UUID is a v1 clock's identity: for Ethernet, its MAC.
type UUID [6]byte

// Subdomain is the 16-byte NUL-padded subdomain name.
type Subdomain [16]byte

// The four subdomains and their multicast groups (1588-2002 Annex D:
// _DFLT on 224.0.1.129, _ALT1.._ALT3 on .130-.132).
var subdomains = []string{"_DFLT", "_ALT1", "_ALT2", "_ALT3"}

// ParseSubdomain returns the subdomain name and its group's last octet.
func ParseSubdomain(name string) (Subdomain, byte, bool) {
	var s Subdomain
	for i, n := range subdomains {
		if n == name {
			copy(s[:], n)
			return s, byte(129 + i), true
		}
	}
	return s, 0, false
}

func (s Subdomain) String() string {
	n := 0
	for n < len(s) && s[n] != 0 {
		n++
	}
	return string(s[:n])
}

// Header is the common header (1588-2002 6.4.2).
type Header struct {
	VersionNetwork uint16
	Subdomain      Subdomain
	MessageType    uint8
	SourceTech     uint8
	SourceUUID     UUID
	SourcePort     uint16
	Sequence       uint16
	Control        uint8
	Flags          uint16
}

// Timestamp is v1's TimeRepresentation: seconds and signed nanoseconds.
// The seconds wrap every 2^32 s; epochNumber (in Sync) counts the wraps.
type Timestamp struct {
	Seconds     uint32
	Nanoseconds int32
}

// NewTimestamp splits a time on the PTP timescale (TAI since 1970, the
// same timescale as PTPv2, so that Dante and AES67 devices agree) into the
// wire timestamp and its epoch number.
func NewTimestamp(t time.Time) (Timestamp, uint16) {
	s := uint64(t.Unix())
	return Timestamp{Seconds: uint32(s), Nanoseconds: int32(t.Nanosecond())}, uint16(s >> 32)
}

// Time is the timestamp in epoch epoch.
func (ts Timestamp) Time(epoch uint16) time.Time {
	return time.Unix(int64(uint64(epoch)<<32|uint64(ts.Seconds)), int64(ts.Nanoseconds))
}

// Sync is a Sync or Delay_Req body (1588-2002 6.4.3): the sender's time
// and its grandmaster's credentials, which the best-master algorithm
// compares (v1 has no Announce).
type Sync struct {
	Header
	Origin            Timestamp
	EpochNumber       uint16
	CurrentUTCOffset  int16
	GMTech            uint8
	GMUUID            UUID
	GMPort            uint16
	GMSequence        uint16
	GMStratum         uint8
	GMIdentifier      [4]byte
	GMVariance        int16
	GMPreferred       bool
	GMIsBoundary      bool
	SyncInterval      int8
	LocalVariance     int16
	LocalStepsRemoved uint16
	LocalStratum      uint8
	LocalIdentifier   [4]byte
	ParentTech        uint8
	ParentUUID        UUID
	ParentPort        uint16
	EstMasterVariance int16
	EstMasterDrift    int32
	UTCReasonable     bool
}

// FollowUp is the precise origin of a two-step Sync (1588-2002 6.4.4).
type FollowUp struct {
	Header
	AssociatedSequence uint16
	Precise            Timestamp
}

// DelayResp answers a Delay_Req (1588-2002 6.4.5).
type DelayResp struct {
	Header
	Receipt     Timestamp
	ReqTech     uint8
	ReqUUID     UUID
	ReqPort     uint16
	ReqSequence uint16
}

// Errors of the decoder; every one is counted and the message dropped.
var (
	ErrShort   = errors.New("ptpv1: message too short")
	ErrVersion = errors.New("ptpv1: not versionPTP 1")
	ErrType    = errors.New("ptpv1: messageType does not match control")
)

// IsV1 tells PTPv1 from PTPv2 on shared ports: v1 starts with versionPTP
// 1 as a 16-bit field; v2 has its version in the low nibble of byte 1 and a
// message type in byte 0.
func IsV1(b []byte) bool { return len(b) >= 2 && b[0] == 0 && b[1] == 1 }

var be = binary.BigEndian

// ParseHeader decodes the header and checks the version, the length the
// control field implies, and that messageType agrees with it.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, ErrShort
	}
	if !IsV1(b) {
		return h, ErrVersion
	}
	h.VersionNetwork = be.Uint16(b[2:])
	copy(h.Subdomain[:], b[4:20])
	h.MessageType = b[20]
	h.SourceTech = b[21]
	copy(h.SourceUUID[:], b[22:28])
	h.SourcePort = be.Uint16(b[28:])
	h.Sequence = be.Uint16(b[30:])
	h.Control = b[32]
	h.Flags = be.Uint16(b[34:])
	want, typ := 0, 0
	switch h.Control {
	case CtlSync, CtlDelayReq:
		want, typ = SyncLen, EventMessage
	case CtlFollowUp:
		want, typ = FollowUpLen, GeneralMessage
	case CtlDelayResp:
		want, typ = DelayRespLen, GeneralMessage
	case CtlManagement:
		want, typ = ManagementLen, GeneralMessage
	default:
		return h, ErrType
	}
	if h.MessageType != uint8(typ) {
		return h, ErrType
	}
	if len(b) < want {
		return h, ErrShort
	}
	return h, nil
}

func putHeader(b []byte, h *Header) {
	clear(b[:HeaderLen])
	be.PutUint16(b[0:], 1) // versionPTP
	be.PutUint16(b[2:], h.VersionNetwork)
	copy(b[4:20], h.Subdomain[:])
	b[20] = h.MessageType
	b[21] = h.SourceTech
	copy(b[22:28], h.SourceUUID[:])
	be.PutUint16(b[28:], h.SourcePort)
	be.PutUint16(b[30:], h.Sequence)
	b[32] = h.Control
	be.PutUint16(b[34:], h.Flags)
}

func putTS(b []byte, t Timestamp) {
	be.PutUint32(b, t.Seconds)
	be.PutUint32(b[4:], uint32(t.Nanoseconds))
}

func getTS(b []byte) Timestamp {
	return Timestamp{Seconds: be.Uint32(b), Nanoseconds: int32(be.Uint32(b[4:]))}
}

func bool8(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// MarshalTo writes the message into b (at least SyncLen bytes) and
// returns its length.
func (s *Sync) MarshalTo(b []byte) int {
	b = b[:SyncLen]
	putHeader(b, &s.Header)
	clear(b[HeaderLen:])
	putTS(b[40:], s.Origin)
	be.PutUint16(b[48:], s.EpochNumber)
	be.PutUint16(b[50:], uint16(s.CurrentUTCOffset))
	b[53] = s.GMTech
	copy(b[54:60], s.GMUUID[:])
	be.PutUint16(b[60:], s.GMPort)
	be.PutUint16(b[62:], s.GMSequence)
	b[67] = s.GMStratum
	copy(b[68:72], s.GMIdentifier[:])
	be.PutUint16(b[74:], uint16(s.GMVariance))
	b[77] = bool8(s.GMPreferred)
	b[79] = bool8(s.GMIsBoundary)
	b[83] = byte(s.SyncInterval)
	be.PutUint16(b[86:], uint16(s.LocalVariance))
	be.PutUint16(b[90:], s.LocalStepsRemoved)
	b[95] = s.LocalStratum
	copy(b[96:100], s.LocalIdentifier[:])
	b[101] = s.ParentTech
	copy(b[102:108], s.ParentUUID[:])
	be.PutUint16(b[110:], s.ParentPort)
	be.PutUint16(b[114:], uint16(s.EstMasterVariance))
	be.PutUint32(b[116:], uint32(s.EstMasterDrift))
	b[123] = bool8(s.UTCReasonable)
	return SyncLen
}

// Unmarshal decodes a Sync or Delay_Req.
func (s *Sync) Unmarshal(b []byte) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Control != CtlSync && h.Control != CtlDelayReq {
		return ErrType
	}
	s.Header = h
	s.Origin = getTS(b[40:])
	s.EpochNumber = be.Uint16(b[48:])
	s.CurrentUTCOffset = int16(be.Uint16(b[50:]))
	s.GMTech = b[53]
	copy(s.GMUUID[:], b[54:60])
	s.GMPort = be.Uint16(b[60:])
	s.GMSequence = be.Uint16(b[62:])
	s.GMStratum = b[67]
	copy(s.GMIdentifier[:], b[68:72])
	s.GMVariance = int16(be.Uint16(b[74:]))
	s.GMPreferred = b[77] != 0
	s.GMIsBoundary = b[79] != 0
	s.SyncInterval = int8(b[83])
	s.LocalVariance = int16(be.Uint16(b[86:]))
	s.LocalStepsRemoved = be.Uint16(b[90:])
	s.LocalStratum = b[95]
	copy(s.LocalIdentifier[:], b[96:100])
	s.ParentTech = b[101]
	copy(s.ParentUUID[:], b[102:108])
	s.ParentPort = be.Uint16(b[110:])
	s.EstMasterVariance = int16(be.Uint16(b[114:]))
	s.EstMasterDrift = int32(be.Uint32(b[116:]))
	s.UTCReasonable = b[123] != 0
	return nil
}

// MarshalTo writes the Follow_Up into b (at least FollowUpLen bytes).
func (f *FollowUp) MarshalTo(b []byte) int {
	b = b[:FollowUpLen]
	putHeader(b, &f.Header)
	clear(b[HeaderLen:])
	be.PutUint16(b[42:], f.AssociatedSequence)
	putTS(b[44:], f.Precise)
	return FollowUpLen
}

// Unmarshal decodes a Follow_Up.
func (f *FollowUp) Unmarshal(b []byte) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Control != CtlFollowUp {
		return ErrType
	}
	f.Header = h
	f.AssociatedSequence = be.Uint16(b[42:])
	f.Precise = getTS(b[44:])
	return nil
}

// MarshalTo writes the Delay_Resp into b (at least DelayRespLen bytes).
func (d *DelayResp) MarshalTo(b []byte) int {
	b = b[:DelayRespLen]
	putHeader(b, &d.Header)
	clear(b[HeaderLen:])
	putTS(b[40:], d.Receipt)
	b[49] = d.ReqTech
	copy(b[50:56], d.ReqUUID[:])
	be.PutUint16(b[56:], d.ReqPort)
	be.PutUint16(b[58:], d.ReqSequence)
	return DelayRespLen
}

// Unmarshal decodes a Delay_Resp.
func (d *DelayResp) Unmarshal(b []byte) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Control != CtlDelayResp {
		return ErrType
	}
	d.Header = h
	d.Receipt = getTS(b[40:])
	d.ReqTech = b[49]
	copy(d.ReqUUID[:], b[50:56])
	d.ReqPort = be.Uint16(b[56:])
	d.ReqSequence = be.Uint16(b[58:])
	return nil
}
