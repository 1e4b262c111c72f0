package udpio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"github.com/facebook/time/timestamp"
	"golang.org/x/sys/unix"
)

// Kernel timestamps: which a socket asks for, the receive stamps in a
// datagram's control messages, and the transmit stamps of the error
// queue.

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
