package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facebook/time/ptp/protocol"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"sitegm/clock/quality"
	"sitegm/hw/neigh"
	"sitegm/hw/nic"
	"sitegm/hw/udpio"
	"sitegm/internal/config"
	"sitegm/ptp"
	v1 "sitegm/ptp/v1"
)

// PTP addresses (IEEE 1588-2019 Annex C and E): the primary multicast
// group for UDP/IPv4, and the Ethernet multicast address and ethertype.
var (
	ptpGroup   = netip.MustParseAddr("224.0.1.129")
	ptpL2Group = net.HardwareAddr{0x01, 0x1b, 0x19, 0x00, 0x00, 0x00}
)

const ptpEthertype = 0x88F7

// syncSettle: under software timestamps the sending thread wakes this
// long before a message is due and sleeps the rest in the kernel, on its
// own, outside Go's timers. A Go timer firing wakes more than our thread:
// the runtime thread that ran it hands the goroutine over and looks for
// work (short sleeps of its own), and sysmon, asleep until that very
// timer, polls every 20 us for a while. Their timer interrupts on the
// sending CPU fell between the software timestamp and the frame reaching
// the wire (ftrace, 2-CPU VM: the worst tenth of Syncs 15-20 us later
// than ptp4l's).
// After a few milliseconds that stir has died down; a plain nanosleep
// returning on a thread that kept its P wakes nobody else.
const syncSettle = 8 * time.Millisecond

// settle sleeps d in the kernel on the calling thread.
func settle(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}

// txStampWait bounds the wait for a Sync's transmit timestamp.
const txStampWait = 20 * time.Millisecond

// PTPStatus is one PTP port's state for status output.
type PTPStatus struct {
	Interface    string   `json:"interface"`
	Profile      string   `json:"profile"`
	Domain       int      `json:"domain"`
	Transport    string   `json:"transport"`
	State        string   `json:"state"`
	Timestamping string   `json:"timestamping"`
	DelayReqs    uint64   `json:"delay_reqs"`
	Syncs        uint64   `json:"syncs"`
	Announces    uint64   `json:"announces"`
	Management   uint64   `json:"management"`
	Malformed    uint64   `json:"malformed"`
	Foreign      []string `json:"foreign_masters"`
	ClockID      string   `json:"clock_identity"`
	// Hostile or odd traffic, by reason (docs/hostile-input.md).
	Drops      map[string]uint64 `json:"drops,omitempty"`     // received and not taken, by reason
	Refused    uint64            `json:"refused_destination"` // replies not sent: the source was forged (port 0, broadcast ...)
	Unsendable uint64            `json:"unsendable"`          // replies dropped: the send buffer was full
	SendFailed uint64            `json:"send_failed"`         // messages the kernel refused
	Unresolved uint64            `json:"unresolved"`          // replies not sent to on-link strangers beyond their budget (hw/neigh)
	// SyncsLate counts Syncs sent more than two intervals after the one
	// before; SyncGapMaxMS is the longest gap in the last minute.
	SyncsLate    uint64  `json:"syncs_late"`
	SyncGapMaxMS float64 `json:"sync_gap_max_ms"`
	// V1 is the Dante PTPv1 port on the same interface, when served.
	V1 *PTPv1Status `json:"v1,omitempty"`
}

// PTPv1Status is the IEEE 1588-2002 port's state.
type PTPv1Status struct {
	Subdomain    string   `json:"subdomain"`
	State        string   `json:"state"`
	Timestamping string   `json:"timestamping"`
	Syncs        uint64   `json:"syncs"`
	DelayReqs    uint64   `json:"delay_reqs"`
	Malformed    uint64   `json:"malformed"`
	Foreign      []string `json:"foreign_masters"`
	// IntervalClamped and ForeignFull: foreign Syncs whose interval was
	// clamped, and from masters no better than any of a full table.
	IntervalClamped uint64 `json:"interval_clamped"`
	ForeignFull     uint64 `json:"foreign_table_full"`
}

type slowMsg struct {
	data   []byte
	rx     time.Time
	rxSoft time.Time // software stamp besides a hardware one (v1 fallback)
	from   netip.AddrPort
	event  bool
}

// ptpServer serves one [[ptp]] section: the port core in one goroutine,
// Delay_Req answered by workers on SO_REUSEPORT sockets.
type ptpServer struct {
	cfg    config.PTP
	log    *slog.Logger
	tb     *timebase
	ident  protocol.PortIdentity
	stamps udpio.Stamps
	gm     atomic.Pointer[ptp.GM]
	gm1    atomic.Pointer[v1.GM]
	// PTPv1 (dante_v1): its group (224.0.1.129..132 by subdomain), its
	// timestamps (software when the NIC's filter misses v1) and identity.
	v1Group  netip.Addr
	v1Stamps udpio.Stamps
	v1UUID   v1.UUID
	master   atomic.Bool
	fastReqs atomic.Uint64
	gaps     syncGaps // written by the port goroutine only
	// Replies and messages that did not leave, by reason.
	refused, unsendable, sendFailed, unresolved atomic.Uint64
	gate                                        *neigh.Gate
	slow                                        chan slowMsg
	status                                      atomic.Pointer[PTPStatus]
	logMin                                      int8
	domain                                      uint8
}

// clockIdentity is the EUI-64 of the interface's MAC with FFFE inserted
// (IEEE 1588-2019 7.5.2.2.2); an interface without a MAC (lo) gets one
// derived from the machine id, locally administered.
func clockIdentity(iface string) (protocol.ClockIdentity, error) {
	mac, err := ifaceMAC(iface)
	if err != nil {
		return 0, err
	}
	return protocol.NewClockIdentity(mac)
}

// ifaceMAC is the interface's MAC, or for one without (lo) a locally
// administered one derived from the machine id: PTPv1's UUID and the
// source of PTPv2's clock identity.
func ifaceMAC(iface string) (net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	mac := ifi.HardwareAddr
	if len(mac) != 6 || (mac[0]|mac[1]|mac[2]|mac[3]|mac[4]|mac[5]) == 0 {
		id, _ := os.ReadFile("/etc/machine-id")
		h := sha256.Sum256(append(id, iface...))
		mac = net.HardwareAddr{h[0]&0xfc | 0x02, h[1], h[2], h[3], h[4], h[5]}
	}
	return mac, nil
}

func newPTPServer(cfg config.PTP, tb *timebase, log *slog.Logger) (*ptpServer, error) {
	id, err := clockIdentity(cfg.Interface)
	if err != nil {
		return nil, err
	}
	s := &ptpServer{cfg: cfg, tb: tb, log: log.With("ptp_interface", cfg.Interface),
		ident: protocol.PortIdentity{ClockIdentity: id, PortNumber: 1},
		slow:  make(chan slowMsg, 256), logMin: int8(cfg.LogMinDelayReqInterval), domain: uint8(cfg.Domain)}
	if cfg.DanteV1 {
		_, last, ok := v1.ParseSubdomain(cfg.V1Subdomain)
		if !ok {
			return nil, fmt.Errorf("unknown PTPv1 subdomain %q", cfg.V1Subdomain)
		}
		s.v1Group = netip.AddrFrom4([4]byte{224, 0, 1, last})
		mac, _ := ifaceMAC(cfg.Interface)
		copy(s.v1UUID[:], mac)
		g1 := v1.GM{Stratum: 4, Identifier: [4]byte{'D', 'F', 'L', 'T'}, Variance: 0x7FFF}
		s.gm1.Store(&g1)
	}
	s.stamps, err = s.chooseStamps()
	if err != nil {
		return nil, err
	}
	g := ptp.GM{Quality: protocol.ClockQuality{ClockClass: quality.ClassDefault, ClockAccuracy: quality.AccuracyUnknown, OffsetScaledLogVariance: quality.VarianceUnknown},
		TimeSource: quality.TimeSourceOsc}
	s.gm.Store(&g)
	return s, nil
}

// chooseStamps picks hardware timestamps when the interface has them and
// its PHC is the disciplined clock, else software ("auto"), and logs why.
func (s *ptpServer) chooseStamps() (udpio.Stamps, error) {
	mode := s.cfg.Timestamping
	ti, tiErr := nic.GetTSInfo(s.cfg.Interface)
	hwOK := tiErr == nil && ti.Hardware() && s.tb.phc != nil && ti.PHCPath() == s.tb.phc.Name()
	why := ""
	switch {
	case tiErr != nil:
		why = tiErr.Error()
	case !ti.Hardware():
		why = "the interface has no hardware timestamping"
	case s.tb.phc == nil:
		why = "the disciplined clock is not a PHC"
	case ti.PHCPath() != s.tb.phc.Name():
		why = fmt.Sprintf("its PHC %s is not the disciplined clock %s", ti.PHCPath(), s.tb.phc.Name())
	}
	switch {
	case mode == "hardware" && !hwOK:
		return 0, fmt.Errorf("%s: hardware timestamping asked for, but %s", s.cfg.Interface, why)
	case mode == "software" || !hwOK:
		if mode == "auto" {
			s.log.Info("PTP timestamping: software", "event", "ptp_timestamping", "ptp_timestamping", "software", "reason", why)
		}
		s.v1Stamps = udpio.Software
		return udpio.Software, nil
	}
	filter, err := nic.EnableHardwareStamps(s.cfg.Interface)
	if err != nil {
		if mode == "hardware" {
			return 0, err
		}
		s.log.Warn("PTP hardware timestamping failed; using software", "event", "ptp_timestamping", "error", err)
		s.v1Stamps = udpio.Software
		return udpio.Software, nil
	}
	s.log.Info("PTP timestamping: hardware", "event", "ptp_timestamping", "ptp_timestamping", "hardware",
		"phc", s.tb.phc.Name(), "rx_filter", filter, "v1_covered", nic.FilterCoversV1(filter))
	s.v1Stamps = udpio.Hardware
	if s.v1Group.IsValid() && !nic.FilterCoversV1(filter) {
		// The NIC timestamps v2 event messages only: v1 would get hardware
		// transmit stamps but no receive stamps. Both ends of its exchange
		// must be stamped alike, so v1 uses software for both.
		s.v1Stamps = udpio.Software
		s.log.Warn("PTPv1 uses software timestamps: the NIC's receive filter does not timestamp v1 event messages",
			"event", "ptpv1_timestamping", "rx_filter", filter)
	}
	return udpio.Hardware, nil
}

// toClock carries a kernel timestamp onto the disciplined clock; it fails
// when the clock cannot be read (the message then goes unanswered).
func (s *ptpServer) toClock(t time.Time) (time.Time, error) {
	if t.IsZero() {
		t = time.Now()
		if s.stamps == udpio.Hardware {
			return s.tb.now()
		}
	}
	if s.stamps == udpio.Hardware {
		return t, nil // already on the PHC
	}
	return s.tb.fromRealtime(t)
}

// v1Clock carries a v1 message's receive stamp onto the disciplined
// clock: the software stamp when v1 falls back to software under hardware
// v2 stamps.
func (s *ptpServer) v1Clock(m slowMsg) (time.Time, error) {
	if s.stamps == udpio.Hardware && s.v1Stamps == udpio.Software {
		t := m.rxSoft
		if t.IsZero() {
			t = time.Now()
		}
		return s.tb.fromRealtime(t)
	}
	return s.toClock(m.rx)
}

// setGM is called by the daemon's loop with what the quality machine says.
func (s *ptpServer) setGM(g ptp.GM, g1 v1.GM) {
	s.gm.Store(&g)
	s.gm1.Store(&g1)
}

func (s *ptpServer) portConfig() ptp.Config {
	return ptp.Config{
		Interface: s.cfg.Interface, Profile: s.cfg.Profile, Domain: uint8(s.cfg.Domain),
		Priority1: uint8(s.cfg.Priority1), Priority2: uint8(s.cfg.Priority2),
		LogAnnounce: int8(s.cfg.LogAnnounceInterval), LogSync: int8(s.cfg.LogSyncInterval),
		LogMinDelayReq: int8(s.cfg.LogMinDelayReqInterval), ReceiptTimeout: uint8(s.cfg.AnnounceReceiptTimeout),
		MasterOnly: s.cfg.MasterOnly, Identity: s.ident, L2: s.cfg.Transport == "l2",
		GeneralPort: uint16(s.cfg.GeneralPort), AnnounceRange: ptp.Profiles[s.cfg.Profile].LogAnnounceRange,
	}
}

// sender is what the port goroutine sends through; v1 selects the PTPv1
// group and Sync socket.
type sender interface {
	send(o ptp.Out, v1 bool) error
	syncStamp(v1 bool) (time.Time, error)
	close()
}

// run serves until ctx ends.
func (s *ptpServer) run(ctx context.Context) error {
	var snd sender
	var wg sync.WaitGroup
	var err error
	if s.cfg.Transport == "l2" {
		snd, err = s.startL2(ctx, &wg)
	} else {
		s.gate = watchNeighbours(ctx, s.cfg.Interface, s.log)
		snd, err = s.startUDP(ctx, &wg)
	}
	if err != nil {
		return err
	}
	s.log.Info("PTP port up", "event", "ptp_port_up", "ptp_profile", s.cfg.Profile, "ptp_domain", s.cfg.Domain,
		"ptp_transport", s.cfg.Transport, "ptp_clock_identity", s.ident.ClockIdentity.String(), "ptp_timestamping", s.stamps.String())
	// One thread sends every Sync and reads its timestamp, as ptp4l does:
	// the goroutine does not hop between threads (and CPUs) between the
	// timer's wake-up and the send.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, err := s.tb.now()
	if err != nil {
		snd.close()
		wg.Wait()
		return err
	}
	port := ptp.New(s.portConfig(), start)
	var port1 *v1.Port
	if s.v1Group.IsValid() {
		port1, err = v1.New(v1.Config{Interface: s.cfg.Interface, Subdomain: s.cfg.V1Subdomain,
			LogSync: int8(s.cfg.V1LogSyncInterval), MasterOnly: s.cfg.MasterOnly, UUID: s.v1UUID}, start)
		if err != nil {
			snd.close()
			wg.Wait()
			return err
		}
		s.log.Info("PTPv1 port up", "event", "ptpv1_port_up", "ptpv1_subdomain", s.cfg.V1Subdomain,
			"ptpv1_group", s.v1Group.String(), "ptp_timestamping", s.v1Stamps.String())
	}
	timer := time.NewTimer(0)
	var due time.Time // the ports' next message
	defer func() {
		timer.Stop()
		snd.close()
		wg.Wait()
	}()
	// emit sends a port's messages; a Sync's transmit timestamp goes back
	// to the port that sent it, which answers with its Follow_Up.
	gaps := &s.gaps
	gaps.interval = ptp.Interval(int8(s.cfg.LogSyncInterval))
	send := func(o ptp.Out, isV1 bool) bool {
		err := snd.send(o, isV1)
		switch {
		case err == nil:
			return true
		case errors.Is(err, errRefused):
			s.refused.Add(1)
		case errors.Is(err, errUnresolved):
			s.unresolved.Add(1)
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.ENOBUFS):
			s.unsendable.Add(1)
		default:
			s.sendFailed.Add(1)
			s.log.Debug("PTP send failed", "error", err)
		}
		return false
	}
	emit := func(outs []ptp.Out, p syncPort, isV1 bool) {
		for _, o := range outs {
			if !send(o, isV1) {
				if o.Sync {
					p.SyncFailed(o.Seq)
				}
				continue
			}
			if o.Sync && !isV1 {
				gaps.sent(time.Now())
			}
			if o.Sync {
				tx, err := snd.syncStamp(isV1)
				if err != nil {
					p.SyncFailed(o.Seq)
					continue
				}
				if isV1 && s.v1Stamps != s.stamps {
					tx, err = s.tb.fromRealtime(tx)
				} else {
					tx, err = s.toClock(tx)
				}
				if err != nil {
					// No Follow_Up rather than one with a time not on
					// the disciplined clock.
					p.SyncFailed(o.Seq)
					continue
				}
				for _, f := range p.SyncSent(o.Seq, tx) {
					send(f, isV1)
				}
			}
		}
		for _, e := range p.Events() {
			s.log.Log(context.Background(), e.Level, e.Msg, append([]any{"event", e.Name}, e.Attrs...)...)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-s.slow:
			now, err := s.tb.now()
			if err != nil {
				continue // unanswered: the clock cannot be read
			}
			if v1.IsV1(m.data) {
				// Dispatch by version (IEEE 1588-2008 clause 18: v1 and v2
				// share ports 319/320).
				if rx, err := s.v1Clock(m); port1 != nil && err == nil {
					emit(port1.Receive(m.data, rx, now), port1, true)
				}
				continue
			}
			rx, err := s.toClock(m.rx)
			if err != nil {
				continue
			}
			emit(port.Receive(m.data, rx, m.from, now), port, false)
			s.master.Store(port.State() == protocol.PortStateMaster)
		case <-timer.C:
			port.SetGM(*s.gm.Load())
			now, err := s.tb.now()
			if err != nil {
				// Hold: nothing is sent with a time the clock did not
				// give; try again shortly.
				timer.Reset(10 * time.Millisecond)
				continue
			}
			if left := due.Sub(now); s.stamps == udpio.Software && left > 0 && left <= syncSettle {
				settle(left) // see syncSettle
				if now, err = s.tb.now(); err != nil {
					timer.Reset(10 * time.Millisecond)
					continue
				}
			}
			emit(port.Tick(now), port, false)
			s.master.Store(port.State() == protocol.PortStateMaster)
			if port.State() != protocol.PortStateMaster {
				gaps.restart()
			}
			due = port.NextDue(now)
			if port1 != nil {
				port1.SetGM(*s.gm1.Load())
				emit(port1.Tick(now), port1, true)
				if d := port1.NextDue(now); d.Before(due) {
					due = d
				}
			}
			s.publish(port, port1, now)
			// The clock runs at the host's rate within a fraction of a
			// millisecond a second: a host timer for the clock's next due
			// time is close enough for message intervals.
			wait := due.Sub(now)
			if s.stamps == udpio.Software {
				wait -= syncSettle
			}
			timer.Reset(max(time.Millisecond, wait))
		}
	}
}

// syncGaps watches the port's own Sync rhythm: the one thing no peer may
// disturb. A Sync that leaves more than two intervals after the previous
// one is counted late, and the longest gap of the last minute is kept for
// the status.
type syncGaps struct {
	interval         time.Duration
	last, windowFrom time.Time
	max, prevMax     time.Duration
	late             atomic.Uint64
	maxMS            atomic.Int64 // µs, for the status
}

func (g *syncGaps) sent(now time.Time) {
	if now.Sub(g.windowFrom) >= time.Minute {
		g.windowFrom, g.prevMax, g.max = now, g.max, 0
	}
	if !g.last.IsZero() {
		gap := now.Sub(g.last)
		g.max = max(g.max, gap)
		if gap > 2*g.interval {
			g.late.Add(1)
		}
	}
	g.last = now
	g.maxMS.Store(max(g.max, g.prevMax).Microseconds())
}

// restart forgets the rhythm (the port left MASTER, or was re-opened).
func (g *syncGaps) restart() { g.last = time.Time{} }

// syncPort is what emit needs of a PTPv2 or PTPv1 port.
type syncPort interface {
	SyncSent(seq uint16, tx time.Time) []ptp.Out
	SyncFailed(seq uint16)
	Events() []ptp.Event
}

func (s *ptpServer) publish(port *ptp.Port, port1 *v1.Port, now time.Time) {
	st := port.Stats
	var malformed uint64
	drops := map[string]uint64{}
	for i, n := range st.Drops {
		if n == 0 {
			continue
		}
		drops[ptp.Drop(i).String()] = n
		if ptp.Drop(i).Hostile() {
			malformed += n
		}
	}
	if st.Clamped > 0 {
		drops["interval_clamped"] = st.Clamped
	}
	p := &PTPStatus{Interface: s.cfg.Interface, Profile: s.cfg.Profile, Domain: s.cfg.Domain, Transport: string(s.cfg.Transport),
		State: port.State().String(), Timestamping: s.stamps.String(), DelayReqs: st.DelayReqs + s.fastReqs.Load(),
		Syncs: st.Syncs, Announces: st.Announces, Management: st.Management, Malformed: malformed,
		ClockID: s.ident.ClockIdentity.String(), Drops: drops,
		Refused: s.refused.Load(), Unsendable: s.unsendable.Load(), SendFailed: s.sendFailed.Load(), Unresolved: s.unresolved.Load(),
		SyncsLate: s.gaps.late.Load(), SyncGapMaxMS: float64(s.gaps.maxMS.Load()) / 1000}
	for _, f := range port.Foreign(now) {
		p.Foreign = append(p.Foreign, f.Describe())
	}
	if port1 != nil {
		st := port1.Stats
		p.V1 = &PTPv1Status{Subdomain: s.cfg.V1Subdomain, State: port1.State().String(), Timestamping: s.v1Stamps.String(),
			Syncs: st.Syncs, DelayReqs: st.DelayReqs, Malformed: st.Malformed,
			IntervalClamped: st.Clamped, ForeignFull: st.ForeignFull}
		for _, f := range port1.Foreign(now) {
			p.V1.Foreign = append(p.V1.Foreign, f.Describe())
		}
	}
	s.status.Store(p)
}

// --- UDP/IPv4 ---

// errRefused: a unicast destination chosen by a request's sender that no
// reply may go to (udpio.CheckReplyTo).
var errRefused = errors.New("reply destination refused")

// errUnresolved: an on-link destination the kernel does not know, beyond
// the budget for strangers (hw/neigh).
var errUnresolved = errors.New("reply destination unresolved")

// udpSender is how the port goroutine sends. Every socket it writes to is
// one that nothing a peer sends can fill: the multicast messages (Sync,
// Announce, Follow_Up, multicast Delay_Resp and management) leave by
// send-only sockets connected to their group, whose buffers drain at the
// link's pace; only unicast replies share worker 0's general socket with
// the workers' unicast Delay_Resp, and those are sent without waiting. A
// flood of requests forged from on-link addresses that do not exist
// (replies held by address resolution for seconds) used to fill that
// socket and block the port goroutine in its Announce for half a minute.
type udpSender struct {
	s         *ptpServer
	gen       *udpio.Conn   // worker 0's general socket: the port's unicast replies
	genOut    *udpio.Sender // general messages to the v2 group
	genOutV1  *udpio.Sender // general messages to the v1 group, when it differs
	syncOut   *udpio.Sender // send-only, connected to the group: Syncs and their timestamps
	syncV1    *udpio.Sender // the same for PTPv1 (its group, its timestamps)
	conns     []*udpio.Conn
	lo        bool
	evGroup   netip.AddrPort
	genGroup  netip.AddrPort
	v1Event   netip.AddrPort
	v1General netip.AddrPort
}

func (u *udpSender) send(o ptp.Out, isV1 bool) error {
	switch {
	case o.Sync && isV1:
		return u.syncV1.Write(o.Data)
	case o.Sync:
		return u.syncOut.Write(o.Data)
	case o.To.IsValid():
		if udpio.CheckReplyTo(o.To, u.lo) != udpio.RefuseNone {
			return errRefused
		}
		if u.s.gate.Check(o.To.Addr()) != neigh.Allow {
			return errUnresolved
		}
		return u.gen.WriteTo(o.Data, o.To)
	case isV1 && u.genOutV1 != nil:
		return u.genOutV1.Write(o.Data)
	}
	// Every multicast message of a grandmaster port but the Sync is a
	// general message (IEEE 1588-2019 Table 36; 1588-2002 the same).
	return u.genOut.Write(o.Data)
}

func (u *udpSender) syncStamp(isV1 bool) (time.Time, error) {
	if isV1 {
		return u.syncV1.TxStamp(txStampWait)
	}
	return u.syncOut.TxStamp(txStampWait)
}

func (u *udpSender) close() {
	for _, c := range u.conns {
		c.Close()
	}
	for _, c := range []*udpio.Sender{u.syncOut, u.syncV1, u.genOut, u.genOutV1} {
		if c != nil {
			c.Close()
		}
	}
}

func (s *ptpServer) startUDP(ctx context.Context, wg *sync.WaitGroup) (sender, error) {
	workers := max(1, runtime.NumCPU())
	lo := s.cfg.Interface == "lo"
	u := &udpSender{s: s, lo: lo, evGroup: netip.AddrPortFrom(ptpGroup, uint16(s.cfg.EventPort)),
		genGroup: netip.AddrPortFrom(ptpGroup, uint16(s.cfg.GeneralPort))}
	u.v1Event = netip.AddrPortFrom(s.v1Group, uint16(s.cfg.EventPort))
	u.v1General = netip.AddrPortFrom(s.v1Group, uint16(s.cfg.GeneralPort))
	// Send-only sockets outside Go's poller, connected to their group: a
	// connected UDP socket only matches datagrams from its peer, so it
	// takes nothing of the reuseport group's traffic.
	sender := func(what string, port int, to netip.AddrPort, stamps udpio.Stamps) (*udpio.Sender, error) {
		so, err := udpio.OpenUDPSender(udpio.Options{Interface: s.cfg.Interface, Port: port, ReusePort: true, DSCP: s.cfg.DSCP,
			TXStamps: stamps, Loopback: lo, Connect: to})
		if err != nil {
			u.close()
			return nil, fmt.Errorf("%s %s socket: %w", s.cfg.Interface, what, err)
		}
		return so, nil
	}
	for i := 0; i < workers; i++ {
		o := udpio.Options{Interface: s.cfg.Interface, Port: s.cfg.EventPort, ReusePort: true, DSCP: s.cfg.DSCP,
			RXStamps: s.stamps, Loopback: lo, RecvBuffer: 4 << 20,
			RXSoftwareToo: s.v1Group.IsValid() && s.v1Stamps != s.stamps}
		g := o
		g.Port, g.RXStamps, g.SendBuffer = s.cfg.GeneralPort, udpio.NoStamps, replySendBuffer
		if i == 0 {
			o.Group, g.Group = ptpGroup, ptpGroup
		}
		ev, err := udpio.Listen(o)
		if err != nil {
			u.close()
			return nil, fmt.Errorf("%s event port %d: %w", s.cfg.Interface, s.cfg.EventPort, err)
		}
		u.conns = append(u.conns, ev)
		gen, err := udpio.Listen(g)
		if err != nil {
			u.close()
			return nil, fmt.Errorf("%s general port %d: %w", s.cfg.Interface, s.cfg.GeneralPort, err)
		}
		u.conns = append(u.conns, gen)
		// The worker's multicast Delay_Resp leave by a socket of their
		// own, so that unicast replies stuck behind address resolution
		// never crowd them out.
		mc, err := udpio.Listen(udpio.Options{Interface: s.cfg.Interface, Port: s.cfg.GeneralPort, ReusePort: true,
			DSCP: s.cfg.DSCP, Loopback: lo, Connect: u.genGroup})
		if err != nil {
			u.close()
			return nil, fmt.Errorf("%s general port %d (multicast replies): %w", s.cfg.Interface, s.cfg.GeneralPort, err)
		}
		u.conns = append(u.conns, mc)
		if i == 0 {
			u.gen = gen
			if s.v1Group.IsValid() && s.v1Group != ptpGroup {
				// An _ALTn subdomain: its own group on the same ports.
				for _, c := range []*udpio.Conn{ev, gen} {
					if err := c.JoinGroup(s.v1Group); err != nil {
						u.close()
						return nil, err
					}
				}
			}
		}
		wg.Add(2)
		go func() { defer wg.Done(); s.eventWorker(ctx, ev, gen, mc) }()
		go func() { defer wg.Done(); s.generalWorker(ctx, gen) }()
	}
	var err error
	if u.genOut, err = sender("general", s.cfg.GeneralPort, u.genGroup, udpio.NoStamps); err != nil {
		return nil, err
	}
	if s.v1Group.IsValid() && s.v1Group != ptpGroup {
		if u.genOutV1, err = sender("PTPv1 general", s.cfg.GeneralPort, u.v1General, udpio.NoStamps); err != nil {
			return nil, err
		}
	}
	// Syncs leave from a socket of their own that no goroutine reads and
	// Go's poller does not watch (udpio.Sender says why): the transmit
	// timestamp's error-queue report then wakes nobody, and only the Sync
	// thread ever reads that error queue.
	if u.syncOut, err = sender("Sync", s.cfg.EventPort, u.evGroup, s.stamps); err != nil {
		return nil, err
	}
	if s.v1Group.IsValid() {
		if u.syncV1, err = sender("PTPv1 Sync", s.cfg.EventPort, u.v1Event, s.v1Stamps); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// eventWorker answers Delay_Req on its own (the hot path: no allocation,
// one sendmmsg per batch of unicast and one of multicast replies) and
// hands everything else to the port. A unicast reply goes where the
// request's sender says it came from: a forged source no reply may go to
// is refused, and a reply the kernel cannot take now is dropped, counted,
// never waited for.
func (s *ptpServer) eventWorker(ctx context.Context, ev, gen, mc *udpio.Conn) {
	ms := make([]udpio.Msg, udpio.MaxBatch)
	uni := make([]udpio.Out, 0, udpio.MaxBatch)
	multi := make([]udpio.Out, 0, udpio.MaxBatch)
	resp := make([][64]byte, udpio.MaxBatch)
	genPort := uint16(s.cfg.GeneralPort)
	lo := s.cfg.Interface == "lo"
	for ctx.Err() == nil {
		n, err := ev.ReadBatch(ms)
		if err != nil {
			return
		}
		readAt := time.Now()
		uni, multi = uni[:0], multi[:0]
		master := s.master.Load()
		for i := 0; i < n; i++ {
			b := ms[i].Data
			if master && len(b) >= 44 && b[1]&0x0f == 2 && b[0]&0x0f == byte(protocol.MessageDelayReq) && b[4] == s.domain {
				unicast := b[6]&byte(protocol.FlagUnicast>>8) != 0
				to := netip.AddrPortFrom(ms[i].From.Addr(), genPort)
				if unicast && udpio.CheckReplyTo(to, lo) != udpio.RefuseNone {
					s.refused.Add(1)
					continue
				}
				if unicast && s.gate.Check(to.Addr()) != neigh.Allow {
					s.unresolved.Add(1)
					continue
				}
				rx := ms[i].RX
				if rx.IsZero() {
					rx = readAt
				}
				buf := resp[len(uni)+len(multi)][:]
				crx, err := s.toClock(rx)
				if err != nil {
					continue // unanswered: no receipt time on the clock
				}
				k, ok := ptp.AppendDelayResp(buf, b, crx, s.ident, s.logMin)
				if !ok {
					continue
				}
				if unicast {
					uni = append(uni, udpio.Out{Data: buf[:k], To: to})
				} else {
					multi = append(multi, udpio.Out{Data: buf[:k]})
				}
				continue
			}
			s.forward(b, ms[i].RX, ms[i].RXSoft, ms[i].From, true)
		}
		for _, batch := range []struct {
			c    *udpio.Conn
			outs []udpio.Out
		}{{gen, uni}, {mc, multi}} {
			if len(batch.outs) == 0 {
				continue
			}
			s.fastReqs.Add(uint64(len(batch.outs)))
			w := batch.c.WriteBatch(batch.outs)
			s.unsendable.Add(uint64(w.Full))
			s.sendFailed.Add(uint64(w.Failed))
		}
	}
}

func (s *ptpServer) generalWorker(ctx context.Context, gen *udpio.Conn) {
	ms := make([]udpio.Msg, udpio.MaxBatch)
	for ctx.Err() == nil {
		n, err := gen.ReadBatch(ms)
		if err != nil {
			return
		}
		for i := 0; i < n; i++ {
			s.forward(ms[i].Data, ms[i].RX, time.Time{}, ms[i].From, false)
		}
	}
}

// forward copies a message for the port goroutine; when it is behind, the
// message is dropped (counted by the sender's retry, as on a real link).
func (s *ptpServer) forward(b []byte, rx, rxSoft time.Time, from netip.AddrPort, event bool) {
	m := slowMsg{data: append([]byte(nil), b...), rx: rx, rxSoft: rxSoft, from: from, event: event}
	if m.rx.IsZero() {
		m.rx = time.Now()
	}
	select {
	case s.slow <- m:
	default:
	}
}

// --- Ethernet (IEEE 1588-2019 Annex E) ---

// l2Sender sends on one packet socket and Syncs on a second one that
// alone asks for transmit timestamps: with one socket, every Announce,
// Follow_Up and Delay_Resp would queue a timestamp too and the Sync's
// would not be the one read back.
type l2Sender struct {
	c   *packet.Conn
	sc  *udpio.Sender // outside Go's poller, as the UDP Sync socket
	src net.HardwareAddr
}

func (l *l2Sender) send(o ptp.Out, _ bool) error {
	f := ethernet.Frame{Destination: ptpL2Group, Source: l.src, EtherType: ptpEthertype, Payload: o.Data}
	b, err := f.MarshalBinary()
	if err != nil {
		return err
	}
	if o.Sync {
		return l.sc.Write(b)
	}
	_, err = l.c.WriteTo(b, &packet.Addr{HardwareAddr: ptpL2Group})
	return err
}

func (l *l2Sender) syncStamp(bool) (time.Time, error) {
	return l.sc.TxStamp(txStampWait)
}

func (l *l2Sender) close() {
	l.c.Close()
	l.sc.Close()
}

func (s *ptpServer) startL2(ctx context.Context, wg *sync.WaitGroup) (sender, error) {
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return nil, err
	}
	c, err := packet.Listen(ifi, packet.Raw, ptpEthertype, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: PTP over Ethernet: %w", s.cfg.Interface, err)
	}
	if err := c.JoinGroup(ptpL2Group); err != nil {
		c.Close()
		return nil, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := udpio.SetStamps(rc, s.stamps, udpio.NoStamps); err != nil {
		c.Close()
		return nil, err
	}
	// The Sync socket receives nothing, it only sends.
	sc, err := udpio.OpenPacketSender(s.cfg.Interface, ptpEthertype, ptpL2Group, s.stamps)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: PTP over Ethernet: %w", s.cfg.Interface, err)
	}
	l := &l2Sender{c: c, sc: sc, src: ifi.HardwareAddr}
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf, oob := make([]byte, 1600), make([]byte, 128)
		for ctx.Err() == nil {
			n, rx, err := udpio.ReadStamped(rc, buf, oob)
			if err != nil {
				return
			}
			var f ethernet.Frame
			if f.UnmarshalBinary(buf[:n]) != nil || f.EtherType != ptpEthertype {
				continue
			}
			if string(f.Source) == string(ifi.HardwareAddr) {
				continue // our own frame, looped back by the packet socket
			}
			s.forward(f.Payload, rx, time.Time{}, netip.AddrPort{}, true)
		}
	}()
	return l, nil
}
