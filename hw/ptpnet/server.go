package ptpnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/facebook/time/ptp/protocol"

	"sitegm/clock/quality"
	"sitegm/clock/timebase"
	"sitegm/hw/neigh"
	"sitegm/hw/nic"
	"sitegm/hw/udpio"
	"sitegm/ptp"
	v1 "sitegm/ptp/v1"
)

// syncSettle: under software timestamps the sending thread wakes this
// long before a message is due and sleeps the rest in the kernel, on its
// own, outside Go's timers. A Go timer firing wakes more than our thread
// (the runtime thread that ran it looks for work, sysmon polls for a
// while), and their timer interrupts on the sending CPU fell between the
// software timestamp and the frame reaching the wire. After a few
// milliseconds that stir has died down; a plain nanosleep returning on a
// thread that kept its P wakes nobody else. (The measurement:
// docs/hardware.md, "Software timestamps".)
const syncSettle = 8 * time.Millisecond

// Config is one PTP port to serve.
type Config struct {
	// Port is the PTPv2 port; its Identity is filled in from the
	// interface's MAC.
	Port ptp.Config
	// V1 is the Dante PTPv1 port on the same interface and ports, nil
	// for none; its UUID is filled in from the MAC.
	V1 *v1.Config
	// Transport names the transport for the status ("udp4", "l2").
	Transport    string
	EventPort    int
	DSCP         DSCP
	Timestamping string // "auto", "hardware", "software"
	// IngressLatency is taken off every receive stamp, EgressLatency added
	// to every transmit stamp (ptp4l's ingressLatency/egressLatency: what
	// the stamps miss of the message's passage through the reference
	// plane), for PTPv2 and PTPv1 alike.
	IngressLatency, EgressLatency time.Duration
	// Seen, when set, learns each slave from its Delay_Req: v1 says
	// whether it spoke IEEE 1588-2002, id is its port identity (v2:
	// clockIdentity and portNumber; v1: its UUID and port id, padded).
	Seen func(v1 bool, id [10]byte, from netip.Addr, at time.Time)
}

// Server serves one PTP port: the sans-I/O ports in one goroutine (the
// port goroutine, which alone sends Syncs and reads their timestamps),
// Delay_Req answered by the transport's receiving goroutines.
type Server struct {
	cfg      Config
	log      *slog.Logger
	tb       *timebase.Timebase
	stamps   udpio.Stamps
	v1Stamps udpio.Stamps
	// stampPHC is the PHC hardware stamps are taken on: the disciplined
	// clock, or a PHC slaved to it (timebase.PHCSlave).
	stampPHC string
	v1Group  netip.Addr
	gm       atomic.Pointer[ptp.GM]
	gm1      atomic.Pointer[v1.GM]
	master   atomic.Bool
	gaps     syncGaps // written by the port goroutine only
	cnt      Counters
	msgs     chan Msg
	status   atomic.Pointer[Status]
}

// NewServer prepares the port: its identity, its PTPv1 group, and the
// timestamps it will use (ChooseStamps).
func NewServer(cfg Config, tb *timebase.Timebase, log *slog.Logger) (*Server, error) {
	iface := cfg.Port.Interface
	mac, err := nic.MAC(iface)
	if err != nil {
		return nil, err
	}
	id, err := protocol.NewClockIdentity(mac)
	if err != nil {
		return nil, err
	}
	cfg.Port.Identity = protocol.PortIdentity{ClockIdentity: id, PortNumber: 1}
	s := &Server{cfg: cfg, tb: tb, log: log.With("ptp_interface", iface), msgs: make(chan Msg, 256)}
	if cfg.V1 != nil {
		v1c := *cfg.V1
		_, last, ok := v1.ParseSubdomain(v1c.Subdomain)
		if !ok {
			return nil, fmt.Errorf("unknown PTPv1 subdomain %q", v1c.Subdomain)
		}
		// 1588-2002 Annex D: _DFLT on 224.0.1.129, _ALT1.._ALT3 on .130-.132.
		s.v1Group = netip.AddrFrom4([4]byte{224, 0, 1, last})
		copy(v1c.UUID[:], mac)
		s.cfg.V1 = &v1c
		g1 := v1.GMOf(quality.Initial())
		s.gm1.Store(&g1)
	}
	slaved := func(dev string) bool { return tb.Slave(dev) != nil }
	s.stamps, s.v1Stamps, s.stampPHC, err = ChooseStamps(iface, cfg.Timestamping, tb.PHC(), slaved, cfg.V1 != nil, s.log)
	if err != nil {
		return nil, err
	}
	g := ptp.GMOf(quality.Initial())
	s.gm.Store(&g)
	return s, nil
}

// SetGM is called by the daemon's loop with what the quality machine says.
// est is the clock's error bound (<0 unknown): a port stamping on a slave
// PHC advertises it widened by the slave's (ptp.GM.Carried).
func (s *Server) SetGM(g ptp.GM, g1 v1.GM, est time.Duration) {
	if sl := s.tb.Slave(s.stampPHC); sl != nil {
		st := sl.Status()
		g = g.Carried(est, st.Bound, st.State == timebase.SlaveLocked || st.State == timebase.SlaveAcquiring)
	}
	s.gm.Store(&g)
	s.gm1.Store(&g1)
}

// StampPHC is the PHC the port's hardware stamps are on ("" for software
// stamps).
func (s *Server) StampPHC() string { return s.stampPHC }

// Status is the port's state, published by the port goroutine (nil until
// it runs).
func (s *Server) Status() *Status { return s.status.Load() }

// now is the disciplined clock's time on PTP's timescale.
func (s *Server) now() (time.Time, error) {
	i, err := s.tb.Now()
	return i.TAI(), err
}

// toClock carries a kernel timestamp onto the clock PTP serves, TAI; it
// fails when the clock cannot be read (the message then goes unanswered).
func (s *Server) toClock(t time.Time) (time.Time, error) {
	if t.IsZero() {
		if s.stamps == udpio.Hardware {
			return s.now()
		}
		t = time.Now()
	}
	if s.stamps == udpio.Hardware && s.stampPHC == s.tb.PHC() {
		return s.tb.At(t).TAI(), nil // already on the disciplined PHC
	}
	if s.stamps == udpio.Hardware {
		// On a slaved PHC: carried by its measured offset, or not at all.
		i, err := s.tb.FromClock(s.stampPHC, t)
		return i.TAI(), err
	}
	i, err := s.tb.FromRealtime(t)
	return i.TAI(), err
}

// rxClock is a receive stamp on the clock PTP serves, less the ingress
// latency: when the message crossed the reference plane.
func (s *Server) rxClock(t time.Time) (time.Time, error) {
	c, err := s.toClock(t)
	return c.Add(-s.cfg.IngressLatency), err
}

// fromRealtime carries a software stamp onto PTP's timescale.
func (s *Server) fromRealtime(t time.Time) (time.Time, error) {
	i, err := s.tb.FromRealtime(t)
	return i.TAI(), err
}

// v1Clock carries a v1 message's receive stamp onto the clock: the
// software stamp when v1 falls back to software under hardware v2 stamps.
func (s *Server) v1Clock(m Msg) (time.Time, error) {
	if s.stamps == udpio.Hardware && s.v1Stamps == udpio.Software {
		t := m.RXSoft
		if t.IsZero() {
			t = time.Now()
		}
		c, err := s.fromRealtime(t)
		return c.Add(-s.cfg.IngressLatency), err
	}
	return s.rxClock(m.RX)
}

// syncPort is what emit needs of a PTPv2 or PTPv1 port.
type syncPort interface {
	SyncSent(seq uint16, tx time.Time) []ptp.Out
	SyncFailed(seq uint16)
	Events() []ptp.Event
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	c := s.cfg
	opts := Options{Interface: c.Port.Interface, EventPort: c.EventPort, GeneralPort: int(c.Port.GeneralPort), DSCP: c.DSCP,
		L2: c.Port.L2, Stamps: s.stamps, V1Group: s.v1Group, V1Stamps: s.v1Stamps, Messages: s.msgs, Counters: &s.cnt,
		Fast: FastPath{Domain: c.Port.Domain, Identity: c.Port.Identity, LogMinDelayReq: c.Port.LogMinDelayReq,
			Master: &s.master, ToClock: s.rxClock}}
	if c.Seen != nil {
		opts.Fast.Seen = s.seen
	}
	if !c.Port.L2 {
		opts.Gate = neigh.WatchOrAllow(ctx, c.Port.Interface, s.log)
	}
	tr, err := Open(opts)
	if err != nil {
		return err
	}
	defer tr.Close()
	s.log.Info("PTP port up", "event", "ptp_port_up", "ptp_profile", c.Port.Profile, "ptp_domain", c.Port.Domain,
		"ptp_transport", c.Transport, "ptp_clock_identity", c.Port.Identity.ClockIdentity.String(), "ptp_timestamping", s.stamps.String())
	// One thread sends every Sync and reads its timestamp, as ptp4l does:
	// the goroutine does not hop between threads (and CPUs) between the
	// timer's wake-up and the send.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start, err := s.now()
	if err != nil {
		return err
	}
	port := ptp.New(c.Port, start)
	var port1 *v1.Port
	if c.V1 != nil {
		if port1, err = v1.New(*c.V1, start); err != nil {
			return err
		}
		s.log.Info("PTPv1 port up", "event", "ptpv1_port_up", "ptpv1_subdomain", c.V1.Subdomain,
			"ptpv1_group", s.v1Group.String(), "ptp_timestamping", s.v1Stamps.String())
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	var due time.Time // the ports' next message
	s.gaps.interval = ptp.Interval(c.Port.LogSync)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-s.msgs:
			now, err := s.now()
			if err != nil {
				continue // unanswered: the clock cannot be read
			}
			if v1.IsV1(m.Data) {
				// Dispatch by version (IEEE 1588-2008 clause 18: v1 and v2
				// share ports 319/320).
				if rx, err := s.v1Clock(m); port1 != nil && err == nil {
					if c.Seen != nil && port1.State() == v1.Master {
						s.seen(m.Data, m.From.Addr(), time.Now())
					}
					before := port1.State()
					outs := port1.Receive(m.Data, rx, now)
					if port1.State() != before {
						// The status says a new state before its event is
						// logged: whoever reads one after the other sees both.
						s.publish(port, port1, now)
					}
					s.emit(tr, outs, port1, true)
				}
				continue
			}
			rx, err := s.rxClock(m.RX)
			if err != nil {
				continue
			}
			if c.Seen != nil && port.State() == protocol.PortStateMaster {
				s.seen(m.Data, m.From.Addr(), time.Now())
			}
			before := port.State()
			outs := port.Receive(m.Data, rx, m.From, now)
			if port.State() != before {
				s.publish(port, port1, now) // as for v1 above
			}
			s.emit(tr, outs, port, false)
			s.master.Store(port.State() == protocol.PortStateMaster)
		case <-timer.C:
			port.SetGM(*s.gm.Load())
			now, err := s.now()
			if err != nil {
				// Hold: nothing is sent with a time the clock did not
				// give; try again shortly.
				timer.Reset(10 * time.Millisecond)
				continue
			}
			if left := due.Sub(now); s.stamps == udpio.Software && left > 0 && left <= syncSettle {
				settleSleep(left) // see syncSettle
				if now, err = s.now(); err != nil {
					timer.Reset(10 * time.Millisecond)
					continue
				}
			}
			s.emit(tr, port.Tick(now), port, false)
			s.master.Store(port.State() == protocol.PortStateMaster)
			if port.State() != protocol.PortStateMaster {
				s.gaps.restart()
			}
			due = port.NextDue(now)
			if port1 != nil {
				port1.SetGM(*s.gm1.Load())
				s.emit(tr, port1.Tick(now), port1, true)
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

// send sends one message and counts why it did not leave.
func (s *Server) send(tr Transport, o ptp.Out, isV1 bool) bool {
	err := tr.Send(o, isV1)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrRefused):
		s.cnt.Refused.Add(1)
	case errors.Is(err, ErrUnresolved):
		s.cnt.Unresolved.Add(1)
	case Full(err):
		s.cnt.Unsendable.Add(1)
	default:
		s.cnt.SendFailed.Add(1)
		s.log.Debug("PTP send failed", "error", err)
	}
	return false
}

// emit sends a port's messages; a Sync's transmit timestamp goes back to
// the port that sent it, which answers with its Follow_Up.
func (s *Server) emit(tr Transport, outs []ptp.Out, p syncPort, isV1 bool) {
	for _, o := range outs {
		if !s.send(tr, o, isV1) {
			if o.Sync {
				p.SyncFailed(o.Seq)
			}
			continue
		}
		if o.Sync && !isV1 && !o.DelayReq {
			s.gaps.sent(time.Now())
		}
		if !o.Sync {
			continue
		}
		tx, err := tr.SyncStamp(isV1)
		if err != nil {
			p.SyncFailed(o.Seq)
			continue
		}
		if isV1 && s.v1Stamps != s.stamps {
			tx, err = s.fromRealtime(tx)
		} else {
			tx, err = s.toClock(tx)
		}
		if err != nil {
			// No Follow_Up rather than one with a time not on the
			// disciplined clock.
			p.SyncFailed(o.Seq)
			continue
		}
		// The Sync crossed the reference plane EgressLatency after its stamp.
		tx = tx.Add(s.cfg.EgressLatency)
		for _, f := range p.SyncSent(o.Seq, tx) {
			s.send(tr, f, isV1)
		}
	}
	for _, e := range p.Events() {
		s.log.Log(context.Background(), e.Level, e.Msg, append([]any{"event", e.Name}, e.Attrs...)...)
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
	maxUS            atomic.Int64 // µs, for the status
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
	g.maxUS.Store(max(g.max, g.prevMax).Microseconds())
}

// restart forgets the rhythm (the port left MASTER, or was re-opened).
func (g *syncGaps) restart() { g.last = time.Time{} }

// seen hands Config.Seen the sender of a Delay_Req: a v2 one by its
// sourcePortIdentity (octets 20-29, IEEE 1588-2019 13.3.1), a v1 one by
// its sourceUuid and sourcePortId (octets 22-29, IEEE 1588-2002 6.4.2;
// control field 1 at octet 32). Other messages are ignored. Called from
// the receiving goroutines and the port goroutine.
func (s *Server) seen(b []byte, from netip.Addr, at time.Time) {
	var id [10]byte
	isV1 := v1.IsV1(b)
	switch {
	case isV1 && len(b) >= 34 && b[32] == v1.CtlDelayReq:
		copy(id[:8], b[22:30])
	case !isV1 && len(b) >= 44 && b[1]&0x0f == 2 && b[0]&0x0f == byte(protocol.MessageDelayReq):
		copy(id[:], b[20:30])
	default:
		return
	}
	s.cfg.Seen(isV1, id, from, at)
}
