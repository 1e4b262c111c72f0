package daemon

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"sitegm/clock"
	"sitegm/hw/neigh"
	"sitegm/hw/nic"
	"sitegm/hw/udpio"
	"sitegm/internal/config"
	"sitegm/ntp"
)

// ntpView is what every NTP worker reads per request: the header and how
// to turn the disciplined clock's time into UTC, swapped atomically by the
// daemon's loop (every 100 ms).
type ntpView struct {
	hdr ntp.Header
	// off is clock - UTC in ns (37 s on a TAI clock, 0 on the system
	// clock); at leapAt (clock ns, 0 for none) it becomes offAfter.
	off, leapAt, offAfter int64
	// PHC only: clock = realtime + phcOff (measured each update; the
	// system clock is slaved to the PHC, so this moves by nanoseconds).
	phcOff int64
}

// NTPStatus is one NTP interface's counters for status output.
type NTPStatus struct {
	Interface   string `json:"interface"`
	Port        int    `json:"port"`
	State       string `json:"state"`
	Requests    uint64 `json:"requests"`
	Replies     uint64 `json:"replies"`
	Interleaved uint64 `json:"interleaved"`
	Symmetric   uint64 `json:"symmetric"`
	KoD         uint64 `json:"kod"`
	RateDropped uint64 `json:"rate_dropped"`
	Ignored     uint64 `json:"ignored"`
	Malformed   uint64 `json:"malformed"`
	// Hostile or odd traffic, by reason (docs/hostile-input.md).
	BadVersion uint64 `json:"bad_version"`         // versions 5-7
	Refused    uint64 `json:"refused_destination"` // a source no reply may go to (port 0, broadcast ...)
	Unsendable uint64 `json:"unsendable"`          // replies dropped: the send buffer was full
	SendFailed uint64 `json:"send_failed"`         // replies the kernel refused one by one
	Unresolved uint64 `json:"unresolved"`          // replies not sent to on-link strangers beyond their budget (hw/neigh)
}

type ntpSlot struct {
	cfg  config.NTP
	srv  atomic.Pointer[ntpServer]
	slot slot
}

// ntpServer serves one [[ntp]] table: one SO_REUSEPORT socket and one
// Responder per CPU, batched reads and writes, nothing allocated per
// request.
type ntpServer struct {
	cfg   config.NTP
	tb    *timebase
	view  *atomic.Pointer[ntpView]
	log   *slog.Logger
	stats []workerStats
	base  time.Time // monotonic origin for rate limiting
	xl    *ntp.Xleave
	rate  *ntp.RateTable // shared by the workers, nil without limiting
	gate  *neigh.Gate    // on-link destinations the kernel knows; nil: all
	// serving: the sockets are open.
	serving  atomic.Bool
	rxStamps udpio.Stamps
}

// chooseStamps takes hardware receive timestamps when the interface's
// PHC is the disciplined clock and its filter stamps every packet
// (HWTSTAMP_FILTER_ALL: NTP is not PTP, so a PTP-only filter misses it);
// software otherwise. Transmit stamps (interleaved mode) stay software.
func (s *ntpServer) chooseStamps() udpio.Stamps {
	if s.tb.phc == nil || s.tb.virtual != nil {
		return udpio.Software
	}
	ti, err := nic.GetTSInfo(s.cfg.Interface)
	if err != nil || !ti.Hardware() || ti.PHCPath() != s.tb.phc.Name() {
		return udpio.Software
	}
	f, err := nic.EnableHardwareStamps(s.cfg.Interface)
	if err != nil || f != unix.HWTSTAMP_FILTER_ALL {
		s.log.Info("NTP uses software receive timestamps: the NIC does not stamp every packet", "event", "ntp_timestamping", "rx_filter", f)
		return udpio.Software
	}
	s.log.Info("NTP uses hardware receive timestamps", "event", "ntp_timestamping", "phc", s.tb.phc.Name())
	return udpio.Hardware
}

func newNTPServer(cfg config.NTP, tb *timebase, view *atomic.Pointer[ntpView], log *slog.Logger) *ntpServer {
	return &ntpServer{cfg: cfg, tb: tb, view: view, log: log.With("ntp_interface", cfg.Interface),
		stats: make([]workerStats, max(1, runtime.NumCPU()))}
}

// workerStats are one worker's counters: the responder's, then what the
// socket side saw (refused destinations, unsendable and failed replies).
type workerStats [13]atomic.Uint64

func (w *workerStats) store(s *ntp.Stats, io *ntpIOStats) {
	for i, v := range []uint64{s.Requests, s.Replies, s.Interleaved, s.Symmetric, s.KoD, s.RateDropped, s.Ignored, s.Malformed,
		s.BadVersion, io.refused, io.unsendable, io.failed, io.unresolved} {
		w[i].Store(v)
	}
}

type ntpIOStats struct{ refused, unsendable, failed, unresolved uint64 }

// watchNeighbours follows the interface's neighbour table (hw/neigh says
// why); without it (no netlink) every destination is allowed, as before.
func watchNeighbours(ctx context.Context, iface string, log *slog.Logger) *neigh.Gate {
	if iface == "lo" {
		return nil
	}
	g, err := neigh.Watch(ctx, iface)
	if err != nil {
		log.Warn("neighbour table not watched: replies to forged on-link sources are not bounded", "event", "neighbour_watch_error",
			"error", err.Error())
		return nil
	}
	return g
}

// clockHold is how long NTP keeps answering from its last view when the
// disciplined clock cannot be read: the PHC-to-realtime offset measured
// last is good for that long (the system clock is slaved to the PHC);
// after it, replies say unsynchronized (LI 3, stratum 0).
const clockHold = 2 * time.Second

// replySendBuffer is the send buffer of a socket that answers anyone (NTP,
// Delay_Req): room for about 10,000 replies held by address resolution
// (udpio.Options.SendBuffer). A flood of requests forged from on-link
// addresses that do not exist at 2,000 a second holds 6,000 of them for
// the 3 s ARP takes to give up; the kernel's neighbour table (gc_thresh3,
// 1,024 entries by default) bounds them too.
const replySendBuffer = 8 << 20

// clockNS maps a CLOCK_REALTIME time onto the disciplined clock, in ns.
func (s *ntpServer) clockNS(v *ntpView, t time.Time) int64 {
	switch {
	case s.tb.virtual != nil:
		return s.tb.virtual.FromHost(t).UnixNano()
	case s.tb.phc != nil:
		return t.UnixNano() + v.phcOff
	}
	return t.UnixNano()
}

// utcStamp converts a clock time to an NTP timestamp (UTC).
func utcStamp(v *ntpView, c int64) uint64 {
	off := v.off
	if v.leapAt != 0 && c >= v.leapAt {
		off = v.offAfter
	}
	return ntp.Timestamp(time.Unix(0, c-off))
}

func (s *ntpServer) run(ctx context.Context) error {
	workers := len(s.stats)
	var conns []*udpio.Conn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	s.rxStamps = s.chooseStamps()
	for i := 0; i < workers; i++ {
		c, err := udpio.Listen(udpio.Options{Interface: s.cfg.Interface, Port: s.cfg.Port, ReusePort: true, PacketInfo: true,
			RXStamps: s.rxStamps, RXSoftwareToo: true, TXStampsPerPacket: true, RecvBuffer: 4 << 20,
			SendBuffer: replySendBuffer, Loopback: s.cfg.Interface == "lo"})
		if err != nil {
			closeAll()
			return fmt.Errorf("%s port %d: %w", s.cfg.Interface, s.cfg.Port, err)
		}
		conns = append(conns, c)
	}
	s.gate = watchNeighbours(ctx, s.cfg.Interface, s.log)
	s.xl = ntp.NewXleave(1 << 16)
	if s.cfg.RateInterval.Duration > 0 {
		s.rate = ntp.NewRateTable(1<<16, s.cfg.RateInterval.Duration, s.cfg.RateBurst)
	}
	s.serving.Store(true)
	defer s.serving.Store(false)
	s.base = time.Now()
	s.log.Info("NTP server up", "event", "ntp_up", "ntp_port", s.cfg.Port, "ntp_workers", workers,
		"ntp_rate_interval", s.cfg.RateInterval.String(), "ntp_rate_burst", s.cfg.RateBurst)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.worker(ctx, c, &s.stats[i])
		}()
	}
	<-ctx.Done()
	closeAll()
	wg.Wait()
	return nil
}

// worker reads a batch, answers it in one sendmmsg, then collects the
// kernel transmit times of the replies that interleaved clients will be
// sent next. Nothing here waits for the kernel to take a reply: a reply
// that cannot leave now is dropped and counted (see udpio.WriteBatch).
func (s *ntpServer) worker(ctx context.Context, c *udpio.Conn, st *workerStats) {
	r := ntp.NewResponder(ntp.Config{RateInterval: s.cfg.RateInterval.Duration, RateBurst: s.cfg.RateBurst, Xleave: s.xl, Rate: s.rate})
	ms := make([]udpio.Msg, udpio.MaxBatch)
	outs := make([]udpio.Out, 0, udpio.MaxBatch)
	bufs := make([][ntp.HeaderLen]byte, udpio.MaxBatch)
	lo := s.cfg.Interface == "lo"
	var io ntpIOStats
	var v *ntpView
	txNow := func() uint64 { return utcStamp(v, s.clockNS(v, time.Now())) }
	// Each stamp comes back with the reply it stamps, whose receive
	// timestamp (bytes 32-39) is the key the interleaved table knows it by.
	sent := func(reply []byte, t time.Time) {
		if len(reply) >= ntp.HeaderLen {
			r.Sent(binary.BigEndian.Uint64(reply[32:]), utcStamp(v, s.clockNS(v, t)))
		}
	}
	for ctx.Err() == nil {
		n, err := c.ReadBatch(ms)
		if err != nil {
			return
		}
		readAt := time.Now()
		mono := int64(readAt.Sub(s.base))
		v = s.view.Load()
		outs = outs[:0]
		for i := 0; i < n; i++ {
			m := &ms[i]
			if udpio.CheckReplyTo(m.From, lo) != udpio.RefuseNone {
				io.refused++
				continue
			}
			if s.gate.Check(m.From.Addr()) != neigh.Allow {
				io.unresolved++
				continue
			}
			var rxClock int64
			switch {
			case s.rxStamps == udpio.Hardware && !m.RX.IsZero():
				rxClock = m.RX.UnixNano() // already on the PHC
			case s.rxStamps == udpio.Hardware && !m.RXSoft.IsZero():
				rxClock = s.clockNS(v, m.RXSoft)
			case s.rxStamps == udpio.Software && !m.RX.IsZero():
				rxClock = s.clockNS(v, m.RX)
			default:
				rxClock = s.clockNS(v, readAt)
			}
			rx := utcStamp(v, rxClock)
			rep := r.Respond(bufs[len(outs)][:], m.Data, rx, m.From.Addr(), mono, &v.hdr, txNow)
			if rep.N == 0 {
				continue
			}
			outs = append(outs, udpio.Out{Data: bufs[len(outs)][:rep.N], To: m.From, TxStamp: rep.WantTxStamp, Src: m.Dst})
		}
		if len(outs) > 0 {
			w := c.WriteBatch(outs)
			io.unsendable += uint64(w.Full)
			io.failed += uint64(w.Failed)
		}
		c.ReadTxStamps(sent)
		st.store(&r.Stats, &io)
	}
}

func (s *ntpServer) status() NTPStatus {
	st := NTPStatus{Interface: s.cfg.Interface, Port: s.cfg.Port, State: "SERVING"}
	for i := range s.stats {
		w := &s.stats[i]
		st.Requests += w[0].Load()
		st.Replies += w[1].Load()
		st.Interleaved += w[2].Load()
		st.Symmetric += w[3].Load()
		st.KoD += w[4].Load()
		st.RateDropped += w[5].Load()
		st.Ignored += w[6].Load()
		st.Malformed += w[7].Load()
		st.BadVersion += w[8].Load()
		st.Refused += w[9].Load()
		st.Unsendable += w[10].Load()
		st.SendFailed += w[11].Load()
		st.Unresolved += w[12].Load()
	}
	return st
}

// clockPrecision measures the precision of a clock read as NTP wants it:
// log2 of the smallest step between successive reads, in -29..-3 (older
// w32time discards replies outside that range).
func clockPrecision(read func() (time.Time, error)) int8 {
	best := time.Duration(math.MaxInt64)
	prev, perr := read()
	for i := 0; i < 2000; i++ {
		t, err := read()
		if d := t.Sub(prev); err == nil && perr == nil && d > 0 && d < best {
			best = d
		}
		prev, perr = t, err
	}
	if best == time.Duration(math.MaxInt64) {
		best = time.Microsecond // unreadable now: a plausible guess
	}
	p := int(math.Ceil(math.Log2(best.Seconds())))
	return int8(min(-3, max(-29, p)))
}

// publishNTP derives the NTP header from the quality state (RFC 5905 7.3
// via clock/quality) and the clock-to-UTC mapping.
func (d *Daemon) publishNTP() {
	now, ok := d.clockNow()
	var phcOff int64
	if ok && d.tb.phc != nil && d.tb.virtual == nil {
		so, err := d.tb.phc.SysOffset()
		if err != nil {
			d.tb.failed(fmt.Errorf("compare %s with CLOCK_REALTIME: %w", d.tb.phc.Name(), err))
			ok = false
		}
		phcOff = int64(so.PHC.Sub(so.System))
	}
	if !ok {
		// Hold the last view (its PHC-to-realtime offset is a fresh
		// measurement for a moment); past clockHold of failures, say the
		// time is not to be trusted rather than serve a stale conversion.
		if prev := d.ntpView.Load(); prev != nil && !d.clockFail.IsZero() && time.Since(d.clockFail) > clockHold && prev.hdr.Leap != 3 {
			v := *prev
			v.hdr.Leap, v.hdr.Stratum, v.hdr.RefID = 3, 0, 0x494E4954 // "INIT"
			v.hdr.RootDispersion = ntp.Short(16 * time.Second)
			d.ntpView.Store(&v)
		}
		return
	}
	v := &ntpView{phcOff: phcOff}
	if d.tb.clk.Timescale() == clock.TAI {
		utc, _ := d.table.TAIToUTC(now)
		v.off = int64(d.table.Offset(utc)) * int64(time.Second)
		v.offAfter = v.off
		// A leap second within the next second: switch exactly at it.
		if next := d.table.Offset(utc.Add(time.Second)); int64(next)*int64(time.Second) != v.off {
			day := utc.Truncate(24 * time.Hour).Add(24 * time.Hour)
			v.leapAt = day.UnixNano() + v.off
			v.offAfter = int64(next) * int64(time.Second)
		}
	}
	utc := time.Unix(0, now.UnixNano()-v.off)
	n := d.disc.Quality().NTP(utc, d.table)
	v.hdr = ntp.Header{Leap: n.LI, Stratum: n.Stratum, Precision: d.ntpPrecision,
		RefID: uint32(n.RefID[0])<<24 | uint32(n.RefID[1])<<16 | uint32(n.RefID[2])<<8 | uint32(n.RefID[3]),
		// The clock's error bound plus the resolution of reading it.
		RootDispersion: ntp.Short(n.RootDispersion + time.Duration(math.Ldexp(1e9, int(d.ntpPrecision))))}
	if !n.RefTime.IsZero() {
		// Never in the future.
		v.hdr.RefTime = ntp.Timestamp(minTime(n.RefTime, utc))
	}
	d.ntpView.Store(v)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// NTPStatuses reports every NTP interface.
func (d *Daemon) NTPStatuses() []NTPStatus {
	var out []NTPStatus
	for _, slot := range d.ntps {
		st := NTPStatus{Interface: slot.cfg.Interface, Port: slot.cfg.Port, State: "DOWN"}
		if srv := slot.srv.Load(); srv != nil && srv.serving.Load() {
			st = srv.status()
		}
		out = append(out, st)
	}
	return out
}

// reportRateLimited summarises, once a minute, the clients NTP rate
// limiting turned away: a site engineer sees a misbehaving camera (or a
// flood) without a line per packet.
func (d *Daemon) reportRateLimited() {
	var kod, dropped uint64
	for _, n := range d.NTPStatuses() {
		kod += n.KoD
		dropped += n.RateDropped
	}
	if kod < d.rateSeen[0] || dropped < d.rateSeen[1] {
		d.rateSeen = [2]uint64{} // a server restarted: counters began again
	}
	dk, dd := kod-d.rateSeen[0], dropped-d.rateSeen[1]
	d.rateSeen = [2]uint64{kod, dropped}
	if dk+dd > 0 {
		d.log.Warn("NTP clients rate limited in the last minute", "event", "ntp_rate_limited",
			"ntp_kod", dk, "ntp_rate_dropped", dd)
	}
}
