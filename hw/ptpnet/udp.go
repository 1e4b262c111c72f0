package ptpnet

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/facebook/time/ptp/protocol"

	"sitegm/hw/neigh"
	"sitegm/hw/udpio"
	"sitegm/ptp"
)

// udpTransport is PTP over UDP/IPv4 (IEEE 1588-2019 Annex C). Every
// socket the port goroutine writes to is one that nothing a peer sends can
// fill: the multicast messages (Sync, Announce, Follow_Up, multicast
// Delay_Resp and management) leave by send-only sockets connected to their
// group, whose buffers drain at the link's pace; only unicast replies
// share worker 0's general socket with the workers' unicast Delay_Resp,
// and those are sent without waiting. A flood of requests forged from
// on-link addresses that do not exist (replies held by address resolution
// for seconds) used to fill that socket and block the port goroutine in
// its Announce for half a minute.
type udpTransport struct {
	o        Options
	gen      *udpio.Conn   // worker 0's general socket: the port's unicast replies
	genOut   *udpio.Sender // general messages to the v2 group
	genOutV1 *udpio.Sender // general messages to the v1 group, when it differs
	syncOut  *udpio.Sender // send-only, connected to the group: Syncs and their timestamps
	syncV1   *udpio.Sender // the same for PTPv1 (its group, its timestamps)
	conns    []*udpio.Conn
	lo       bool
	wg       sync.WaitGroup
}

func (u *udpTransport) Send(o ptp.Out, isV1 bool) error {
	switch {
	case o.Sync && isV1:
		return u.syncV1.Write(o.Data)
	case o.Sync:
		return u.syncOut.Write(o.Data)
	case o.To.IsValid():
		if udpio.CheckReplyTo(o.To, u.lo) != udpio.RefuseNone {
			return ErrRefused
		}
		if u.o.Gate.Check(o.To.Addr()) != neigh.Allow {
			return ErrUnresolved
		}
		return u.gen.WriteTo(o.Data, o.To)
	case isV1 && u.genOutV1 != nil:
		return u.genOutV1.Write(o.Data)
	}
	// Every multicast message of a grandmaster port but the Sync is a
	// general message (IEEE 1588-2019 Table 36; 1588-2002 the same).
	return u.genOut.Write(o.Data)
}

func (u *udpTransport) SyncStamp(isV1 bool) (time.Time, error) {
	if isV1 {
		return u.syncV1.TxStamp(txStampWait)
	}
	return u.syncOut.TxStamp(txStampWait)
}

func (u *udpTransport) closeSockets() {
	for _, c := range u.conns {
		c.Close()
	}
	for _, c := range []*udpio.Sender{u.syncOut, u.syncV1, u.genOut, u.genOutV1} {
		if c != nil {
			c.Close()
		}
	}
}

func (u *udpTransport) Close() {
	u.closeSockets()
	u.wg.Wait()
}

func openUDP(o Options) (Transport, error) {
	u := &udpTransport{o: o, lo: o.Interface == "lo"}
	fail := func(err error) (Transport, error) {
		u.Close()
		return nil, err
	}
	evGroup := netip.AddrPortFrom(Group, uint16(o.EventPort))
	genGroup := netip.AddrPortFrom(Group, uint16(o.GeneralPort))
	hasV1 := o.V1Group.IsValid()
	// Send-only sockets outside Go's poller, connected to their group: a
	// connected UDP socket only matches datagrams from its peer, so it
	// takes nothing of the reuseport group's traffic.
	sender := func(what string, port int, to netip.AddrPort, stamps udpio.Stamps, dscp int) (*udpio.Sender, error) {
		so, err := udpio.OpenUDPSender(udpio.Options{Interface: o.Interface, Port: port, ReusePort: true, DSCP: dscp,
			TXStamps: stamps, Loopback: u.lo, Connect: to})
		if err != nil {
			return nil, fmt.Errorf("%s %s socket: %w", o.Interface, what, err)
		}
		return so, nil
	}
	for i := 0; i < max(1, runtime.NumCPU()); i++ {
		eo := udpio.Options{Interface: o.Interface, Port: o.EventPort, ReusePort: true, DSCP: o.DSCP.Event,
			RXStamps: o.Stamps, Loopback: u.lo, RecvBuffer: 4 << 20,
			RXSoftwareToo: hasV1 && o.V1Stamps != o.Stamps}
		g := eo
		g.Port, g.RXStamps, g.SendBuffer, g.DSCP = o.GeneralPort, udpio.NoStamps, ReplySendBuffer, o.DSCP.General
		if i == 0 {
			eo.Group, g.Group = Group, Group
		}
		ev, err := udpio.Listen(eo)
		if err != nil {
			return fail(fmt.Errorf("%s event port %d: %w", o.Interface, o.EventPort, err))
		}
		u.conns = append(u.conns, ev)
		gen, err := udpio.Listen(g)
		if err != nil {
			return fail(fmt.Errorf("%s general port %d: %w", o.Interface, o.GeneralPort, err))
		}
		u.conns = append(u.conns, gen)
		// The worker's multicast Delay_Resp leave by a socket of their
		// own, so that unicast replies stuck behind address resolution
		// never crowd them out.
		mc, err := udpio.Listen(udpio.Options{Interface: o.Interface, Port: o.GeneralPort, ReusePort: true,
			DSCP: o.DSCP.General, Loopback: u.lo, Connect: genGroup})
		if err != nil {
			return fail(fmt.Errorf("%s general port %d (multicast replies): %w", o.Interface, o.GeneralPort, err))
		}
		u.conns = append(u.conns, mc)
		if i == 0 {
			u.gen = gen
			if hasV1 && o.V1Group != Group {
				// An _ALTn subdomain: its own group on the same ports.
				for _, c := range []*udpio.Conn{ev, gen} {
					if err := c.JoinGroup(o.V1Group); err != nil {
						return fail(err)
					}
				}
			}
		}
		u.wg.Add(2)
		go func() { defer u.wg.Done(); u.eventWorker(ev, gen, mc) }()
		go func() { defer u.wg.Done(); u.generalWorker(gen) }()
	}
	var err error
	if u.genOut, err = sender("general", o.GeneralPort, genGroup, udpio.NoStamps, o.DSCP.General); err != nil {
		return fail(err)
	}
	if hasV1 && o.V1Group != Group {
		to := netip.AddrPortFrom(o.V1Group, uint16(o.GeneralPort))
		if u.genOutV1, err = sender("PTPv1 general", o.GeneralPort, to, udpio.NoStamps, o.DSCP.General); err != nil {
			return fail(err)
		}
	}
	// Syncs leave from a socket of their own that no goroutine reads and
	// Go's poller does not watch (udpio.Sender says why): the transmit
	// timestamp's error-queue report then wakes nobody, and only the Sync
	// thread ever reads that error queue.
	if u.syncOut, err = sender("Sync", o.EventPort, evGroup, o.Stamps, o.DSCP.Event); err != nil {
		return fail(err)
	}
	if hasV1 {
		to := netip.AddrPortFrom(o.V1Group, uint16(o.EventPort))
		if u.syncV1, err = sender("PTPv1 Sync", o.EventPort, to, o.V1Stamps, o.DSCP.V1Event); err != nil {
			return fail(err)
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
func (u *udpTransport) eventWorker(ev, gen, mc *udpio.Conn) {
	f, cnt := &u.o.Fast, u.o.Counters
	ms := make([]udpio.Msg, udpio.MaxBatch)
	uni := make([]udpio.Out, 0, udpio.MaxBatch)
	multi := make([]udpio.Out, 0, udpio.MaxBatch)
	resp := make([][64]byte, udpio.MaxBatch)
	genPort := uint16(u.o.GeneralPort)
	for {
		n, err := ev.ReadBatch(ms)
		if err != nil {
			return // closed
		}
		readAt := time.Now()
		uni, multi = uni[:0], multi[:0]
		master := f.Master.Load()
		for i := 0; i < n; i++ {
			b := ms[i].Data
			// A v2 Delay_Req of our domain (IEEE 1588-2019 13.3: the
			// version nibble at octet 1, messageType at 0, domain at 4).
			if master && len(b) >= 44 && b[1]&0x0f == 2 && b[0]&0x0f == byte(protocol.MessageDelayReq) && b[4] == f.Domain {
				unicast := b[6]&byte(protocol.FlagUnicast>>8) != 0
				to := netip.AddrPortFrom(ms[i].From.Addr(), genPort)
				if unicast && udpio.CheckReplyTo(to, u.lo) != udpio.RefuseNone {
					cnt.Refused.Add(1)
					continue
				}
				if unicast && u.o.Gate.Check(to.Addr()) != neigh.Allow {
					cnt.Unresolved.Add(1)
					continue
				}
				rx := ms[i].RX
				if rx.IsZero() {
					rx = readAt
				}
				buf := resp[len(uni)+len(multi)][:]
				crx, err := f.ToClock(rx)
				if err != nil {
					continue // unanswered: no receipt time on the clock
				}
				k, ok := ptp.AppendDelayResp(buf, b, crx, f.Identity, f.LogMinDelayReq)
				if !ok {
					continue
				}
				if f.Seen != nil {
					f.Seen(b, ms[i].From.Addr(), readAt)
				}
				if unicast {
					uni = append(uni, udpio.Out{Data: buf[:k], To: to})
				} else {
					multi = append(multi, udpio.Out{Data: buf[:k]})
				}
				continue
			}
			u.forward(b, ms[i].RX, ms[i].RXSoft, ms[i].From, true)
		}
		for _, batch := range []struct {
			c    *udpio.Conn
			outs []udpio.Out
		}{{gen, uni}, {mc, multi}} {
			if len(batch.outs) == 0 {
				continue
			}
			cnt.FastReqs.Add(uint64(len(batch.outs)))
			w := batch.c.WriteBatch(batch.outs)
			cnt.Unsendable.Add(uint64(w.Full))
			cnt.SendFailed.Add(uint64(w.Failed))
		}
	}
}

func (u *udpTransport) generalWorker(gen *udpio.Conn) {
	ms := make([]udpio.Msg, udpio.MaxBatch)
	for {
		n, err := gen.ReadBatch(ms)
		if err != nil {
			return
		}
		for i := 0; i < n; i++ {
			u.forward(ms[i].Data, ms[i].RX, time.Time{}, ms[i].From, false)
		}
	}
}

// forward copies a message for the port goroutine; when it is behind, the
// message is dropped (counted by the sender's retry, as on a real link).
func (u *udpTransport) forward(b []byte, rx, rxSoft time.Time, from netip.AddrPort, event bool) {
	forward(u.o.Messages, b, rx, rxSoft, from, event)
}

func forward(to chan<- Msg, b []byte, rx, rxSoft time.Time, from netip.AddrPort, event bool) {
	m := Msg{Data: append([]byte(nil), b...), RX: rx, RXSoft: rxSoft, From: from, Event: event}
	if m.RX.IsZero() {
		m.RX = time.Now()
	}
	select {
	case to <- m:
	default:
	}
}
