// Package udpio is the UDP socket layer of the PTP and NTP servers: batched
// receive and send (recvmmsg/sendmmsg) with kernel receive timestamps,
// transmit timestamps from the error queue, SO_REUSEPORT workers, and
// multicast membership on one interface. Reads and writes allocate nothing
// per datagram, and go through Go's poller so they never block shutdown.
package udpio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"github.com/facebook/time/timestamp"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

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

// mmsghdr is struct mmsghdr (linux/socket.h) on 64-bit.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// MaxBatch is how many datagrams one ReadBatch/WriteBatch moves.
const MaxBatch = 64

// MaxDatagram bounds a received datagram (PTP and NTP fit easily; a bigger
// one is truncated and dropped by the decoder).
const MaxDatagram = 1500

const oobSize = 128

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

// stampOpts asks for the receive and transmit timestamps of any socket
// (UDP or AF_PACKET).
func stampOpts(fd int, rx, tx Stamps) error {
	return setStampFlags(fd, stampFlags(Options{RXStamps: rx, TXStamps: tx}))
}

// stampFlags is the one SO_TIMESTAMPING value for a socket's options (a
// second setsockopt would replace the first).
func stampFlags(o Options) int {
	flags := 0
	switch o.RXStamps {
	case Software:
		flags |= unix.SOF_TIMESTAMPING_RX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE
	case Hardware:
		flags |= unix.SOF_TIMESTAMPING_RX_HARDWARE | unix.SOF_TIMESTAMPING_RAW_HARDWARE
		if o.RXSoftwareToo {
			flags |= unix.SOF_TIMESTAMPING_RX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE
		}
	}
	switch o.TXStamps {
	case Software:
		flags |= unix.SOF_TIMESTAMPING_TX_SOFTWARE | unix.SOF_TIMESTAMPING_SOFTWARE | unix.SOF_TIMESTAMPING_OPT_TSONLY
	case Hardware:
		flags |= unix.SOF_TIMESTAMPING_TX_HARDWARE | unix.SOF_TIMESTAMPING_RAW_HARDWARE | unix.SOF_TIMESTAMPING_OPT_TSONLY
	}
	if o.TXStampsPerPacket {
		// Generation is asked per datagram (Out.TxStamp); reporting is set
		// here. Without OPT_TSONLY the error queue hands back the datagram
		// with its stamp, so each stamp names its own reply. A counter
		// (OPT_ID) cannot: a send that fails after the kernel drew a key,
		// or before, is indistinguishable here, and one miscount gave every
		// later reply another reply's transmit time.
		flags |= unix.SOF_TIMESTAMPING_SOFTWARE
	}
	return flags
}

func setStampFlags(fd, flags int) error {
	if flags == 0 {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING_NEW, flags); err != nil {
		if err2 := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPING, flags); err2 != nil {
			return fmt.Errorf("SO_TIMESTAMPING: %w", err)
		}
	}
	return nil
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

// Msg is one received datagram. Data points into the Conn's buffers and is
// valid until the next ReadBatch.
type Msg struct {
	Data []byte
	From netip.AddrPort
	// RX is the kernel's receive timestamp, zero when none came: right
	// after a socket asks for software stamps the kernel may still be
	// switching them on (a deferred static key), so callers fall back to
	// the time the read returned.
	RX time.Time
	// RXSoft is the software receive timestamp (CLOCK_REALTIME) when the
	// socket asked for it besides hardware ones (RXSoftwareToo).
	RXSoft time.Time
	// Dst is the local address the datagram reached (PacketInfo): the
	// kernel's ipi_spec_dst, the right source for a reply even when the
	// request went to a broadcast or multicast address. Zero without.
	Dst netip.Addr
}

// The datagram system calls below are all non-blocking (MSG_DONTWAIT;
// waiting is the poller's job), so they are made raw, without telling the
// scheduler a blocking call started. Through entersyscall, every call kept
// the runtime's sysmon thread polling every 20 µs to retake the processor
// in case the call blocked: under NTP load that polling and its context
// switches were a tenth of sitegm's CPU (perf), and its timer interrupts
// land on the CPU sending a PTP Sync.
func (c *Conn) doRead(fd uintptr) bool {
	for i := range c.hdrs {
		c.iovs[i].Base = &c.bufs[i][0]
		c.iovs[i].SetLen(MaxDatagram)
		h := &c.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&c.names[i]))
		h.Namelen = unix.SizeofSockaddrInet4
		h.Iov = &c.iovs[i]
		h.Iovlen = 1
		h.Control = &c.oobs[i][0]
		h.SetControllen(oobSize)
		h.Flags = 0
	}
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.hdrs[0])), uintptr(len(c.hdrs)),
		unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false // wait in the poller
	}
	c.n, c.errno = int(r), e
	return true
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet4) netip.AddrPort {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port)
}

// ReadBatch waits for datagrams and fills ms (up to MaxBatch).
func (c *Conn) ReadBatch(ms []Msg) (int, error) {
	if err := c.rc.Read(c.read); err != nil {
		return 0, err
	}
	if c.errno != 0 {
		if c.errno == unix.EINTR {
			return 0, nil
		}
		return 0, c.errno
	}
	n := min(c.n, len(ms))
	for i := 0; i < n; i++ {
		h := &c.hdrs[i]
		ms[i].Data = c.bufs[i][:h.len]
		ms[i].From = sockaddrToAddrPort(&c.names[i])
		ms[i].RX, ms[i].RXSoft, ms[i].Dst = time.Time{}, time.Time{}, netip.Addr{}
		if h.hdr.Controllen > 0 {
			sw, hw, dst := parseOOB(c.oobs[i][:h.hdr.Controllen])
			ms[i].Dst = dst
			switch c.rx {
			case Hardware:
				ms[i].RX = hw
				if c.rxSoft {
					ms[i].RXSoft = sw
				}
			case Software:
				ms[i].RX = sw
			}
		}
	}
	return n, nil
}

// Out is one datagram to send.
type Out struct {
	Data []byte
	To   netip.AddrPort
	// TxStamp asks for this datagram's software transmit timestamp (a
	// socket opened with TXStampsPerPacket).
	TxStamp bool
	// Src, when valid, is the source address (IP_PKTINFO ipi_spec_dst):
	// the Dst of the request this answers.
	Src netip.Addr
}

func fillSockaddr(sa *unix.RawSockaddrInet4, ap netip.AddrPort) {
	sa.Family = unix.AF_INET
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	sa.Addr = ap.Addr().As4()
}

// doWrite makes one sendmmsg of the prepared headers from c.from on. It
// never waits: a full send buffer is reported, not waited for (see
// WriteBatch).
func (c *Conn) doWrite(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&c.shdrs[c.from])), uintptr(c.sn-c.from), unix.MSG_DONTWAIT, 0, 0)
	c.sent, c.errno = int(r), e
	return true
}

// WriteResult says what became of a batch.
type WriteResult struct {
	Sent int
	// Full counts datagrams not sent because the socket's send buffer was
	// full (EAGAIN, ENOBUFS): the batch stops there rather than wait.
	Full int
	// Failed counts datagrams the kernel refused one by one (EINVAL for
	// port 0, EACCES for a broadcast address, a route missing...): each
	// costs itself only, the rest of the batch still goes.
	Failed int
	// Err is the last refusal's error, for the log.
	Err error
}

// Add accumulates another result.
func (r *WriteResult) Add(o WriteResult) {
	r.Sent += o.Sent
	r.Full += o.Full
	r.Failed += o.Failed
	if o.Err != nil {
		r.Err = o.Err
	}
}

// congested: the send buffer (or the device queue behind it) is full.
func congested(e syscall.Errno) bool { return e == unix.EAGAIN || e == unix.ENOBUFS }

// WriteBatch sends the datagrams in as few system calls as it can and
// never waits. Whoever sent the requests chooses these destinations: one
// that the kernel refuses is skipped and the rest go on; a full send
// buffer (replies queued behind address resolution, a saturated link)
// drops what is left of the batch, counted, instead of blocking the
// caller until the kernel frees room.
func (c *Conn) WriteBatch(outs []Out) WriteResult {
	var res WriteResult
	for len(outs) > 0 {
		n := min(len(outs), MaxBatch)
		for i := 0; i < n; i++ {
			c.prepare(i, &outs[i])
		}
		c.sn = n
		for c.from = 0; c.from < n; {
			if err := c.rc.Write(c.write); err != nil {
				res.Failed += n - c.from
				res.Err = err
				return res
			}
			switch {
			case c.errno == 0:
				res.Sent += c.sent
				c.from += c.sent
			case congested(c.errno):
				res.Full += len(outs) - c.from
				return res
			default:
				// The datagram at c.from was refused; the call sent
				// nothing (sendmmsg reports an error only then).
				res.Failed++
				res.Err = c.errno
				c.from++
			}
		}
		outs = outs[n:]
	}
	return res
}

// prepare fills send header i for o (a zero To sends to the connected
// peer).
func (c *Conn) prepare(i int, o *Out) {
	if len(o.Data) == 0 {
		o.Data = zeroByte[:]
	}
	c.siovs[i].Base = &o.Data[0]
	c.siovs[i].SetLen(len(o.Data))
	h := &c.shdrs[i].hdr
	h.Name, h.Namelen = nil, 0
	if o.To.IsValid() {
		fillSockaddr(&c.snames[i], o.To)
		h.Name = (*byte)(unsafe.Pointer(&c.snames[i]))
		h.Namelen = unix.SizeofSockaddrInet4
	}
	h.Iov = &c.siovs[i]
	h.Iovlen = 1
	h.Control = nil
	h.Controllen = 0
	oob, off := c.soobs[i], 0
	if o.TxStamp {
		// A per-datagram SO_TIMESTAMPING control message (Linux 4.13+:
		// "timestamping flags via cmsg").
		off += copy(oob, c.txcmsg)
	}
	if o.Src.Is4() {
		// struct in_pktinfo (ip(7)): ifindex 0 lets the route pick the
		// device; ipi_spec_dst sets the source address.
		ch := (*unix.Cmsghdr)(unsafe.Pointer(&oob[off]))
		ch.Level, ch.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		ch.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[off+unix.CmsgLen(0)]))
		*pi = unix.Inet4Pktinfo{Spec_dst: o.Src.As4()}
		off += unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	if off > 0 {
		h.Control = &oob[0]
		h.SetControllen(off)
	}
}

// zeroByte gives an empty datagram an address to point at.
var zeroByte [1]byte

// WaitWritable waits until the socket has room to send (for a load
// generator that wants to go as fast as the socket allows; servers never
// wait).
func (c *Conn) WaitWritable() error {
	return c.rc.Write(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, _ := unix.Poll(pfd, 0)
		return n > 0
	})
}

// WriteTo sends one datagram without waiting (see WriteBatch).
func (c *Conn) WriteTo(b []byte, to netip.AddrPort) error {
	r := c.WriteBatch([]Out{{Data: b, To: to}})
	switch {
	case r.Sent == 1:
		return nil
	case r.Full > 0:
		return unix.EAGAIN
	}
	return r.Err
}

// Write sends one datagram on a connected socket without waiting.
func (c *Conn) Write(b []byte) error { return c.WriteTo(b, netip.AddrPort{}) }

// ErrNoTxStamp says the kernel gave no transmit timestamp in time.
var ErrNoTxStamp = errors.New("no transmit timestamp")

// TxStamp reads the transmit timestamp of the datagram just sent from the
// socket's error queue (SOF_TIMESTAMPING_OPT_TSONLY: the timestamp alone).
// Call it after each datagram that needs one, before sending the next: igb
// and friends keep one timestamp in flight.
func (c *Conn) TxStamp(timeout time.Duration) (time.Time, error) {
	return readTxStamp(c.rc, c.toob, timeout)
}

// TxStampOf reads the transmit timestamp of the datagram just sent on any
// socket SetStamps asked for them (a client's connected UDP socket).
func TxStampOf(rc syscall.RawConn, timeout time.Duration) (time.Time, error) {
	return readTxStamp(rc, make([]byte, 512), timeout)
}

// readTxStamp reads a transmit timestamp from any socket's error queue
// (UDP, AF_PACKET), waiting up to timeout.
func readTxStamp(rc syscall.RawConn, oob []byte, timeout time.Duration) (time.Time, error) {
	var got time.Time
	var gerr error
	if err := rc.Control(func(fd uintptr) { got, gerr = readTxStampFD(fd, oob, timeout) }); err != nil {
		return time.Time{}, err
	}
	return got, gerr
}

// readTxStampFD is readTxStamp on a descriptor: poll(2) on the error
// queue, not the runtime's poller.
func readTxStampFD(fd uintptr, oob []byte, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		var msg unix.Msghdr
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
		_, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if e == 0 {
			if t, err := timestamp.ReadRXTimestamp(oob, int(msg.Controllen)); err == nil {
				return t, nil
			}
			continue
		}
		if e != unix.EAGAIN {
			return time.Time{}, e
		}
		left := time.Until(deadline)
		if left <= 0 {
			return time.Time{}, ErrNoTxStamp
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLERR}}
		unix.Poll(pfd, int(max(1, left.Milliseconds())))
	}
}

// SetStamps sets SO_TIMESTAMPING on any socket (AF_PACKET for PTP over
// Ethernet).
func SetStamps(rc syscall.RawConn, rx, tx Stamps) error {
	var serr error
	err := rc.Control(func(fd uintptr) { serr = stampOpts(int(fd), rx, tx) })
	if err != nil {
		return err
	}
	return serr
}

// ReadStamped reads one datagram with its receive timestamp from any
// socket (AF_PACKET) through the poller.
func ReadStamped(rc syscall.RawConn, buf, oob []byte) (n int, rx time.Time, err error) {
	var errno syscall.Errno
	rerr := rc.Read(func(fd uintptr) bool {
		var msg unix.Msghdr
		var iov unix.Iovec
		iov.Base = &buf[0]
		iov.SetLen(len(buf))
		msg.Iov = &iov
		msg.Iovlen = 1
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
		r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT)
		if e == unix.EAGAIN {
			return false
		}
		n, errno = int(r), e
		if e == 0 {
			rx, _ = timestamp.ReadRXTimestamp(oob, int(msg.Controllen))
		}
		return true
	})
	if rerr != nil {
		return 0, time.Time{}, rerr
	}
	if errno != 0 {
		return 0, time.Time{}, errno
	}
	return n, rx, nil
}

// parseOOB walks a datagram's control messages without allocating: for
// SCM_TIMESTAMPING (old or _NEW: three timespecs, software first, hardware
// third; on 64-bit both layouts are 16-byte timespecs; a zero timespec is
// a missing stamp) and for IP_PKTINFO's local address.
func parseOOB(oob []byte) (sw, hw time.Time, dst netip.Addr) {
	const hdrLen = unix.SizeofCmsghdr
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			return
		}
		if h.Level == unix.SOL_SOCKET && (h.Type == unix.SO_TIMESTAMPING || h.Type == unix.SO_TIMESTAMPING_NEW) && l >= hdrLen+48 {
			d := oob[hdrLen:l]
			ts := func(b []byte) time.Time {
				sec := int64(binary.NativeEndian.Uint64(b))
				nsec := int64(binary.NativeEndian.Uint64(b[8:]))
				if sec == 0 && nsec == 0 {
					return time.Time{}
				}
				return time.Unix(sec, nsec)
			}
			sw, hw = ts(d[0:16]), ts(d[32:48])
		}
		if h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && l >= hdrLen+unix.SizeofInet4Pktinfo {
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&oob[hdrLen]))
			dst = netip.AddrFrom4(pi.Spec_dst)
		}
		l = (l + 7) &^ 7
		if l > len(oob) {
			return
		}
		oob = oob[l:]
	}
	return
}

// JoinGroup joins one more multicast group on the socket's interface.
func (c *Conn) JoinGroup(g netip.Addr) error {
	if err := c.pc.JoinGroup(c.ifi, &net.UDPAddr{IP: g.AsSlice()}); err != nil {
		return fmt.Errorf("join %s: %w", g, err)
	}
	return nil
}

// ReadTxStamps drains the socket's error queue without waiting and calls
// f with each software transmit timestamp and the UDP payload of the
// datagram it stamps (valid during the call). It returns how many it read
// and allocates nothing.
func (c *Conn) ReadTxStamps(f func(payload []byte, t time.Time)) int {
	n := 0
	c.rc.Control(func(fd uintptr) {
		for {
			var msg unix.Msghdr
			var iov unix.Iovec
			iov.Base = &c.ebuf[0]
			iov.SetLen(len(c.ebuf))
			msg.Iov, msg.Iovlen = &iov, 1
			msg.Control = &c.eoobs[0]
			msg.SetControllen(len(c.eoobs))
			r, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if e != 0 {
				return
			}
			sw, _, _ := parseOOB(c.eoobs[:msg.Controllen])
			if _, ok := parseErrKey(c.eoobs[:msg.Controllen]); !ok || sw.IsZero() {
				continue
			}
			if p, ok := UDPPayload(c.ebuf[:min(int(r), len(c.ebuf))]); ok {
				f(p, sw)
				n++
			}
		}
	})
	return n
}

// UDPPayload finds the UDP payload in a datagram as the error queue hands
// it back with its transmit timestamp: the frame from its link-layer
// header (Ethernet, with or without an 802.1Q tag) or from its IPv4
// header. ok is false for anything else, or a truncated packet.
func UDPPayload(b []byte) (payload []byte, ok bool) {
	off := -1
	switch {
	case len(b) >= 1 && b[0]>>4 == 4:
		off = 0 // no link-layer header (tun, ipip)
	case len(b) >= 14:
		et, o := binary.BigEndian.Uint16(b[12:]), 14
		for (et == 0x8100 || et == 0x88a8) && len(b) >= o+4 {
			et, o = binary.BigEndian.Uint16(b[o+2:]), o+4
		}
		if et == 0x0800 {
			off = o
		}
	}
	if off < 0 || len(b) < off+20 || b[off]>>4 != 4 || b[off+9] != unix.IPPROTO_UDP {
		return nil, false
	}
	ihl := int(b[off]&0x0f) * 4
	u := off + ihl
	if ihl < 20 || len(b) < u+8 {
		return nil, false
	}
	ulen := int(binary.BigEndian.Uint16(b[u+4:]))
	if ulen < 8 || len(b) < u+ulen {
		return nil, false
	}
	return b[u+8 : u+ulen], true
}

// parseErrKey finds IP_RECVERR's struct sock_extended_err and returns its
// ee_data: the timestamp key under SOF_TIMESTAMPING_OPT_ID.
func parseErrKey(oob []byte) (uint32, bool) {
	const hdrLen = unix.SizeofCmsghdr
	for len(oob) >= hdrLen {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_IP && h.Type == unix.IP_RECVERR && l >= hdrLen+int(unsafe.Sizeof(unix.SockExtendedErr{})) {
			e := (*unix.SockExtendedErr)(unsafe.Pointer(&oob[hdrLen]))
			if e.Origin == unix.SO_EE_ORIGIN_TIMESTAMPING {
				return e.Data, true
			}
		}
		l = (l + 7) &^ 7
		if l > len(oob) {
			return 0, false
		}
		oob = oob[l:]
	}
	return 0, false
}

// Refusal names why a reply is not sent to a destination the request's
// sender chose; the empty string accepts it.
type Refusal string

// Reasons a reply destination is refused.
const (
	RefuseNone       Refusal = ""
	RefusePortZero   Refusal = "port 0"      // no socket can be there (and sendmsg says EINVAL)
	RefuseNotUnicast Refusal = "not unicast" // 0.0.0.0, multicast, broadcast, reserved: a forged source
	RefuseLoopback   Refusal = "loopback"    // 127/8 off the loopback interface: a forged source
)

// CheckReplyTo decides whether a reply may go to the address and port a
// request came from. Every field of an IPv4 header is the sender's to
// choose: a request "from" a multicast or broadcast address asks for an
// amplified reply to the whole link, one from port 0 for a reply the
// kernel refuses. loopbackOK is set on the loopback interface itself.
func CheckReplyTo(to netip.AddrPort, loopbackOK bool) Refusal {
	a := to.Addr()
	switch {
	case to.Port() == 0:
		return RefusePortZero
	case !a.Is4(), a.IsUnspecified(), a.IsMulticast(), a.As4()[0] >= 240:
		// 240/4 is reserved (RFC 1112) and holds 255.255.255.255.
		return RefuseNotUnicast
	case a.IsLoopback() && !loopbackOK:
		return RefuseLoopback
	}
	return RefuseNone
}
