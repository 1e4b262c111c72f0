// Package ntpnet serves NTP on Linux: one SO_REUSEPORT socket and one
// ntp.Responder per CPU, batched reads and writes, kernel receive and
// transmit timestamps carried onto UTC as the disciplined clock counts it,
// nothing allocated per request.
package ntpnet

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"sitegm/clock/timebase"
	"sitegm/hw/neigh"
	"sitegm/hw/nic"
	"sitegm/hw/udpio"
	"sitegm/ntp"
)

// View is what every worker reads per request: the header and how to
// carry CLOCK_REALTIME stamps onto UTC, swapped atomically by the daemon's
// loop (every 100 ms).
type View struct {
	Header ntp.Header
	Map    timebase.UTCMap
}

// Hold makes the published view say "unsynchronized" until the next is
// published: a step of the disciplined PHC, or of the system clock the
// workers stamp on, makes its map carry stamps onto the wrong time (by
// the whole step: a month, for a box that booted a month off) until it
// is rebuilt after the step. A reply that admits it does not know beats
// a wrong one.
func Hold(v *atomic.Pointer[View]) {
	if prev := v.Load(); prev != nil && prev.Header.Leap != 3 {
		held := *prev
		held.Header = held.Header.Unsynchronized()
		v.Store(&held)
	}
}

// Options of one server.
type Options struct {
	Interface    string
	Port         int
	RateInterval time.Duration // zero: no rate limiting
	RateBurst    int
	// SendBuffer of each socket (udpio.Options.SendBuffer says why it is
	// large).
	SendBuffer int
	// Seen, when set, learns each client answered: its address, the
	// request's version and mode, and whether it was told to slow down
	// (a RATE kiss).
	Seen func(from netip.Addr, at time.Time, version, mode int, kod bool)
	// NTS, when set, answers NTS requests (RFC 8915 5) with cookies
	// under these keys; plain requests are answered as ever.
	NTS *ntp.CookieKeys
	// KE, when set (with NTS), serves NTS-KE on the interface beside
	// NTP (ServeKE).
	KE *KEOptions
	// Workers is how many sockets (SO_REUSEPORT) and workers answer;
	// 0: one per CPU.
	Workers int
}

// Status is one NTP interface's counters for status output.
type Status struct {
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
	// SendLagNS: what a reply's transmit time adds to the clock read it
	// is stamped with, for the send path it has yet to go (the least of
	// its recent kernel transmit stamps less that read, so that no reply
	// is stamped after it left: ntp.SendLag; the largest of the workers').
	// 0 until measured.
	SendLagNS uint64 `json:"send_lag_ns"`
	// NTS (RFC 8915), when on: requests with NTS fields, authenticated
	// answers, NTS NAKs (cookie or authenticator refused) and requests
	// dropped for NTS fields out of the rules.
	NTS         bool   `json:"nts"`
	NTSRequests uint64 `json:"nts_requests"`
	NTSAnswered uint64 `json:"nts_answered"`
	NTSNAKs     uint64 `json:"nts_naks"`
	NTSBad      uint64 `json:"nts_bad"`
	// NTS-KE: sessions that got cookies, requests refused with an Error
	// record, exchanges that failed (TLS, timeout), connections shed at
	// accept (concurrency, a source's or the total rate).
	KESessions uint64 `json:"nts_ke_sessions"`
	KERefused  uint64 `json:"nts_ke_refused"`
	KEFailed   uint64 `json:"nts_ke_failed"`
	KEShed     uint64 `json:"nts_ke_shed"`
}

// Server serves one [[ntp]] table.
type Server struct {
	o     Options
	tb    *timebase.Timebase
	view  *atomic.Pointer[View]
	log   *slog.Logger
	stats []workerStats
	base  time.Time // monotonic origin for rate limiting
	xl    *ntp.Xleave
	rate  *ntp.RateTable // shared by the workers, nil without limiting
	gate  *neigh.Gate    // on-link destinations the kernel knows; nil: all
	// serving: the sockets are open.
	serving  atomic.Bool
	rxStamps udpio.Stamps
	rxSlave  *timebase.PHCSlave // the slave PHC hardware stamps are on, or nil
	ke       KEStats
}

// NewServer prepares a server that answers from view.
func NewServer(o Options, tb *timebase.Timebase, view *atomic.Pointer[View], log *slog.Logger) *Server {
	n := o.Workers
	if n <= 0 {
		n = max(1, runtime.NumCPU())
	}
	return &Server{o: o, tb: tb, view: view, log: log.With("ntp_interface", o.Interface),
		stats: make([]workerStats, n)}
}

// workerStats are one worker's counters: the responder's, then what the
// socket side saw (refused destinations, unsendable and failed replies),
// then its send lag estimate (ns, a gauge).
type workerStats [18]atomic.Uint64

const lagIndex = 17

// probeEvery: a basic reply is made to bring its kernel transmit stamp
// (to measure the send lag) at most this often per worker: ten error
// queue reads a second, nothing beside a batch's own cost.
const probeEvery = 100 * time.Millisecond

func (w *workerStats) store(s *ntp.Stats, io *ioStats, n *ntp.NTSStats) {
	for i, v := range []uint64{s.Requests, s.Replies, s.Interleaved, s.Symmetric, s.KoD, s.RateDropped, s.Ignored, s.Malformed,
		s.BadVersion, io.refused, io.unsendable, io.failed, io.unresolved, n.Requests, n.Answered, n.NAKs, n.Bad} {
		w[i].Store(v)
	}
}

type ioStats struct{ refused, unsendable, failed, unresolved uint64 }

// chooseStamps takes hardware receive timestamps when the interface's
// PHC is the disciplined clock or slaved to it (then s.rxSlave carries
// its stamps over) and its filter stamps every packet
// (HWTSTAMP_FILTER_ALL: NTP is not PTP, so a PTP-only filter misses it);
// software otherwise. Transmit stamps (interleaved mode) stay software.
func (s *Server) chooseStamps() udpio.Stamps {
	phc := s.tb.PHC()
	if phc == "" {
		return udpio.Software
	}
	ti, err := nic.GetTSInfo(s.o.Interface)
	if err != nil || !ti.Hardware() || (ti.PHCPath() != phc && s.tb.Slave(ti.PHCPath()) == nil) {
		return udpio.Software
	}
	s.rxSlave = s.tb.Slave(ti.PHCPath())
	f, err := nic.EnableHardwareStamps(s.o.Interface)
	if err != nil || f != unix.HWTSTAMP_FILTER_ALL {
		s.log.Info("NTP uses software receive timestamps: the NIC does not stamp every packet", "event", "ntp_timestamping", "rx_filter", f)
		return udpio.Software
	}
	s.log.Info("NTP uses hardware receive timestamps", "event", "ntp_timestamping", "phc", ti.PHCPath(), "phc_slaved", s.rxSlave != nil)
	return udpio.Hardware
}

// carried puts a hardware stamp on the slave PHC onto the disciplined
// clock; false when the slave is not measured (the software stamp serves
// then: never the slave's own time).
func (s *Server) carried(rx time.Time, out *int64) bool {
	t, _, err := s.rxSlave.ToMaster(rx)
	if err != nil {
		return false
	}
	*out = t.UnixNano()
	return true
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	workers := len(s.stats)
	var conns []*udpio.Conn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	s.rxStamps = s.chooseStamps()
	for i := 0; i < workers; i++ {
		c, err := udpio.Listen(udpio.Options{Interface: s.o.Interface, Port: s.o.Port, ReusePort: true, PacketInfo: true,
			RXStamps: s.rxStamps, RXSoftwareToo: true, TXStampsPerPacket: true, RecvBuffer: 4 << 20,
			SendBuffer: s.o.SendBuffer, Loopback: s.o.Interface == "lo"})
		if err != nil {
			closeAll()
			return fmt.Errorf("%s port %d: %w", s.o.Interface, s.o.Port, err)
		}
		conns = append(conns, c)
	}
	s.gate = neigh.WatchOrAllow(ctx, s.o.Interface, s.log)
	s.xl = ntp.NewXleave(1 << 16)
	if s.o.RateInterval > 0 {
		s.rate = ntp.NewRateTable(1<<16, s.o.RateInterval, s.o.RateBurst)
	}
	if s.o.KE != nil {
		ke := *s.o.KE
		ke.Interface, ke.Keys, ke.Stats = s.o.Interface, s.o.NTS, &s.ke
		go func() {
			if err := ServeKE(ctx, ke, s.log); err != nil && ctx.Err() == nil {
				s.log.Error("NTS-KE stopped: NTS clients get no new cookies", "event", "nts_ke_error", "error", err.Error())
			}
		}()
	}
	s.serving.Store(true)
	defer s.serving.Store(false)
	s.base = time.Now()
	s.log.Info("NTP server up", "event", "ntp_up", "ntp_port", s.o.Port, "ntp_workers", workers,
		"ntp_rate_interval", s.o.RateInterval.String(), "ntp_rate_burst", s.o.RateBurst)
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
//
// A basic-mode reply's transmit timestamp is the clock read before the
// send: all that runs between the two is error in it. So plain replies
// are stamped by one read right before the sendmmsg, after the whole
// batch is built, and the clients are learnt (Seen, which takes a lock
// the status side shares) only after the send. NTS answers are stamped
// as they are sealed: their transmit time is under the authenticator.
func (s *Server) worker(ctx context.Context, c *udpio.Conn, st *workerStats) {
	r := ntp.NewResponder(ntp.Config{RateInterval: s.o.RateInterval, RateBurst: s.o.RateBurst, Xleave: s.xl, Rate: s.rate})
	ms := make([]udpio.Msg, udpio.MaxBatch)
	outs := make([]udpio.Out, 0, udpio.MaxBatch)
	reps := make([]ntp.Reply, 0, udpio.MaxBatch)
	heads := make([]byte, 0, udpio.MaxBatch) // each request's first octet: its version and mode
	// Replies are never longer than their requests; an NTS answer is as
	// long as the request it answers.
	bufs := make([][udpio.MaxDatagram]byte, udpio.MaxBatch)
	nts := &ntp.NTSServer{Keys: s.o.NTS}
	lo := s.o.Interface == "lo"
	var io ioStats
	var v *View
	short := false // the last read of the error queue found fewer stamps than asked
	stamp := func(clockNS int64) uint64 { return ntp.Timestamp(v.Map.UTC(clockNS)) }
	read := func() uint64 { return stamp(v.Map.ClockNS(time.Now())) }
	// A transmit time is the clock read plus the send path's measured lag
	// (ntp.SendLag): the first reply of a batch that has its kernel
	// transmit stamp coming (an interleaved one, or a basic one made a
	// probe at most every probeEvery) measures it.
	var lag ntp.SendLag
	var probeKey, probeRead uint64
	var lastProbe time.Time
	txNow := func() uint64 { return read() + ntp.Fraction(lag.NS()) }
	// Each stamp comes back with the reply it stamps, whose receive
	// timestamp (bytes 32-39) is the key the interleaved table knows it by.
	sent := func(reply []byte, t time.Time) {
		if len(reply) >= ntp.HeaderLen {
			key, kt := binary.BigEndian.Uint64(reply[32:]), stamp(v.Map.ClockNS(t))
			if key == probeKey && probeKey != 0 {
				lag.Add(ntp.LagNS(probeRead, kt))
				st[lagIndex].Store(uint64(lag.NS()))
				probeKey = 0
			}
			r.Sent(key, kt)
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
		outs, reps, heads = outs[:0], reps[:0], heads[:0]
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
			rx := stamp(s.rxClock(m, v, readAt))
			buf := bufs[len(outs)][:]
			var rep ntp.Reply
			if nts.Keys != nil && ntp.MayBeNTS(m.Data) {
				rep, _ = nts.Respond(r, buf, m.Data, rx, m.From.Addr(), mono, &v.Header, txNow)
			} else {
				rep = r.Respond(buf, m.Data, rx, m.From.Addr(), mono, &v.Header, nil)
			}
			if rep.N == 0 {
				continue
			}
			outs = append(outs, udpio.Out{Data: buf[:rep.N], To: m.From, TxStamp: rep.WantTxStamp, Src: m.Dst})
			reps = append(reps, rep)
			heads = append(heads, m.Data[0])
		}
		asked := 0
		if len(outs) > 0 {
			if reps[0].Pending && !outs[0].TxStamp && readAt.Sub(lastProbe) >= probeEvery {
				outs[0].TxStamp, lastProbe = true, readAt
			}
			raw := read()
			tx := raw + ntp.Fraction(lag.NS())
			for i := range outs {
				r.Stamp(outs[i].Data, reps[i], tx)
				if outs[i].TxStamp {
					asked++
				}
			}
			if reps[0].Pending && outs[0].TxStamp {
				probeKey, probeRead = reps[0].Key, raw
			}
			w := c.WriteBatch(outs)
			io.unsendable += uint64(w.Full)
			io.failed += uint64(w.Failed)
		}
		// The error queue is read when this batch asked for stamps, and
		// once more after a read that came short (a stamp the driver
		// gives late): a batch of basic replies costs no system call for
		// stamps nobody asked for.
		if asked > 0 || short {
			short = c.ReadTxStamps(sent) < asked
		}
		if s.o.Seen != nil {
			for i := range outs {
				out := outs[i].Data
				kod := out[1] == 0 && string(out[12:16]) == "RATE"
				s.o.Seen(outs[i].To.Addr(), readAt, int(heads[i]>>3&7), int(heads[i]&7), kod)
			}
		}
		st.store(&r.Stats, &io, &nts.Stats)
	}
}

// rxClock is request m's receive time on the disciplined clock: the
// hardware stamp on its PHC (or carried over from a slave PHC), else the
// kernel's software stamp carried by the view's map, else the time the
// batch was read (a kernel that gave no stamp).
func (s *Server) rxClock(m *udpio.Msg, v *View, readAt time.Time) int64 {
	var ns int64
	switch {
	case s.rxStamps == udpio.Hardware && !m.RX.IsZero() && s.rxSlave == nil:
		return m.RX.UnixNano() // already on the PHC
	case s.rxStamps == udpio.Hardware && !m.RX.IsZero() && s.carried(m.RX, &ns):
		return ns // on a slave PHC, carried onto the disciplined one
	case s.rxStamps == udpio.Hardware && !m.RXSoft.IsZero():
		return v.Map.ClockNS(m.RXSoft)
	case s.rxStamps == udpio.Software && !m.RX.IsZero():
		return v.Map.ClockNS(m.RX)
	}
	return v.Map.ClockNS(readAt)
}

// Status sums the workers' counters; a server whose sockets are not open
// is DOWN.
func (s *Server) Status() Status {
	st := Status{Interface: s.o.Interface, Port: s.o.Port, State: "DOWN", NTS: s.o.NTS != nil}
	if !s.serving.Load() {
		return st
	}
	st.State = "SERVING"
	st.KESessions, st.KERefused, st.KEFailed, st.KEShed = s.ke.Sessions.Load(), s.ke.Refused.Load(), s.ke.Failed.Load(), s.ke.Shed.Load()
	for i := range s.stats {
		w := &s.stats[i]
		for j, p := range []*uint64{&st.Requests, &st.Replies, &st.Interleaved, &st.Symmetric, &st.KoD, &st.RateDropped,
			&st.Ignored, &st.Malformed, &st.BadVersion, &st.Refused, &st.Unsendable, &st.SendFailed, &st.Unresolved,
			&st.NTSRequests, &st.NTSAnswered, &st.NTSNAKs, &st.NTSBad} {
			*p += w[j].Load()
		}
		st.SendLagNS = max(st.SendLagNS, w[lagIndex].Load())
	}
	return st
}
