package udpio

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched receive and send (recvmmsg/sendmmsg): no allocation per
// datagram, and no send that waits.

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
