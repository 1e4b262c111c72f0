package itest

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"sitegm/hw/nic"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Raw is a raw IPv4 socket inside a lab namespace that sends whole IPv4
// packets with any source address and port: an attacker (or a broken
// device) on the lab's LAN.
type Raw struct{ fd int }

// RawSocket opens a raw socket in h's namespace, closed when the test
// ends.
func (h *Host) RawSocket(t testing.TB) *Raw {
	t.Helper()
	var fd int
	err := h.InNS(func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		t.Fatalf("raw socket in %s: %v", h.NS, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &Raw{fd: fd}
}

// SendUDP sends one UDP datagram from src to dst, both chosen freely (the
// UDP checksum is left out, which IPv4 allows).
func (r *Raw) SendUDP(src, dst netip.AddrPort, payload []byte) error {
	b := make([]byte, 28+len(payload))
	h := ipv4.Header{Version: 4, Len: 20, TotalLen: len(b), TTL: 64, Protocol: unix.IPPROTO_UDP,
		Src: src.Addr().AsSlice(), Dst: dst.Addr().AsSlice()}
	hb, err := h.Marshal()
	if err != nil {
		return err
	}
	// IPPROTO_RAW implies IP_HDRINCL: Linux fills in the header checksum
	// (and the ID when it is zero) and takes every field in network order
	// (x/net writes the total length in host order on some BSDs only).
	binary.BigEndian.PutUint16(hb[2:], uint16(len(b)))
	copy(b, hb)
	binary.BigEndian.PutUint16(b[20:], src.Port())
	binary.BigEndian.PutUint16(b[22:], dst.Port())
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(payload)))
	copy(b[28:], payload)
	return unix.Sendto(r.fd, b, 0, &unix.SockaddrInet4{Addr: dst.Addr().As4()})
}

// Flood sends rate packets a second for d, paced on the millisecond; next
// returns packet i's source, destination and payload. It returns how many
// were sent.
func (r *Raw) Flood(ctx context.Context, rate int, d time.Duration, next func(i int) (src, dst netip.AddrPort, payload []byte)) int {
	start := time.Now()
	sent, acc := 0, 0.0
	for tick := 1; time.Since(start) < d && ctx.Err() == nil; tick++ {
		acc += float64(rate) / 1000
		for ; acc >= 1; acc-- {
			src, dst, p := next(sent)
			if r.SendUDP(src, dst, p) == nil {
				sent++
			}
		}
		if w := time.Until(start.Add(time.Duration(tick) * time.Millisecond)); w > 0 {
			time.Sleep(w)
		}
	}
	return sent
}

// OnLinkNowhere is the i-th address of 10.A.B.0/16 beyond .100.0 that no
// host of a lab has: a forged source whose replies wait on ARP.
func OnLinkNowhere(prefix netip.Prefix, i int) netip.Addr {
	a := prefix.Addr().As4()
	a[2] = byte(100 + (i/250)%150)
	a[3] = byte(1 + i%250)
	return netip.AddrFrom4(a)
}

// JoinGroup makes a UDP socket a member of a multicast group on the
// namespace's eth0.
func JoinGroup(t testing.TB, c *net.UDPConn, group string) {
	t.Helper()
	ifi, err := interfaceIn(c, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ipv4.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: net.ParseIP(group)}); err != nil {
		t.Fatalf("join %s: %v", group, err)
	}
}

// interfaceIn finds an interface by name in the namespace of c (the
// interface's index is what joining needs; eth0's differs per namespace).
func interfaceIn(c *net.UDPConn, name string) (*net.Interface, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var ifi *net.Interface
	var ierr error
	rc.Control(func(fd uintptr) {
		var idx int
		idx, ierr = nic.IndexIn(int(fd), name)
		if ierr == nil {
			ifi = &net.Interface{Index: idx, Name: name}
		}
	})
	return ifi, ierr
}

// AddAddresses gives h's eth0 n more addresses in prefix, from 10.A.third.1
// on (an attacker with many real sources: each answers ARP).
func (h *Host) AddAddresses(t testing.TB, prefix netip.Prefix, third byte, n int) []netip.Addr {
	t.Helper()
	var cmds strings.Builder
	var out []netip.Addr
	for i := 0; i < n; i++ {
		a := prefix.Addr().As4()
		a[2], a[3] = third+byte(i/250), byte(1+i%250)
		out = append(out, netip.AddrFrom4(a))
		fmt.Fprintf(&cmds, "addr add %s/%d dev eth0\n", netip.AddrFrom4(a), prefix.Bits())
	}
	cmd := exec.Command("ip", "-n", h.NS, "-batch", "-")
	cmd.Stdin = strings.NewReader(cmds.String())
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v\n%s", err, b)
	}
	return out
}
