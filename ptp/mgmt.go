package ptp

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/facebook/time/ptp/protocol"
)

// Management (IEEE 1588-2019 clause 15). A management message is the
// common header, targetPortIdentity (10), startingBoundaryHops (1),
// boundaryHops (1), actionField (1, low nibble), reserved (1), then one
// TLV: MANAGEMENT (type 0x0001: managementId and data) or
// MANAGEMENT_ERROR_STATUS (type 0x0002) in replies.
const (
	mgmtBodyLen = 48

	actionGet      = 0
	actionSet      = 1
	actionResponse = 2
	actionCommand  = 3
	actionAck      = 4

	tlvManagement  = 0x0001
	tlvMgmtError   = 0x0002
	idNull         = 0x0000
	idDefaultDS    = 0x2000
	idCurrentDS    = 0x2001
	idParentDS     = 0x2002
	idTimePropsDS  = 0x2003
	idPortDS       = 0x2004
	errNotSetable  = 0x0005 // 1588-2019 Table 109
	errNotSupport  = 0x0006
	errWrongLength = 0x0003
)

// management answers GETs of the five data sets pmc asks for, and refuses
// SET and COMMAND with an error status. A reply is larger than its
// request and goes where the request says it came from: replies are rate
// limited (MgmtRate a second, MgmtBurst at once), so that a forged source
// cannot turn the port into an amplifier towards a victim.
func (p *Port) management(b []byte, from netip.AddrPort, now time.Time) []Out {
	if len(b) < mgmtBodyLen+6 {
		return p.drop(DropBadMgmt)
	}
	target := protocol.PortIdentity{
		ClockIdentity: protocol.ClockIdentity(binary.BigEndian.Uint64(b[34:])),
		PortNumber:    binary.BigEndian.Uint16(b[42:]),
	}
	if (target.ClockIdentity != p.cfg.Identity.ClockIdentity && target.ClockIdentity != 0xffffffffffffffff) ||
		(target.PortNumber != p.cfg.Identity.PortNumber && target.PortNumber != 0xffff) {
		return nil // addressed to another clock
	}
	action := b[46] & 0x0f
	tlvType := binary.BigEndian.Uint16(b[48:])
	tlvLen := int(binary.BigEndian.Uint16(b[50:]))
	if tlvType != tlvManagement || tlvLen < 2 || mgmtBodyLen+4+tlvLen > len(b) {
		return p.drop(DropBadMgmt)
	}
	id := binary.BigEndian.Uint16(b[52:])
	if action != actionGet && action != actionSet && action != actionCommand {
		return nil // RESPONSE/ACKNOWLEDGE from another node
	}
	if !p.mgmtAllowed(now) {
		return p.drop(DropMgmtRate)
	}
	p.Stats.Management++
	out := p.buf()
	n := p.mgmtHeader(out, b)
	switch action {
	case actionGet:
		out[46] = actionResponse
		data, ok := p.dataSet(id, out[n+6:])
		if !ok {
			n += mgmtError(out[n:], errNotSupport, id)
			break
		}
		binary.BigEndian.PutUint16(out[n:], tlvManagement)
		binary.BigEndian.PutUint16(out[n+2:], uint16(2+data))
		binary.BigEndian.PutUint16(out[n+4:], id)
		n += 6 + data
	case actionSet:
		out[46] = actionResponse
		code := uint16(errNotSupport)
		if id >= idDefaultDS && id <= idPortDS {
			code = errNotSetable // data sets are read-only (Table 59)
		}
		n += mgmtError(out[n:], code, id)
	case actionCommand:
		out[46] = actionAck
		n += mgmtError(out[n:], errNotSupport, id)
	}
	binary.BigEndian.PutUint16(out[2:], uint16(n))
	p.out(Out{Data: out[:n], To: from})
	return p.take()
}

// mgmtAllowed spends one reply of the management credit, which refills at
// MgmtRate a second up to MgmtBurst.
func (p *Port) mgmtAllowed(now time.Time) bool {
	if dt := now.Sub(p.mgmtAt).Seconds(); dt > 0 {
		p.mgmtCredit = min(float64(p.cfg.MgmtBurst), p.mgmtCredit+dt*float64(p.cfg.MgmtRate))
	}
	p.mgmtAt = now
	if p.mgmtCredit < 1 {
		return false
	}
	p.mgmtCredit--
	return true
}

// mgmtHeader writes the reply's header and management body, addressed to
// the requester.
func (p *Port) mgmtHeader(out, req []byte) int {
	var h protocol.Header
	p.header(&h, protocol.MessageManagement, 0, binary.BigEndian.Uint16(req[30:]), 4, int8(protocol.MgmtLogMessageInterval))
	n := headerMarshalTo(&h, out)
	copy(out[34:44], req[20:30]) // targetPortIdentity: the requester
	out[44] = req[44]            // startingBoundaryHops
	out[45] = req[44]            // boundaryHops: we are the first hop
	out[47] = 0
	return n + 14
}

func headerMarshalTo(h *protocol.Header, b []byte) int {
	var a protocol.FollowUp // any message type marshals the shared header
	a.Header = *h
	a.MarshalBinaryTo(b)
	return headerLen
}

func mgmtError(b []byte, code, id uint16) int {
	binary.BigEndian.PutUint16(b[0:], tlvMgmtError)
	binary.BigEndian.PutUint16(b[2:], 8)
	binary.BigEndian.PutUint16(b[4:], code)
	binary.BigEndian.PutUint16(b[6:], id)
	binary.BigEndian.PutUint32(b[8:], 0)
	return 12
}

func putQuality(b []byte, q protocol.ClockQuality) {
	b[0] = byte(q.ClockClass)
	b[1] = byte(q.ClockAccuracy)
	binary.BigEndian.PutUint16(b[2:], q.OffsetScaledLogVariance)
}

// dataSet writes a data set's management representation (1588-2019
// 15.5.3) and returns its length.
func (p *Port) dataSet(id uint16, b []byte) (int, bool) {
	id0 := p.cfg.Identity
	switch id {
	case idNull:
		return 0, true
	case idDefaultDS: // 15.5.3.3.1
		b[0] = 0x01 // TSC: two-step; SO (slave-only) clear
		b[1] = 0
		binary.BigEndian.PutUint16(b[2:], 1) // numberPorts
		b[4] = p.cfg.Priority1
		putQuality(b[5:], p.gm.Quality)
		b[9] = p.cfg.Priority2
		binary.BigEndian.PutUint64(b[10:], uint64(id0.ClockIdentity))
		b[18] = p.cfg.Domain
		b[19] = 0
		return 20, true
	case idCurrentDS: // 15.5.3.4.1: a grandmaster is its own master
		for i := 0; i < 18; i++ {
			b[i] = 0
		}
		return 18, true
	case idParentDS: // 15.5.3.5.1
		binary.BigEndian.PutUint64(b[0:], uint64(id0.ClockIdentity))
		binary.BigEndian.PutUint16(b[8:], 0) // 8.2.3.2: port 0 when we are the grandmaster
		b[10], b[11] = 0, 0
		binary.BigEndian.PutUint16(b[12:], 0xffff)     // observedParentOffsetScaledLogVariance: not computed
		binary.BigEndian.PutUint32(b[14:], 0x7fffffff) // observedParentClockPhaseChangeRate: not computed
		b[18] = p.cfg.Priority1
		putQuality(b[19:], p.gm.Quality)
		b[23] = p.cfg.Priority2
		binary.BigEndian.PutUint64(b[24:], uint64(id0.ClockIdentity))
		return 32, true
	case idTimePropsDS: // 15.5.3.6.1: flags as in the header's second octet
		binary.BigEndian.PutUint16(b[0:], uint16(p.gm.UTCOffset))
		b[2] = byte(p.gm.Flags & 0x3f)
		b[3] = byte(p.gm.TimeSource)
		return 4, true
	case idPortDS: // 15.5.3.7.1
		binary.BigEndian.PutUint64(b[0:], uint64(id0.ClockIdentity))
		binary.BigEndian.PutUint16(b[8:], id0.PortNumber)
		b[10] = byte(p.state)
		b[11] = byte(p.cfg.LogMinDelayReq)
		binary.BigEndian.PutUint64(b[12:], 0) // peerMeanPathDelay
		b[20] = byte(p.cfg.LogAnnounce)
		b[21] = p.cfg.ReceiptTimeout
		b[22] = byte(p.cfg.LogSync)
		b[23] = 1 // delayMechanism: E2E
		b[24] = 0 // logMinPdelayReqInterval
		b[25] = 2 // versionNumber
		return 26, true
	}
	return 0, false
}
