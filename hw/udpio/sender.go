package udpio

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Sender is a send-only socket that Go's poller never sees, for the one
// locked thread that sends Syncs and reads their transmit timestamps.
//
// Why not a net.UDPConn: every socket of the net package is registered
// with the runtime's epoll instance, and a software transmit timestamp
// queued on the error queue is an EPOLLERR event on it. The kernel raises
// it inside the driver's transmit routine, after taking the timestamp and
// before handing the frame on: when a runtime thread is parked in
// epoll_wait on the other CPU, waking it costs an inter-processor
// interrupt in the middle of the transmit path, transit after t1 that the
// slave reads as offset. A socket outside the poller has no waiter: the
// error report wakes nobody. (The measurement: docs/hardware.md,
// "Software timestamps".)
type Sender struct {
	mu     sync.Mutex
	fd     int
	oob    []byte
	to     unix.Sockaddr // AF_PACKET: the group address; nil when connected
	closed bool
}

// OpenUDPSender opens a UDP socket with o's options (Connect is required:
// Write has no address), outside Go's poller.
func OpenUDPSender(o Options) (*Sender, error) {
	if !o.Connect.IsValid() {
		return nil, fmt.Errorf("udpio: a sender needs a destination")
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	s := &Sender{fd: fd, oob: make([]byte, oobSize)}
	fail := func(what string, err error) (*Sender, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := sockopts(o, fd); err != nil {
		return fail("options", err)
	}
	// IP_RECVERR: without it the kernel reports a send it dropped for
	// want of a neighbour entry (ENOBUFS) as a success, and a Sync lost
	// that way looked sent. Nothing else comes to a multicast sender's
	// error queue but its own transmit timestamps.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVERR, 1); err != nil {
		return fail("IP_RECVERR", err)
	}
	if o.Interface != "" {
		ifi, err := net.InterfaceByName(o.Interface)
		if err != nil {
			return fail("interface", err)
		}
		if err := multicastSendOpts(fd, ifi.Index, o.Loopback); err != nil {
			return fail("multicast", err)
		}
	}
	local := &unix.SockaddrInet4{Port: o.Port}
	if o.Addr.IsValid() {
		local.Addr = o.Addr.As4()
	}
	if err := unix.Bind(fd, local); err != nil {
		return fail(fmt.Sprintf("bind port %d", o.Port), err)
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(o.Connect.Port()), Addr: o.Connect.Addr().As4()}); err != nil {
		return fail(fmt.Sprintf("connect %s", o.Connect), err)
	}
	return s, nil
}

// OpenPacketSender opens an AF_PACKET socket on ifname that sends whole
// Ethernet frames to dst with the given ethertype and receives nothing
// (protocol 0 is never bound), outside Go's poller.
func OpenPacketSender(ifname string, ethertype uint16, dst net.HardwareAddr, tx Stamps) (*Sender, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := stampOpts(fd, NoStamps, tx); err != nil {
		unix.Close(fd)
		return nil, err
	}
	to := &unix.SockaddrLinklayer{Protocol: htons(ethertype), Ifindex: ifi.Index, Halen: uint8(len(dst))}
	copy(to.Addr[:], dst)
	return &Sender{fd: fd, oob: make([]byte, oobSize), to: to}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// multicastSendOpts: the interface multicast leaves by, TTL 1 (PTP and
// the local NTP network stay on the link), and whether our own multicast
// comes back to us (needed on "lo" only).
func multicastSendOpts(fd, ifindex int, loop bool) error {
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifindex)}); err != nil {
		return fmt.Errorf("IP_MULTICAST_IF: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1); err != nil {
		return fmt.Errorf("IP_MULTICAST_TTL: %w", err)
	}
	l := 0
	if loop {
		l = 1
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, l); err != nil {
		return fmt.Errorf("IP_MULTICAST_LOOP: %w", err)
	}
	return nil
}

// Write sends one datagram (or, on a packet sender, one frame). It never
// blocks for long: a full send buffer is an error, not a wait.
func (s *Sender) Write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	if s.to != nil {
		return unix.Sendto(s.fd, b, unix.MSG_DONTWAIT, s.to)
	}
	_, err := unix.SendmsgN(s.fd, b, nil, nil, unix.MSG_DONTWAIT)
	return err
}

// TxStamp reads the transmit timestamp of the datagram just sent, waiting
// up to timeout (see Conn.TxStamp).
func (s *Sender) TxStamp(timeout time.Duration) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return time.Time{}, net.ErrClosed
	}
	return readTxStampFD(uintptr(s.fd), s.oob, timeout)
}

// Close closes the socket; later calls fail with net.ErrClosed.
func (s *Sender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return unix.Close(s.fd)
}

// LocalAddr is the bound address of a UDP sender.
func (s *Sender) LocalAddr() (netip.AddrPort, error) {
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if a, ok := sa.(*unix.SockaddrInet4); ok {
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), nil
	}
	return netip.AddrPort{}, fmt.Errorf("udpio: not an IPv4 socket")
}
