// Command ptpv1-probe is an IEEE 1588-2002 (PTPv1) slave that only
// measures, and a minimal v1 master for tests: what the Dante side of a
// site sees of sitegm, without a Dante device.
//
//	ptpv1-probe slave  --interface eth0 [--subdomain _DFLT] [--count N]
//	ptpv1-probe master --interface eth0 --stratum 1 --preferred
//
// The slave follows the Syncs and Follow_Ups of the best master it hears,
// sends a Delay_Req after each Follow_Up, and prints one JSON line per
// completed exchange: the host time, the offset (slave - master, on the
// master's timescale; sitegm's is TAI) and the path delay, with software
// timestamps on CLOCK_REALTIME. It never steers a clock.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"sitegm/hw/udpio"
	v1 "sitegm/ptp/v1"
)

// Sample is one completed Sync/Follow_Up/Delay_Req/Delay_Resp exchange.
type Sample struct {
	At        int64  `json:"at"` // host CLOCK_REALTIME, ns, at the Sync's receipt
	OffsetNS  int64  `json:"offset_ns"`
	DelayNS   int64  `json:"delay_ns"`
	Master    string `json:"master"`
	UTCOffset int16  `json:"utc_offset"`
	Stratum   uint8  `json:"stratum"`
	Preferred bool   `json:"preferred"`
	Flags     uint16 `json:"flags"`
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 || (args[0] != "slave" && args[0] != "master") {
		fmt.Fprintln(os.Stderr, "usage: ptpv1-probe slave|master --interface IFACE [flags]")
		return 2
	}
	fs := flag.NewFlagSet("ptpv1-probe "+args[0], flag.ContinueOnError)
	iface := fs.String("interface", "", "network interface")
	sub := fs.String("subdomain", "_DFLT", "subdomain (_DFLT, _ALT1.._ALT3)")
	count := fs.Int("count", 0, "slave: stop after this many samples (0: run until signalled)")
	stratum := fs.Uint("stratum", 4, "master: grandmasterClockStratum")
	ident := fs.String("identifier", "DFLT", "master: grandmasterClockIdentifier")
	variance := fs.Int("variance", -4000, "master: grandmasterClockVariance")
	preferred := fs.Bool("preferred", false, "master: grandmasterPreferred")
	logSync := fs.Int("log-sync", -2, "master: log2 Sync interval")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	sd, last, ok := v1.ParseSubdomain(*sub)
	if !ok || *iface == "" {
		fmt.Fprintln(os.Stderr, "ptpv1-probe: need --interface and a valid --subdomain")
		return 2
	}
	ifi, err := net.InterfaceByName(*iface)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptpv1-probe:", err)
		return 1
	}
	var uuid v1.UUID
	copy(uuid[:], ifi.HardwareAddr)
	group := netip.AddrFrom4([4]byte{224, 0, 1, last})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if args[0] == "master" {
		var id [4]byte
		copy(id[:], *ident)
		err = master(ctx, *iface, group, sd, uuid, uint8(*stratum), id, int16(*variance), *preferred, int8(*logSync))
	} else {
		err = slave(ctx, *iface, group, sd, uuid, *count)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptpv1-probe:", err)
		return 1
	}
	return 0
}

func listen(iface string, port int, group netip.Addr, rx, tx udpio.Stamps, connect netip.AddrPort) (*udpio.Conn, error) {
	return udpio.Listen(udpio.Options{Interface: iface, Port: port, ReusePort: true, ReuseAddr: true, Group: group,
		RXStamps: rx, TXStamps: tx, Connect: connect})
}

func header(sd v1.Subdomain, uuid v1.UUID, typ, ctl uint8, seq, flags uint16) v1.Header {
	return v1.Header{VersionNetwork: 1, Subdomain: sd, MessageType: typ, SourceTech: v1.CommEthernet,
		SourceUUID: uuid, SourcePort: 1, Sequence: seq, Control: ctl, Flags: flags}
}

// slave measures: t1 (Follow_Up), t2 (Sync receipt), t3 (Delay_Req
// sent), t4 (Delay_Resp): offset = ((t2-t1) - (t4-t3)) / 2.
func slave(ctx context.Context, iface string, group netip.Addr, sd v1.Subdomain, uuid v1.UUID, count int) error {
	ev, err := listen(iface, 319, group, udpio.Software, udpio.NoStamps, netip.AddrPort{})
	if err != nil {
		return err
	}
	defer ev.Close()
	gen, err := listen(iface, 320, group, udpio.NoStamps, udpio.NoStamps, netip.AddrPort{})
	if err != nil {
		return err
	}
	defer gen.Close()
	out, err := listen(iface, 319, netip.Addr{}, udpio.NoStamps, udpio.Software, netip.AddrPortFrom(group, 319))
	if err != nil {
		return err
	}
	defer out.Close()
	go func() { <-ctx.Done(); ev.Close(); gen.Close() }()

	type msg struct {
		b  []byte
		rx time.Time
	}
	in := make(chan msg, 64)
	reader := func(c *udpio.Conn) {
		ms := make([]udpio.Msg, udpio.MaxBatch)
		for {
			n, err := c.ReadBatch(ms)
			if err != nil {
				return
			}
			for _, m := range ms[:n] {
				rx := m.RX
				if rx.IsZero() {
					rx = time.Now()
				}
				in <- msg{append([]byte(nil), m.Data...), rx}
			}
		}
	}
	go reader(ev)
	go reader(gen)

	var (
		best     *v1.Sync
		bestSeen time.Time
		syncRX   = map[uint16]time.Time{}
		t1, t2   time.Time
		t3       time.Time
		reqSeq   uint16
		pending  bool
		samples  int
	)
	enc := json.NewEncoder(os.Stdout)
	for {
		var m msg
		select {
		case <-ctx.Done():
			return nil
		case m = <-in:
		}
		h, err := v1.ParseHeader(m.b)
		if err != nil || h.Subdomain != sd || h.SourceUUID == uuid {
			continue
		}
		switch h.Control {
		case v1.CtlSync:
			var s v1.Sync
			if s.Unmarshal(m.b) != nil {
				continue
			}
			// Follow the best master heard in the last few seconds.
			if best == nil || best.SourceUUID == s.SourceUUID || time.Since(bestSeen) > 3*time.Second ||
				v1.Compare(v1.FromSync(&s), v1.FromSync(best)) < 0 {
				best, bestSeen = &s, time.Now()
				syncRX[s.Sequence] = m.rx
			}
		case v1.CtlFollowUp:
			var f v1.FollowUp
			if f.Unmarshal(m.b) != nil || best == nil || f.SourceUUID != best.SourceUUID {
				continue
			}
			rx, ok := syncRX[f.AssociatedSequence]
			delete(syncRX, f.AssociatedSequence)
			if !ok || pending {
				continue
			}
			t1, t2 = f.Precise.Time(best.EpochNumber), rx
			reqSeq++
			var req v1.Sync
			req.Header = header(sd, uuid, v1.EventMessage, v1.CtlDelayReq, reqSeq, 0)
			b := make([]byte, v1.SyncLen)
			req.MarshalTo(b)
			if out.Write(b) != nil {
				continue
			}
			if t3, err = out.TxStamp(50 * time.Millisecond); err != nil {
				continue
			}
			pending = true
		case v1.CtlDelayResp:
			var d v1.DelayResp
			if d.Unmarshal(m.b) != nil || !pending || d.ReqUUID != uuid || d.ReqSequence != reqSeq ||
				best == nil || d.SourceUUID != best.SourceUUID {
				continue
			}
			pending = false
			t4 := d.Receipt.Time(best.EpochNumber)
			ms, sm := t2.Sub(t1), t4.Sub(t3)
			enc.Encode(Sample{At: t2.UnixNano(), OffsetNS: int64((ms - sm) / 2), DelayNS: int64((ms + sm) / 2),
				Master: fmt.Sprintf("%x", best.SourceUUID[:]), UTCOffset: best.CurrentUTCOffset,
				Stratum: best.GMStratum, Preferred: best.GMPreferred, Flags: best.Flags})
			samples++
			if count > 0 && samples >= count {
				return nil
			}
		}
		// A lost Delay_Resp must not stop the measurement.
		if pending && time.Since(t2) > time.Second {
			pending = false
		}
	}
}

// master sends Syncs with ASSIST and their Follow_Ups with the given
// credentials (host clock as its time); it answers nothing. It stands in
// for a Dante leader in tests.
func master(ctx context.Context, iface string, group netip.Addr, sd v1.Subdomain, uuid v1.UUID,
	stratum uint8, id [4]byte, variance int16, preferred bool, logSync int8) error {
	ev, err := listen(iface, 319, netip.Addr{}, udpio.NoStamps, udpio.Software, netip.AddrPortFrom(group, 319))
	if err != nil {
		return err
	}
	defer ev.Close()
	gen, err := listen(iface, 320, netip.Addr{}, udpio.NoStamps, udpio.NoStamps, netip.AddrPortFrom(group, 320))
	if err != nil {
		return err
	}
	defer gen.Close()
	per := time.Second
	if logSync < 0 {
		per >>= uint(-logSync)
	} else {
		per <<= uint(logSync)
	}
	tick := time.NewTicker(per)
	defer tick.Stop()
	b := make([]byte, v1.SyncLen)
	for seq := uint16(0); ; seq++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := time.Now()
		var s v1.Sync
		s.Header = header(sd, uuid, v1.EventMessage, v1.CtlSync, seq, v1.FlagAssist)
		s.Origin, s.EpochNumber = v1.NewTimestamp(now)
		s.GMTech, s.GMUUID, s.GMPort, s.GMSequence = v1.CommEthernet, uuid, 1, seq
		s.GMStratum, s.GMIdentifier, s.GMVariance, s.GMPreferred = stratum, id, variance, preferred
		s.SyncInterval, s.LocalStratum, s.LocalIdentifier, s.LocalVariance = logSync, stratum, id, variance
		s.ParentTech, s.ParentUUID, s.ParentPort = v1.CommEthernet, uuid, 1
		if ev.Write(b[:s.MarshalTo(b)]) != nil {
			continue
		}
		tx, err := ev.TxStamp(50 * time.Millisecond)
		if err != nil {
			tx = now
		}
		var f v1.FollowUp
		f.Header = header(sd, uuid, v1.GeneralMessage, v1.CtlFollowUp, seq, v1.FlagAssist)
		f.AssociatedSequence = seq
		f.Precise, _ = v1.NewTimestamp(tx)
		gen.Write(b[:f.MarshalTo(b)])
	}
}
