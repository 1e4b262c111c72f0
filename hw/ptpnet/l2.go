package ptpnet

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"

	"sitegm/hw/udpio"
	"sitegm/ptp"
)

// l2Transport is PTP over IEEE 802.3 (IEEE 1588-2019 Annex E): every
// message to the one multicast address, no unicast replies. It sends on
// one packet socket and Syncs on a second one that alone asks for transmit
// timestamps: with one socket, every Announce, Follow_Up and Delay_Resp
// would queue a timestamp too and the Sync's would not be the one read
// back.
type l2Transport struct {
	c   *packet.Conn
	sc  *udpio.Sender // outside Go's poller, as the UDP Sync socket
	src net.HardwareAddr
	wg  sync.WaitGroup
}

func (l *l2Transport) Send(o ptp.Out, _ bool) error {
	f := ethernet.Frame{Destination: L2Group, Source: l.src, EtherType: Ethertype, Payload: o.Data}
	b, err := f.MarshalBinary()
	if err != nil {
		return err
	}
	if o.Sync {
		return l.sc.Write(b)
	}
	_, err = l.c.WriteTo(b, &packet.Addr{HardwareAddr: L2Group})
	return err
}

func (l *l2Transport) SyncStamp(bool) (time.Time, error) {
	return l.sc.TxStamp(txStampWait)
}

func (l *l2Transport) Close() {
	l.c.Close()
	l.sc.Close()
	l.wg.Wait()
}

func openL2(o Options) (Transport, error) {
	ifi, err := net.InterfaceByName(o.Interface)
	if err != nil {
		return nil, err
	}
	c, err := packet.Listen(ifi, packet.Raw, Ethertype, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: PTP over Ethernet: %w", o.Interface, err)
	}
	if err := c.JoinGroup(L2Group); err != nil {
		c.Close()
		return nil, err
	}
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := udpio.SetStamps(rc, o.Stamps, udpio.NoStamps); err != nil {
		c.Close()
		return nil, err
	}
	// The Sync socket receives nothing, it only sends.
	sc, err := udpio.OpenPacketSender(o.Interface, Ethertype, L2Group, o.Stamps)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: PTP over Ethernet: %w", o.Interface, err)
	}
	l := &l2Transport{c: c, sc: sc, src: ifi.HardwareAddr}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		buf, oob := make([]byte, 1600), make([]byte, 128)
		for {
			n, rx, err := udpio.ReadStamped(rc, buf, oob)
			if err != nil {
				return // closed
			}
			var f ethernet.Frame
			if f.UnmarshalBinary(buf[:n]) != nil || f.EtherType != Ethertype {
				continue
			}
			if string(f.Source) == string(ifi.HardwareAddr) {
				continue // our own frame, looped back by the packet socket
			}
			// No Delay_Req fast path here: Annex E replies are multicast
			// and few (no unicast), so the port answers them itself.
			forward(o.Messages, f.Payload, rx, time.Time{}, netip.AddrPort{}, true)
		}
	}()
	return l, nil
}
