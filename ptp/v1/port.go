package v1

import (
	"fmt"
	"log/slog"
	"time"

	"sitegm/event"
	"sitegm/ptp"
)

// GM is what the grandmaster advertises on v1, from clock/quality and the
// leap table, refreshed by the daemon.
type GM struct {
	Stratum       uint8
	Identifier    [4]byte
	Variance      int16
	Preferred     bool
	UTCOffset     int16
	Leap61        bool
	Leap59        bool
	UTCReasonable bool // the UTC offset is known to be right
}

// Config of one v1 port.
type Config struct {
	Interface  string
	Subdomain  string // "_DFLT", "_ALT1".."_ALT3"
	LogSync    int8   // log2 of the Sync interval, seconds
	MasterOnly bool
	UUID       UUID // the interface's MAC
}

// State of the port.
type State int

// Port states used by a grandmaster-only v1 port.
const (
	Listening State = iota
	Master
	Passive
)

func (s State) String() string { return [...]string{"LISTENING", "MASTER", "PASSIVE"}[s] }

// Stats counts the port's traffic.
type Stats struct {
	Syncs, FollowUps, DelayReqs, DelayResps uint64
	ForeignSyncs, Management                uint64
	OtherSubdomain, Own                     uint64
	Malformed, MissedTxTimestamps           uint64
	// Clamped counts foreign Syncs whose syncInterval lay outside
	// foreignIntervalRange; ForeignFull those from a master no better
	// than any in a full table.
	Clamped, ForeignFull uint64
}

// syncReceiptTimeout: a v1 master is forgotten after this many of its
// Sync intervals without a Sync (1588-2002 SYNC_RECEIPT_TIMEOUT).
const syncReceiptTimeout = 10

// Port is one IEEE 1588-2002 grandmaster port: Sync with ASSIST and its
// Follow_Up every 2^LogSync s, a multicast Delay_Resp to every Delay_Req of
// its subdomain, and the best-master comparison against foreign Syncs.
type Port struct {
	cfg         Config
	sub         Subdomain
	gm          GM
	state       State
	listenUntil time.Time
	nextSync    time.Time
	syncSeq     uint16
	syncPending bool
	foreign     ptp.Foreign[UUID, Credentials]
	best        *Credentials
	lastAlarm   time.Time
	bufs        [6][ManagementLen]byte
	nbuf        int
	outs        []ptp.Out
	events      event.List
	Stats       Stats
}

// New starts a port in LISTENING for one sync receipt timeout, so that a
// better master already on the network is heard before sitegm sends.
func New(cfg Config, now time.Time) (*Port, error) {
	sub, _, ok := ParseSubdomain(cfg.Subdomain)
	if !ok {
		return nil, fmt.Errorf("ptpv1: unknown subdomain %q", cfg.Subdomain)
	}
	p := &Port{cfg: cfg, sub: sub, foreign: ptp.Foreign[UUID, Credentials]{Max: maxForeign, Cmp: Compare}}
	p.listenUntil = now.Add(syncReceiptTimeout * interval(cfg.LogSync))
	p.gm = GM{Stratum: 4, Identifier: [4]byte{'D', 'F', 'L', 'T'}, Variance: 0x7FFF}
	return p, nil
}

func interval(l int8) time.Duration {
	if l >= 0 {
		return time.Second << uint(min(l, 16))
	}
	return time.Second >> uint(min(-l, 16))
}

// SetGM updates what the port advertises.
func (p *Port) SetGM(g GM) { p.gm = g }

// State is the port state.
func (p *Port) State() State { return p.state }

// Config is the port's configuration.
func (p *Port) Config() Config { return p.cfg }

// Self is this clock's credentials.
func (p *Port) Self() Credentials {
	return Credentials{UUID: p.cfg.UUID, Port: 1, Stratum: p.gm.Stratum, Identifier: p.gm.Identifier,
		Variance: p.gm.Variance, Preferred: p.gm.Preferred}
}

// Events returns and clears what happened since the last call.
func (p *Port) Events() []event.Event { return p.events.Take() }

func (p *Port) emit(level slog.Level, name, msg string, attrs ...any) {
	// The daemon's logger already names the interface.
	p.events.Emit(level, name, msg, append([]any{"ptpv1_subdomain", p.cfg.Subdomain}, attrs...)...)
}

func (p *Port) buf() []byte {
	b := p.bufs[p.nbuf%len(p.bufs)][:]
	p.nbuf++
	return b
}

func (p *Port) take() []ptp.Out {
	o := p.outs
	p.outs = p.outs[:0]
	p.nbuf = 0
	return o
}

// Foreign lists the qualified foreign v1 masters: two Syncs within the
// receipt timeout, so that one stray Sync does not make sitegm passive,
// and a master stays qualified for as long as it is not forgotten.
func (p *Port) Foreign(now time.Time) []Credentials {
	return p.foreign.Qualified(now, syncReceiptTimeout)
}

// Tick runs the port's timers at now (the disciplined clock, TAI).
func (p *Port) Tick(now time.Time) []ptp.Out {
	p.foreign.Expire(now, syncReceiptTimeout)
	p.decide(now)
	if p.state == Master && !now.Before(p.nextSync) {
		if p.syncPending {
			p.syncPending = false
			p.Stats.MissedTxTimestamps++
		} else {
			p.sendSync(now)
		}
		per := interval(p.cfg.LogSync)
		if now.Sub(p.nextSync) > per {
			p.nextSync = now.Add(per)
		} else {
			p.nextSync = p.nextSync.Add(per)
		}
	}
	return p.take()
}

// NextDue is when Tick has something to do next.
func (p *Port) NextDue(now time.Time) time.Time {
	due := now.Add(time.Second)
	earlier := func(t time.Time) {
		if !t.IsZero() && t.Before(due) { // zero: nothing due (no foreign master)
			due = t
		}
	}
	switch p.state {
	case Listening:
		earlier(p.listenUntil)
	case Master:
		earlier(p.nextSync)
	}
	earlier(p.foreign.NextExpiry(syncReceiptTimeout))
	return due
}

// decide: MASTER unless a qualified foreign master compares better, then
// PASSIVE (1588-2002 7.6.4 state decision for a clock of stratum 1 or 2:
// it never becomes a slave); master_only keeps MASTER and raises an alarm.
func (p *Port) decide(now time.Time) {
	if p.state == Listening && now.Before(p.listenUntil) {
		return
	}
	var best *Credentials
	if b, ok := p.foreign.Best(now, syncReceiptTimeout); ok {
		best = &b
	}
	better := best != nil && Compare(*best, p.Self()) < 0
	switch {
	case better && p.cfg.MasterOnly:
		if now.Sub(p.lastAlarm) >= time.Minute {
			p.lastAlarm = now
			p.emit(slog.LevelError, "ptpv1_master_conflict",
				"a better PTPv1 master is on the network; staying MASTER (master_only): "+best.Describe())
		}
		p.setState(Master, now, nil)
	case better:
		p.setState(Passive, now, best)
	default:
		p.setState(Master, now, nil)
	}
	p.best = best
}

func (p *Port) setState(s State, now time.Time, best *Credentials) {
	if s == p.state {
		return
	}
	prev := p.state
	p.state = s
	switch {
	case s == Passive:
		p.emit(slog.LevelWarn, "ptpv1_port_state", "PTPv1 port PASSIVE: a better v1 master is on the network: "+best.Describe(),
			"ptpv1_state", s.String(), "ptpv1_prev_state", prev.String())
	case prev == Passive:
		p.emit(event.Notice, "ptpv1_port_state", "PTPv1 port MASTER again: the better master went silent",
			"ptpv1_state", s.String(), "ptpv1_prev_state", prev.String())
	default:
		p.emit(event.Notice, "ptpv1_port_state", "PTPv1 port "+s.String(), "ptpv1_state", s.String(), "ptpv1_prev_state", prev.String())
	}
	if s == Master {
		p.nextSync = now
	}
}

func (p *Port) header(h *Header, typ, ctl uint8, seq uint16, flags uint16) {
	*h = Header{VersionNetwork: 1, Subdomain: p.sub, MessageType: typ, SourceTech: CommEthernet,
		SourceUUID: p.cfg.UUID, SourcePort: 1, Sequence: seq, Control: ctl, Flags: flags}
}

func (p *Port) leapFlags() uint16 {
	var f uint16
	if p.gm.Leap61 {
		f |= FlagLI61
	}
	if p.gm.Leap59 {
		f |= FlagLI59
	}
	return f
}

// SyncMessage builds this port's Sync for time now (exported for tests and
// the test slave's golden checks).
func (p *Port) SyncMessage(now time.Time, seq uint16) Sync {
	var s Sync
	p.header(&s.Header, EventMessage, CtlSync, seq, FlagAssist|p.leapFlags())
	s.Origin, s.EpochNumber = NewTimestamp(now)
	s.CurrentUTCOffset = p.gm.UTCOffset
	s.GMTech, s.GMUUID, s.GMPort, s.GMSequence = CommEthernet, p.cfg.UUID, 1, seq
	s.GMStratum, s.GMIdentifier, s.GMVariance, s.GMPreferred = p.gm.Stratum, p.gm.Identifier, p.gm.Variance, p.gm.Preferred
	s.SyncInterval = p.cfg.LogSync
	s.LocalVariance, s.LocalStratum, s.LocalIdentifier = p.gm.Variance, p.gm.Stratum, p.gm.Identifier
	s.ParentTech, s.ParentUUID, s.ParentPort = CommEthernet, p.cfg.UUID, 1
	s.UTCReasonable = p.gm.UTCReasonable
	return s
}

func (p *Port) sendSync(now time.Time) {
	s := p.SyncMessage(now, p.syncSeq)
	b := p.buf()
	n := s.MarshalTo(b)
	p.syncPending = true
	p.Stats.Syncs++
	p.outs = append(p.outs, ptp.Out{Data: b[:n], Event: true, Sync: true, Seq: p.syncSeq})
	p.syncSeq++
}

// SyncSent hands back the Sync's transmit time; the Follow_Up follows.
// Its header carries the Sync's sequenceId as well as
// associatedSequenceId, as Dante leaders do, so that a slave matching
// either field pairs them.
func (p *Port) SyncSent(seq uint16, tx time.Time) []ptp.Out {
	if !p.syncPending || seq != p.syncSeq-1 {
		return nil
	}
	p.syncPending = false
	var f FollowUp
	p.header(&f.Header, GeneralMessage, CtlFollowUp, seq, p.leapFlags())
	f.AssociatedSequence = seq
	f.Precise, _ = NewTimestamp(tx)
	b := p.buf()
	n := f.MarshalTo(b)
	p.Stats.FollowUps++
	p.outs = append(p.outs, ptp.Out{Data: b[:n]})
	return p.take()
}

// SyncFailed says the Sync with seq got no transmit timestamp.
func (p *Port) SyncFailed(seq uint16) {
	if p.syncPending && seq == p.syncSeq-1 {
		p.syncPending = false
		p.Stats.MissedTxTimestamps++
	}
}

// Receive takes one v1 message received at rx (on the disciplined clock);
// now is the clock's time.
func (p *Port) Receive(b []byte, rx, now time.Time) []ptp.Out {
	h, err := ParseHeader(b)
	if err != nil {
		p.Stats.Malformed++
		return nil
	}
	if h.Subdomain != p.sub {
		p.Stats.OtherSubdomain++
		return nil
	}
	if h.SourceUUID == p.cfg.UUID {
		p.Stats.Own++
		return nil
	}
	switch h.Control {
	case CtlDelayReq:
		if p.state != Master {
			return nil
		}
		p.Stats.DelayReqs++
		var d DelayResp
		p.header(&d.Header, GeneralMessage, CtlDelayResp, h.Sequence, p.leapFlags())
		d.Receipt, _ = NewTimestamp(rx)
		d.ReqTech, d.ReqUUID, d.ReqPort, d.ReqSequence = h.SourceTech, h.SourceUUID, h.SourcePort, h.Sequence
		buf := p.buf()
		n := d.MarshalTo(buf)
		p.Stats.DelayResps++
		p.outs = append(p.outs, ptp.Out{Data: buf[:n]})
		return p.take()
	case CtlSync:
		var s Sync
		if s.Unmarshal(b) != nil {
			p.Stats.Malformed++
			return nil
		}
		p.foreignSync(&s, now)
		return p.take()
	case CtlManagement:
		// Parsed (the header checks above) and ignored: sitegm is not
		// managed over v1.
		p.Stats.Management++
	}
	return nil
}

// maxForeign bounds the foreign master table; a newcomer better than its
// worst entry takes that entry's place.
const maxForeign = 16

// foreignIntervalRange is the range a foreign master's syncInterval
// (log2 s) is clamped into before it sets our timers. 1588-2002 allows up
// to 64 s (log 6), which made one forged Sync keep the port PASSIVE for
// ten of them, 640 s. Dante leaders send 4 a second (-2) and ptpd 1.x
// defaults to one Sync every 2 s (log 1): at most 2 s keeps every real
// master qualified (one sending every 8 or 16 s still is: two of its
// Syncs fall within ten clamped intervals) and bounds the wait after a
// master goes silent to 20 s. Faster than 16 a second counts as 16.
var foreignIntervalRange = [2]int8{-4, 1}

func (p *Port) foreignSync(s *Sync, now time.Time) {
	p.Stats.ForeignSyncs++
	cred := FromSync(s)
	li := max(foreignIntervalRange[0], min(s.SyncInterval, foreignIntervalRange[1]))
	if li != s.SyncInterval {
		p.Stats.Clamped++
	}
	isNew, dropped := p.foreign.Hear(s.SourceUUID, cred, interval(li), now)
	if dropped {
		p.Stats.ForeignFull++
		return
	}
	if isNew {
		p.emit(slog.LevelInfo, "ptpv1_foreign_master", "PTPv1 Sync from another master: "+cred.Describe())
	}
	p.decide(now)
}
