package ptp

import (
	"encoding/binary"
	"log/slog"
	"time"

	"sitegm/event"

	"github.com/facebook/time/ptp/protocol"
)

// A PASSIVE port measures the master it yields to as a slave would, by
// the delay request-response mechanism (IEEE 1588-2019 11.3), without
// steering anything: in a redundant pair the box that does not lead
// watches the one that does, and says so when their clocks differ by
// more than both can be wrong by. One Delay_Req a second: a watch, not a
// servo.

const (
	watchInterval = time.Second
	watchSamples  = 8               // the least-delay of the last 8 (as NTP's clock filter, RFC 5905 10)
	watchMaxAge   = 4 * time.Second // a Sync and a Delay_Resp further apart are not one measurement
)

type watchSample struct {
	offset, delay time.Duration
}

// masterWatch is the measurement of the master a PASSIVE port yields to.
type masterWatch struct {
	master                   protocol.PortIdentity
	syncSeq                  uint16
	syncRx                   time.Time // t2 of the Sync waiting for its Follow_Up
	syncCorr                 time.Duration
	t1, t2                   time.Time // the last complete Sync, corrections in t1
	dreqSeq                  uint16
	dreqPending, dreqStamped bool
	t3                       time.Time
	nextDreq                 time.Time
	samples                  []watchSample
	measured                 uint64
	off                      bool
	lastOffset, lastDelay    time.Duration
	lastLimit                time.Duration
}

// MasterWatch is the measurement for the status: this clock minus the
// master's (negative: the master is ahead), the path delay, and the limit
// beyond which one of the two is wrong (both announced accuracies and
// the path delay; 0 when either accuracy is unknown).
type MasterWatch struct {
	Master   string `json:"master"`
	OffsetNS int64  `json:"offset_ns"`
	DelayNS  int64  `json:"delay_ns"`
	LimitNS  int64  `json:"limit_ns"`
	Off      bool   `json:"off"`
	Samples  uint64 `json:"samples"`
}

// Watch is the measurement of the master this port yields to; false when
// the port is not PASSIVE or has no measurement yet.
func (p *Port) Watch() (MasterWatch, bool) {
	w := &p.watch
	if p.state != protocol.PortStatePassive || w.measured == 0 {
		return MasterWatch{}, false
	}
	return MasterWatch{Master: w.master.String(), OffsetNS: int64(w.lastOffset), DelayNS: int64(w.lastDelay),
		LimitNS: int64(w.lastLimit), Off: w.off, Samples: w.measured}, true
}

// watchReset forgets the measurement (another master, or not PASSIVE).
func (p *Port) watchReset(master protocol.PortIdentity) {
	if p.watch.off {
		p.emit(event.Notice, "ptp_master_offset", "PTP: no longer measuring the master this port yielded to")
	}
	p.watch = masterWatch{master: master}
}

// watchTick sends the next Delay_Req to the master while PASSIVE.
func (p *Port) watchTick(now time.Time) {
	if p.state != protocol.PortStatePassive || p.best == nil {
		if p.watch.master != (protocol.PortIdentity{}) {
			p.watchReset(protocol.PortIdentity{})
		}
		return
	}
	if p.best.Sender != p.watch.master {
		p.watchReset(p.best.Sender)
	}
	w := &p.watch
	if now.Before(w.nextDreq) {
		return
	}
	w.nextDreq = now.Add(watchInterval)
	var r protocol.SyncDelayReq
	w.dreqSeq++
	p.header(&r.Header, protocol.MessageDelayReq, delayReqLen, w.dreqSeq, 1, 0x7f)
	b := p.buf()
	n, err := r.MarshalBinaryTo(b)
	if err != nil {
		return
	}
	w.dreqPending, w.dreqStamped = true, false
	p.out(Out{Data: b[:n], Event: true, Sync: true, Seq: w.dreqSeq, DelayReq: true})
}

// watchStamped takes a Delay_Req's transmit timestamp (t3); false when
// seq is not the pending one.
func (p *Port) watchStamped(seq uint16, tx time.Time, ok bool) bool {
	w := &p.watch
	if !w.dreqPending || w.dreqStamped || seq != w.dreqSeq {
		return false
	}
	if !ok {
		w.dreqPending = false
		return true
	}
	w.t3, w.dreqStamped = tx, true
	return true
}

// watchReceive takes the master's Sync, Follow_Up and Delay_Resp while
// PASSIVE; anything else (another master, not PASSIVE) is dropped.
func (p *Port) watchReceive(t protocol.MessageType, b []byte, rx time.Time) {
	w := &p.watch
	if p.state != protocol.PortStatePassive || p.best == nil || len(b) < headerLen {
		p.drop(DropType)
		return
	}
	src := protocol.PortIdentity{ClockIdentity: protocol.ClockIdentity(binary.BigEndian.Uint64(b[20:])), PortNumber: binary.BigEndian.Uint16(b[28:])}
	if src != p.best.Sender || src != w.master {
		p.drop(DropType)
		return
	}
	seq := binary.BigEndian.Uint16(b[30:])
	corr := correction(b)
	switch t {
	case protocol.MessageSync:
		if len(b) < syncLen || rx.IsZero() {
			p.drop(DropShort)
			return
		}
		w.syncSeq, w.syncRx, w.syncCorr = seq, rx, corr
		if b[6]&byte(protocol.FlagTwoStep>>8) == 0 {
			// One-step: the Sync carries t1 itself.
			w.t1, w.t2 = readTimestamp(b[34:44]).Add(corr), rx
			w.syncRx = time.Time{}
		}
	case protocol.MessageFollowUp:
		if len(b) < followUpLen || w.syncRx.IsZero() || seq != w.syncSeq {
			p.drop(DropType)
			return
		}
		w.t1, w.t2 = readTimestamp(b[34:44]).Add(w.syncCorr+corr), w.syncRx
		w.syncRx = time.Time{}
	case protocol.MessageDelayResp:
		if len(b) < delayRespLen || !w.dreqStamped || seq != w.dreqSeq ||
			binary.BigEndian.Uint64(b[44:]) != uint64(p.cfg.Identity.ClockIdentity) || binary.BigEndian.Uint16(b[52:]) != p.cfg.Identity.PortNumber {
			p.drop(DropType)
			return
		}
		w.dreqPending, w.dreqStamped = false, false
		t4 := readTimestamp(b[34:44]).Add(-corr)
		if w.t1.IsZero() || w.t3.Sub(w.t2).Abs() > watchMaxAge {
			return
		}
		p.watchSample(w.t2.Sub(w.t1), t4.Sub(w.t3))
	}
}

// watchSample takes one exchange: ms = t2 - t1 (master to slave), sm =
// t4 - t3 (slave to master). offset = (ms - sm)/2 is this clock minus the
// master's, delay = (ms + sm)/2 the mean path delay (1588-2019 11.3.2).
func (p *Port) watchSample(ms, sm time.Duration) {
	w := &p.watch
	s := watchSample{offset: (ms - sm) / 2, delay: (ms + sm) / 2}
	if s.delay < 0 {
		// Stamps on clocks that are not yet comparable: not a measurement.
		return
	}
	w.samples = append(w.samples, s)
	if len(w.samples) > watchSamples {
		w.samples = w.samples[1:]
	}
	best := w.samples[0]
	for _, x := range w.samples[1:] {
		if x.delay < best.delay {
			best = x
		}
	}
	w.measured++
	w.lastOffset, w.lastDelay = best.offset, best.delay
	// Each clock is within its announced accuracy of the truth; an
	// asymmetric path moves the offset by up to the path delay. 0xFE
	// (unknown) on either side: nothing to judge.
	own, theirs := p.gm.Quality.ClockAccuracy, p.best.Quality.ClockAccuracy
	known := own >= 0x17 && own <= 0x31 && theirs >= 0x17 && theirs <= 0x31
	w.lastLimit = 0
	if !known || !Locked(p.gm.Quality.ClockClass) && p.gm.Quality.ClockClass != 7 {
		// An unlocked clock claims nothing to compare.
		return
	}
	w.lastLimit = own.Duration() + theirs.Duration() + best.delay
	switch abs := best.offset.Abs(); {
	case !w.off && abs > w.lastLimit && len(w.samples) >= 4:
		w.off = true
		p.emit(slog.LevelWarn, "ptp_master_offset",
			"PTP: this clock and the master it yields to differ by more than both their accuracies and the path delay: one of the two is wrong",
			"ptp_master", w.master.String(), "ptp_master_offset", best.offset.String(), "ptp_master_delay", best.delay.String(),
			"ptp_master_limit", w.lastLimit.String())
	case w.off && abs < w.lastLimit*8/10:
		w.off = false
		p.emit(event.Notice, "ptp_master_offset", "PTP: this clock and the master it yields to agree within their accuracies again",
			"ptp_master", w.master.String(), "ptp_master_offset", best.offset.String())
	}
}

// correction is a header's correctionField (IEEE 1588-2019 13.3.2.10:
// nanoseconds scaled by 2^16).
func correction(b []byte) time.Duration {
	return time.Duration(int64(binary.BigEndian.Uint64(b[8:])) >> 16)
}

// readTimestamp reads a 10-octet PTP timestamp (48-bit seconds, 32-bit
// nanoseconds; 1588-2019 5.3.3).
func readTimestamp(b []byte) time.Time {
	sec := int64(binary.BigEndian.Uint16(b[0:]))<<32 | int64(binary.BigEndian.Uint32(b[2:]))
	ns := int64(binary.BigEndian.Uint32(b[6:]))
	return time.Unix(sec, min(ns, 999_999_999))
}
