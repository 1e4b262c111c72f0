// Package udpio is the UDP socket layer of the PTP and NTP servers: batched
// receive and send (recvmmsg/sendmmsg) with kernel receive timestamps,
// transmit timestamps from the error queue, SO_REUSEPORT workers, and
// multicast membership on one interface. Reads and writes allocate nothing
// per datagram, and go through Go's poller so they never block shutdown.
package udpio

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// conn.go opens a socket and sets it up: options, timestamping, the
// interface, multicast groups. batch.go moves datagrams, stamps.go reads
// timestamps, refuse.go decides where a reply may not go.

// Stamps is which kernel timestamps a socket asks for.
type Stamps uint8

// Timestamping modes.
const (
	NoStamps Stamps = iota
	Software        // SOF_TIMESTAMPING_RX/TX_SOFTWARE: CLOCK_REALTIME at the driver
	Hardware        // SOF_TIMESTAMPING_RAW_HARDWARE: the NIC's PHC
)

func (s Stamps) String() string { return [...]string{"none", "software", "hardware"}[s] }

// Options of one socket.
type Options struct {
	// Interface binds the socket to a device and names the multicast
	// interface; empty for none.
	Interface string
	// Addr is the local address to bind (zero: any) and Port the port.
	Addr netip.Addr
	Port int
	// ReusePort lets several sockets share the port; the kernel spreads
	// unicast datagrams over them by flow.
	ReusePort bool
	// ReuseAddr shares the port with programs that use SO_REUSEADDR
	// (ptp4l) for multicast.
	ReuseAddr bool
	// Group joins a multicast group on Interface. A socket without a group
	// receives no multicast at all (IP_MULTICAST_ALL off), so that only
	// one socket of a reuseport group answers multicast.
	Group netip.Addr
	// Loopback keeps our own multicast (needed on "lo").
	Loopback bool
	DSCP     int
	// RX and TX timestamps.
	RXStamps, TXStamps Stamps
	// TXStampsPerPacket prepares software transmit timestamps asked for
	// one datagram at a time (Out.TxStamp), read back with ReadTxStamps
	// together with the datagram they belong to.
	TXStampsPerPacket bool
	// RXSoftwareToo also asks for software receive timestamps when RXStamps
	// is Hardware (Msg.RXSoft): for packets the NIC's filter does not stamp
	// (PTPv1 under a v2-only filter).
	RXSoftwareToo bool
	// RecvBuffer sets SO_RCVBUF (0: the kernel's default).
	RecvBuffer int
	// SendBuffer sets the send buffer (SO_SNDBUFFORCE where allowed, else
	// SO_SNDBUF up to net.core.wmem_max; 0: the kernel's default). A reply
	// to an on-link address that does not answer ARP waits in the kernel's
	// neighbour queue, charged to this buffer, for the three seconds
	// address resolution takes to fail: a socket that answers anyone needs
	// room for a flood of such replies besides its real clients'.
	SendBuffer int
	// PacketInfo reports each datagram's local address (IP_PKTINFO,
	// Msg.Dst) so that a reply can leave from the address the request was
	// sent to (Out.Src): an interface with several addresses (a service
	// address next to the engineer's, a renumbered VLAN) would otherwise
	// answer from its primary address, which clients drop.
	PacketInfo bool
	// Connect fixes the destination (connect(2)): a send-only socket in a
	// reuseport group, which then receives nothing of the group's traffic
	// (a connected UDP socket only matches datagrams from its peer).
	Connect netip.AddrPort
}

// Conn is one UDP socket.
type Conn struct {
	c   *net.UDPConn
	pc  *ipv4.PacketConn
	rc  syscall.RawConn
	ifi *net.Interface
	// batch receive state, reused
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet4
	bufs  [][]byte
	oobs  [][]byte
	n     int
	errno syscall.Errno
	read  func(fd uintptr) bool
	// batch send state
	shdrs  []mmsghdr
	siovs  []unix.Iovec
	snames []unix.RawSockaddrInet4
	soobs  [][]byte // per-datagram control: timestamp request, source address
	sn     int
	from   int // the first header the next sendmmsg sends
	write  func(fd uintptr) bool
	sent   int
	// tx timestamps
	toob   []byte
	txcmsg []byte // the per-datagram timestamp request
	eoobs  []byte // error queue control buffer
	ebuf   []byte // error queue data: the stamped datagram
	rx     Stamps
	rxSoft bool
}

func sockopts(o Options, fd int) error {
	set := func(level, opt, v int) error { return unix.SetsockoptInt(fd, level, opt, v) }
	if o.ReusePort {
		if err := set(unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fmt.Errorf("SO_REUSEPORT: %w", err)
		}
	}
	if o.ReuseAddr {
		if err := set(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("SO_REUSEADDR: %w", err)
		}
	}
	if o.Interface != "" {
		if err := unix.BindToDevice(fd, o.Interface); err != nil {
			return fmt.Errorf("SO_BINDTODEVICE %s: %w", o.Interface, err)
		}
	}
	if err := set(unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
		return fmt.Errorf("IP_MULTICAST_ALL: %w", err)
	}
	if o.DSCP > 0 {
		if err := set(unix.IPPROTO_IP, unix.IP_TOS, o.DSCP<<2); err != nil {
			return fmt.Errorf("IP_TOS: %w", err)
		}
	}
	if o.RecvBuffer > 0 {
		_ = set(unix.SOL_SOCKET, unix.SO_RCVBUF, o.RecvBuffer)
	}
	if o.SendBuffer > 0 {
		if set(unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, o.SendBuffer) != nil {
			_ = set(unix.SOL_SOCKET, unix.SO_SNDBUF, o.SendBuffer)
		}
	}
	if o.PacketInfo {
		if err := set(unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
			return fmt.Errorf("IP_PKTINFO: %w", err)
		}
	}
	return setStampFlags(fd, stampFlags(o))
}

// Listen opens a socket.
func Listen(o Options) (*Conn, error) {
	var serr error
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		if err := rc.Control(func(fd uintptr) { serr = sockopts(o, int(fd)) }); err != nil {
			return err
		}
		return serr
	}}
	addr := ""
	if o.Addr.IsValid() {
		addr = o.Addr.String()
	}
	pc, err := lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort(addr, fmt.Sprint(o.Port)))
	if err != nil {
		return nil, err
	}
	c := &Conn{c: pc.(*net.UDPConn), rx: o.RXStamps, rxSoft: o.RXSoftwareToo && o.RXStamps == Hardware}
	c.pc = ipv4.NewPacketConn(c.c)
	if c.rc, err = c.c.SyscallConn(); err != nil {
		c.c.Close()
		return nil, err
	}
	if o.Interface != "" {
		if c.ifi, err = net.InterfaceByName(o.Interface); err != nil {
			c.c.Close()
			return nil, err
		}
		var merr error
		c.rc.Control(func(fd uintptr) { merr = multicastSendOpts(int(fd), c.ifi.Index, o.Loopback) })
		if merr != nil {
			c.c.Close()
			return nil, merr
		}
	}
	if o.Connect.IsValid() {
		var sa unix.SockaddrInet4
		sa.Port, sa.Addr = int(o.Connect.Port()), o.Connect.Addr().As4()
		var cerr error
		c.rc.Control(func(fd uintptr) { cerr = unix.Connect(int(fd), &sa) })
		if cerr != nil {
			c.c.Close()
			return nil, fmt.Errorf("connect %s: %w", o.Connect, cerr)
		}
	}
	if o.Group.IsValid() {
		if err := c.pc.JoinGroup(c.ifi, &net.UDPAddr{IP: o.Group.AsSlice()}); err != nil {
			c.c.Close()
			return nil, fmt.Errorf("join %s on %s: %w", o.Group, o.Interface, err)
		}
	}
	c.setup()
	return c, nil
}

func (c *Conn) setup() {
	c.hdrs = make([]mmsghdr, MaxBatch)
	c.iovs = make([]unix.Iovec, MaxBatch)
	c.names = make([]unix.RawSockaddrInet4, MaxBatch)
	c.bufs = make([][]byte, MaxBatch)
	c.oobs = make([][]byte, MaxBatch)
	for i := range c.hdrs {
		c.bufs[i] = make([]byte, MaxDatagram)
		c.oobs[i] = make([]byte, oobSize)
	}
	c.shdrs = make([]mmsghdr, MaxBatch)
	c.siovs = make([]unix.Iovec, MaxBatch)
	c.snames = make([]unix.RawSockaddrInet4, MaxBatch)
	c.soobs = make([][]byte, MaxBatch)
	for i := range c.soobs {
		c.soobs[i] = make([]byte, unix.CmsgSpace(4)+unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	}
	c.toob = make([]byte, oobSize)
	c.txcmsg = make([]byte, unix.CmsgSpace(4))
	ch := (*unix.Cmsghdr)(unsafe.Pointer(&c.txcmsg[0]))
	ch.Level, ch.Type = unix.SOL_SOCKET, unix.SO_TIMESTAMPING
	ch.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(c.txcmsg[unix.CmsgLen(0):], unix.SOF_TIMESTAMPING_TX_SOFTWARE)
	c.eoobs = make([]byte, oobSize)
	c.ebuf = make([]byte, MaxDatagram+64)
	c.read = c.doRead
	c.write = c.doWrite
}

// Close closes the socket (unblocking a pending read).
func (c *Conn) Close() error { return c.c.Close() }

// LocalPort is the bound port.
func (c *Conn) LocalPort() int { return c.c.LocalAddr().(*net.UDPAddr).Port }

// SetReadDeadline bounds a pending ReadBatch.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// JoinGroup joins one more multicast group on the socket's interface.
func (c *Conn) JoinGroup(g netip.Addr) error {
	if err := c.pc.JoinGroup(c.ifi, &net.UDPAddr{IP: g.AsSlice()}); err != nil {
		return fmt.Errorf("join %s: %w", g, err)
	}
	return nil
}
