package ptp

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sitegm/event"
	"time"

	"github.com/facebook/time/ptp/protocol"
)

// GM is what the grandmaster advertises, from clock/quality, refreshed by
// the daemon.
type GM struct {
	Quality    protocol.ClockQuality
	TimeSource protocol.TimeSource
	UTCOffset  int16
	// Flags: FlagLeap61, FlagLeap59, FlagCurrentUtcOffsetValid,
	// FlagPTPTimescale, FlagTimeTraceable, FlagFrequencyTraceable.
	Flags uint16
}

// Config of one port.
type Config struct {
	Interface            string
	Profile              string
	Domain               uint8
	Priority1, Priority2 uint8
	LogAnnounce          int8
	LogSync              int8
	LogMinDelayReq       int8
	ReceiptTimeout       uint8
	MasterOnly           bool
	// LockedFirst: a grandmaster whose clockClass says it is locked
	// beats one that is not before priority1 is compared
	// (CompareLockedFirst), so an unlocked or holdover sitegm yields to a
	// locked one and a locked sitegm does not yield to an unlocked one.
	LockedFirst bool
	Identity    protocol.PortIdentity
	// L2: the transport is Ethernet (PTP over IEEE 802.3, Annex E): no
	// unicast replies, every message multicast.
	L2 bool
	// GeneralPort is where a unicast Delay_Resp goes on the requester (its
	// general port, 320), whatever port its Delay_Req came from.
	GeneralPort uint16
	// AnnounceRange is the profile's range of logAnnounceInterval: a
	// foreign master's interval is clamped into it before it sets a timer
	// (Profile.LogAnnounceRange; zero means this port's own interval only).
	AnnounceRange Range
	// MgmtRate and MgmtBurst limit management replies (a second, at once);
	// zero means 16 and 32.
	MgmtRate, MgmtBurst int
}

// Out is a message to send.
type Out struct {
	Data  []byte // valid until the next call into the port
	Event bool   // on the event port (319) rather than general (320)
	// To is the unicast destination; the zero value means the PTP
	// multicast group (224.0.1.129, or 01-1B-19-00-00-00 on L2).
	To netip.AddrPort
	// DelayReq: the message is a PASSIVE port's Delay_Req to the master
	// it watches (watchmaster.go); its timestamp comes back like a Sync's
	// (Sync is set too) but it is not a Sync of this port's rhythm.
	DelayReq bool
	// Sync asks the transport for the transmit timestamp, to be handed
	// back with SyncSent.
	Sync bool
	Seq  uint16
}

// Event is something to log (the vocabulary every core shares).
type Event = event.Event

// Stats counts a port's traffic.
type Stats struct {
	DelayReqs, DelayResps       uint64
	Announces, Syncs, FollowUps uint64
	MissedTxTimestamps          uint64
	ForeignAnnounces            uint64
	Management                  uint64
	// Clamped counts foreign Announces whose logMessageInterval lay
	// outside the profile's range.
	Clamped uint64
	Drops   [NumDrops]uint64
}

// foreignWindow: a foreign master is qualified after two Announces
// (FOREIGN_MASTER_THRESHOLD) within four announce intervals (1588-2019
// 9.3.2.4.4, FOREIGN_MASTER_TIME_WINDOW).
const (
	foreignWindow = 4
	// maxForeign bounds the table (a flood of fake masters must not grow
	// memory); when it is full a newcomer takes the place of the worst
	// entry it beats, so junk cannot hide a better master.
	maxForeign = 16
)

// Port is one PTPv2 grandmaster port.
type Port struct {
	cfg          Config
	gm           GM
	state        protocol.PortState
	listenUntil  time.Time
	nextAnnounce time.Time
	nextSync     time.Time
	annSeq       uint16
	syncSeq      uint16
	syncPending  bool
	foreign      Foreign[protocol.PortIdentity, Dataset]
	best         *Dataset  // the better master while PASSIVE
	rivalSince   time.Time // since when an unlocked master with a better priority1 is heard (locked_first)
	watch        masterWatch
	lastAlarm    time.Time
	mgmtCredit   float64 // management replies that may go now
	mgmtAt       time.Time
	bufs         [8][512]byte
	nbuf         int
	outs         []Out
	events       event.List
	Stats        Stats
}

// New starts a port in LISTENING: for one announce receipt timeout it
// only listens, so that a backup grandmaster hears its primary before it
// ever sends (1588-2019 9.2.5: LISTENING before the first BMCA decision).
func New(cfg Config, now time.Time) *Port {
	if cfg.AnnounceRange == (Range{}) {
		cfg.AnnounceRange = Range{int(cfg.LogAnnounce), int(cfg.LogAnnounce)}
	}
	if cfg.MgmtRate <= 0 {
		cfg.MgmtRate, cfg.MgmtBurst = 16, 32
	}
	p := &Port{cfg: cfg, state: protocol.PortStateListening, foreign: Foreign[protocol.PortIdentity, Dataset]{Max: maxForeign, Cmp: cfg.compare()},
		mgmtCredit: float64(cfg.MgmtBurst), mgmtAt: now}
	p.listenUntil = now.Add(time.Duration(cfg.ReceiptTimeout) * Interval(cfg.LogAnnounce))
	p.gm.Quality = protocol.ClockQuality{ClockClass: 248, ClockAccuracy: 0xFE, OffsetScaledLogVariance: 0xFFFF}
	p.gm.TimeSource = 0xA0
	return p
}

// Interval is 2^l seconds, for l within ±24 (beyond, it saturates: a
// foreign field must never overflow a duration).
func Interval(l int8) time.Duration {
	l = max(-24, min(24, l))
	if l >= 0 {
		return time.Second << uint(l)
	}
	return time.Second >> uint(-l)
}

// logDuration is Interval for this port's own, configured intervals.
func logDuration(l int8) time.Duration { return Interval(l) }

// SetGM updates what the port advertises.
func (p *Port) SetGM(gm GM) { p.gm = gm }

// State is the port state.
func (p *Port) State() protocol.PortState { return p.state }

// Config returns the configuration.
func (p *Port) Config() Config { return p.cfg }

func (p *Port) buf() []byte {
	b := p.bufs[p.nbuf%len(p.bufs)][:]
	p.nbuf++
	return b
}

func (p *Port) out(o Out) { p.outs = append(p.outs, o) }

func (p *Port) take() []Out {
	o := p.outs
	p.outs = p.outs[:0]
	p.nbuf = 0
	return o
}

// Events returns and clears what happened since the last call.
func (p *Port) Events() []Event { return p.events.Take() }

func (p *Port) emit(level slog.Level, name, msg string, attrs ...any) {
	// The daemon's logger already names the interface.
	p.events.Emit(level, name, msg, append([]any{"ptp_domain", p.cfg.Domain}, attrs...)...)
}

// D0 is this clock's own dataset.
func (p *Port) D0() Dataset {
	return Dataset{Priority1: p.cfg.Priority1, Quality: p.gm.Quality, Priority2: p.cfg.Priority2,
		GMIdentity: p.cfg.Identity.ClockIdentity, Sender: p.cfg.Identity, ReceiverPort: p.cfg.Identity, IsLocalClock: true}
}

// Foreign lists the qualified foreign masters heard.
func (p *Port) Foreign(now time.Time) []Dataset { return p.foreign.Qualified(now, foreignWindow) }

// Tick runs the port's timers at now (the disciplined clock, TAI).
func (p *Port) Tick(now time.Time) []Out {
	p.foreign.Expire(now, int(p.cfg.ReceiptTimeout))
	p.decide(now)
	p.watchTick(now)
	if p.state == protocol.PortStateMaster {
		if !now.Before(p.nextAnnounce) {
			p.sendAnnounce(now)
			p.nextAnnounce = advance(p.nextAnnounce, now, logDuration(p.cfg.LogAnnounce))
		}
		if !now.Before(p.nextSync) {
			if !p.syncPending {
				p.sendSync(now)
			} else {
				// The last Sync's timestamp never came back (a driver
				// that lost it): give up on it rather than stop.
				p.syncPending = false
				p.Stats.MissedTxTimestamps++
			}
			p.nextSync = advance(p.nextSync, now, logDuration(p.cfg.LogSync))
		}
	}
	return p.take()
}

// NextDue is when Tick has something to do next: the end of LISTENING, the
// next Announce or Sync, or a foreign master's receipt timeout.
func (p *Port) NextDue(now time.Time) time.Time {
	due := now.Add(time.Second)
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(due) {
			due = t
		}
	}
	if p.state == protocol.PortStateListening {
		earlier(p.listenUntil)
	}
	if p.state == protocol.PortStateMaster {
		earlier(p.nextAnnounce)
		earlier(p.nextSync)
	}
	if p.state == protocol.PortStatePassive {
		earlier(p.watch.nextDreq)
	}
	earlier(p.foreign.NextExpiry(int(p.cfg.ReceiptTimeout)))
	return due
}

// advance moves a deadline past now by whole periods (no burst after a
// stall).
func advance(next, now time.Time, period time.Duration) time.Time {
	if next.IsZero() || now.Sub(next) > period {
		return now.Add(period)
	}
	return next.Add(period)
}

// decide is the state decision of a grandmaster-only port (1588-2019
// 9.3.3): MASTER unless a qualified foreign master is better than this
// clock (by CompareLockedFirst when LockedFirst), then PASSIVE;
// master_only overrides with an alarm.
func (p *Port) decide(now time.Time) {
	if p.state == protocol.PortStateListening && now.Before(p.listenUntil) {
		return
	}
	var best *Dataset
	if b, ok := p.foreign.Best(now, foreignWindow); ok {
		best = &b
	}
	better := best != nil && p.cfg.compare()(*best, p.D0()) < 0
	switch {
	case better && p.cfg.MasterOnly:
		if now.Sub(p.lastAlarm) >= time.Minute {
			p.lastAlarm = now
			p.emit(slog.LevelError, "ptp_master_conflict",
				"a better PTP master is on the network; staying MASTER (master_only): "+best.Describe(),
				"ptp_foreign_master", best.GMIdentity.String())
		}
		p.setState(protocol.PortStateMaster, now, nil)
	case better:
		p.rivalSince = time.Time{}
		p.setState(protocol.PortStatePassive, now, best)
	default:
		rival := best != nil && Compare(*best, p.D0()) < 0
		switch {
		case !rival:
			p.rivalSince = time.Time{}
		case p.rivalSince.IsZero():
			p.rivalSince = now
		}
		// locked_first keeps this port MASTER, but followers run the
		// standard order and take the unlocked master's priority1. Said
		// once it has lasted a receipt timeout: another sitegm in holdover
		// yields within that (a pair's antenna cut), a rival does not.
		if rival && now.Sub(p.rivalSince) >= time.Duration(p.cfg.ReceiptTimeout)*Interval(p.cfg.LogAnnounce) &&
			now.Sub(p.lastAlarm) >= time.Minute {
			p.lastAlarm = now
			p.emit(slog.LevelWarn, "ptp_master_conflict",
				"a master that is not locked announces a better priority1; staying MASTER (locked_first), but followers may take it: "+best.Describe(),
				"ptp_foreign_master", best.GMIdentity.String())
		}
		p.setState(protocol.PortStateMaster, now, best)
	}
	p.best = nil
	if better {
		p.best = best
	}
}

func (p *Port) setState(s protocol.PortState, now time.Time, best *Dataset) {
	if s == p.state {
		return
	}
	prev := p.state
	p.state = s
	switch {
	case s == protocol.PortStatePassive:
		why := "a better master is on the network: "
		if Compare(*best, p.D0()) > 0 {
			why = "a better master is on the network (locked while this clock is not: locked_first): "
		}
		p.emit(slog.LevelWarn, "ptp_port_state", "PTP port PASSIVE: "+why+best.Describe(),
			"ptp_state", s.String(), "ptp_prev_state", prev.String(), "ptp_foreign_master", best.GMIdentity.String())
	case prev == protocol.PortStatePassive && best != nil:
		p.emit(event.Notice, "ptp_port_state", "PTP port MASTER again: this clock is locked, the other master is not or ranks below it: "+best.Describe(),
			"ptp_state", s.String(), "ptp_prev_state", prev.String(), "ptp_foreign_master", best.GMIdentity.String())
	case prev == protocol.PortStatePassive:
		p.emit(event.Notice, "ptp_port_state", "PTP port MASTER again: the better master went silent",
			"ptp_state", s.String(), "ptp_prev_state", prev.String())
	default:
		p.emit(event.Notice, "ptp_port_state", "PTP port "+s.String(), "ptp_state", s.String(), "ptp_prev_state", prev.String())
	}
	if s == protocol.PortStateMaster {
		// Announce at once: slaves waiting for a master should not wait a
		// whole interval. Syncs run half a sync interval off the
		// Announces, so the two never leave back to back: a Sync sent right
		// behind an Announce was measured ~20 µs late by ptp4l on veth.
		p.nextAnnounce, p.nextSync = now, now.Add(logDuration(p.cfg.LogSync)/2)
	}
}

func (p *Port) header(h *protocol.Header, t protocol.MessageType, length int, seq uint16, ctrl uint8, logInt int8) {
	*h = protocol.Header{
		SdoIDAndMsgType:    protocol.NewSdoIDAndMsgType(t, 0),
		Version:            2,
		MessageLength:      uint16(length),
		DomainNumber:       p.cfg.Domain,
		SourcePortIdentity: p.cfg.Identity,
		SequenceID:         seq,
		ControlField:       ctrl,
		LogMessageInterval: protocol.LogInterval(logInt),
	}
}

func (p *Port) sendAnnounce(now time.Time) {
	var a protocol.Announce
	p.header(&a.Header, protocol.MessageAnnounce, announceLen, p.annSeq, 5, p.cfg.LogAnnounce)
	a.FlagField = p.gm.Flags
	a.OriginTimestamp = protocol.NewTimestamp(now)
	a.CurrentUTCOffset = p.gm.UTCOffset
	a.GrandmasterPriority1 = p.cfg.Priority1
	a.GrandmasterClockQuality = p.gm.Quality
	a.GrandmasterPriority2 = p.cfg.Priority2
	a.GrandmasterIdentity = p.cfg.Identity.ClockIdentity
	a.StepsRemoved = 0
	a.TimeSource = p.gm.TimeSource
	b := p.buf()
	n, err := a.MarshalBinaryTo(b)
	if err != nil {
		return
	}
	p.annSeq++
	p.Stats.Announces++
	p.out(Out{Data: b[:n]})
}

func (p *Port) sendSync(now time.Time) {
	var s protocol.SyncDelayReq
	p.header(&s.Header, protocol.MessageSync, syncLen, p.syncSeq, 0, p.cfg.LogSync)
	s.FlagField = protocol.FlagTwoStep
	// The origin timestamp of a two-step Sync is an estimate; the
	// Follow_Up carries the precise one.
	s.OriginTimestamp = protocol.NewTimestamp(now)
	b := p.buf()
	n, err := s.MarshalBinaryTo(b)
	if err != nil {
		return
	}
	p.syncPending = true
	p.Stats.Syncs++
	p.out(Out{Data: b[:n], Event: true, Sync: true, Seq: p.syncSeq})
	p.syncSeq++
}

// SyncSent hands back the transmit timestamp of the Sync with seq (on the
// disciplined clock); the port answers with its Follow_Up.
func (p *Port) SyncSent(seq uint16, tx time.Time) []Out {
	if !p.syncPending || seq != p.syncSeq-1 {
		p.watchStamped(seq, tx, true)
		return nil
	}
	p.syncPending = false
	var f protocol.FollowUp
	p.header(&f.Header, protocol.MessageFollowUp, followUpLen, seq, 2, p.cfg.LogSync)
	f.PreciseOriginTimestamp = protocol.NewTimestamp(tx)
	b := p.buf()
	n, err := f.MarshalBinaryTo(b)
	if err != nil {
		return nil
	}
	p.Stats.FollowUps++
	p.out(Out{Data: b[:n]})
	return p.take()
}

// SyncFailed says the Sync with seq got no transmit timestamp.
func (p *Port) SyncFailed(seq uint16) {
	if p.syncPending && seq == p.syncSeq-1 {
		p.syncPending = false
		p.Stats.MissedTxTimestamps++
		return
	}
	p.watchStamped(seq, time.Time{}, false)
}

func (p *Port) drop(d Drop) []Out {
	p.Stats.Drops[d]++
	return nil
}

// Receive takes one message received at rx (the disciplined clock) from
// from; now is the clock's time.
func (p *Port) Receive(b []byte, rx time.Time, from netip.AddrPort, now time.Time) []Out {
	t, d, ok := CheckHeader(b, p.cfg.Domain)
	if !ok {
		return p.drop(d)
	}
	switch t {
	case protocol.MessageDelayReq:
		if p.state != protocol.PortStateMaster {
			return p.drop(DropState)
		}
		p.Stats.DelayReqs++
		buf := p.buf()
		n, ok := AppendDelayResp(buf, b, rx, p.cfg.Identity, p.cfg.LogMinDelayReq)
		if !ok {
			return p.drop(DropShort)
		}
		to := netip.AddrPort{}
		if buf[6]&byte(protocol.FlagUnicast>>8) != 0 && !p.cfg.L2 {
			to = netip.AddrPortFrom(from.Addr(), p.cfg.GeneralPort)
		}
		p.Stats.DelayResps++
		p.out(Out{Data: buf[:n], To: to})
		return p.take()
	case protocol.MessageAnnounce:
		return p.announce(b, now)
	case protocol.MessageManagement:
		return p.management(b, from, now)
	case protocol.MessageSync, protocol.MessageFollowUp, protocol.MessageDelayResp:
		// The master a PASSIVE port watches; anything else (another
		// master's traffic, our own looped back) is not answered.
		p.watchReceive(t, b, rx)
		return p.take()
	case protocol.MessageSignaling:
		return p.drop(DropType)
	}
	return p.drop(DropType)
}

func (p *Port) announce(b []byte, now time.Time) []Out {
	var a protocol.Announce
	if err := a.UnmarshalBinary(b); err != nil {
		return p.drop(DropShort)
	}
	if a.SourcePortIdentity.ClockIdentity == p.cfg.Identity.ClockIdentity {
		return p.drop(DropOwn)
	}
	if a.GrandmasterIdentity == p.cfg.Identity.ClockIdentity {
		// Our own grandmaster, relayed back around a loop by a boundary
		// clock, or forged: it is us, not another master. Treated like
		// our own Announce, which 1588-2019 9.3.2.5 keeps out of the
		// foreign master data set; compared with ourselves it made this
		// port PASSIVE to itself.
		return p.drop(DropOwnGM)
	}
	if a.StepsRemoved >= 255 {
		// 1588-2019 9.3.2.5: an Announce that went through 255 boundary
		// clocks is not considered.
		return p.drop(DropSteps)
	}
	p.Stats.ForeignAnnounces++
	ds := FromAnnounce(&a, p.cfg.Identity)
	// The sender chooses its interval; it sets our timers only within the
	// profile's range (1588-2019 9.3.2.4.4 and 8.2.15.4.1 give the window
	// and the timeout in announce intervals; the profile bounds what an
	// interval may be). Two Announces "every 2^30 s" kept this port
	// PASSIVE for 3 x 2^30 s.
	li := int(a.LogMessageInterval)
	if c := max(p.cfg.AnnounceRange.Min, min(p.cfg.AnnounceRange.Max, li)); c != li {
		p.Stats.Clamped++
		li = c
	}
	isNew, dropped := p.foreign.Hear(a.SourcePortIdentity, ds, Interval(int8(li)), now)
	if dropped {
		return p.drop(DropForeignFull)
	}
	if isNew {
		p.emit(slog.LevelInfo, "ptp_foreign_master", "PTP Announce from another master: "+ds.Describe(),
			"ptp_foreign_master", a.GrandmasterIdentity.String())
	}
	// Decide at once: a better master should not get two of our Syncs
	// in the meantime.
	p.decide(now)
	return p.take()
}

// Describe summarises the port for status output.
func (p *Port) Describe() string {
	return fmt.Sprintf("%s %s domain %d %s", p.cfg.Interface, p.cfg.Profile, p.cfg.Domain, p.state)
}
