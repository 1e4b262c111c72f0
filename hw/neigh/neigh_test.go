package neigh

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// neighMsg builds an RTM_NEWNEIGH/RTM_DELNEIGH message as the kernel
// sends it: nlmsghdr, ndmsg, NDA_DST.
func neighMsg(typ uint16, ifindex int, state uint16, dst string) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofNdMsg+8)
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	m := b[unix.NLMSG_HDRLEN:]
	m[0] = unix.AF_INET
	binary.NativeEndian.PutUint32(m[4:], uint32(ifindex))
	binary.NativeEndian.PutUint16(m[8:], state)
	a := m[unix.SizeofNdMsg:]
	binary.NativeEndian.PutUint16(a, 8)
	binary.NativeEndian.PutUint16(a[2:], unix.NDA_DST)
	ip := netip.MustParseAddr(dst).As4()
	copy(a[4:], ip[:])
	return b
}

func TestGate(t *testing.T) {
	g := NewGate(3, []netip.Prefix{netip.MustParsePrefix("10.77.0.0/16")})
	sec := int64(time.Second)
	now := 100 * sec
	// A client that answered ARP, one on another interface, one that is
	// still being resolved.
	g.Apply(append(append(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_REACHABLE, "10.77.0.3"),
		neighMsg(unix.RTM_NEWNEIGH, 4, unix.NUD_REACHABLE, "10.77.0.9")...),
		neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_INCOMPLETE, "10.77.200.1")...), now)
	if g.Known() != 1 {
		t.Fatalf("known %d", g.Known())
	}
	for i := 0; i < 1000; i++ {
		if g.CheckAt(netip.MustParseAddr("10.77.0.3"), now) != Allow {
			t.Fatal("a known client was refused")
		}
		if g.CheckAt(netip.MustParseAddr("192.0.2.7"), now) != Allow {
			t.Fatal("an off-link client (via the router) was refused")
		}
	}
	// Strangers: the burst, then the rate.
	allowed := 0
	for i := 0; i < 1000; i++ {
		if g.CheckAt(netip.AddrFrom4([4]byte{10, 77, 100 + byte(i/250), byte(i)}), now) == Allow {
			allowed++
		}
	}
	if allowed != StrangerBurst {
		t.Errorf("%d strangers at once, burst %d", allowed, StrangerBurst)
	}
	allowed = 0
	for i := 0; i < 10000; i++ {
		if g.CheckAt(netip.AddrFrom4([4]byte{10, 77, 150 + byte(i/250), byte(i)}), now+int64(i)*sec/1000) == Allow {
			allowed++
		}
	}
	if allowed < 9*StrangerRate || allowed > 11*StrangerRate {
		t.Errorf("%d strangers in 10 s, rate %d/s", allowed, StrangerRate)
	}
	// An entry the kernel collected stays known for an hour.
	g.Apply(neighMsg(unix.RTM_DELNEIGH, 3, unix.NUD_STALE, "10.77.0.3"), now)
	g.credit = 0
	if g.CheckAt(netip.MustParseAddr("10.77.0.3"), now+sec) != Allow {
		t.Error("a client whose entry was collected a second ago was refused")
	}
	g.credit, g.creditAt = 0, now+int64(2*Remember)
	if g.CheckAt(netip.MustParseAddr("10.77.0.3"), now+int64(2*Remember)) != Unresolved {
		t.Error("remembered for ever")
	}
	if g.Refused.Load() == 0 {
		t.Error("refusals not counted")
	}
}

// Forged addresses never enter the table: only entries that became valid
// do, and the table stays bounded.
func TestGateBounded(t *testing.T) {
	g := NewGate(1, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	for i := 0; i < 3*maxKnown; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		g.Apply(neighMsg(unix.RTM_NEWNEIGH, 1, unix.NUD_INCOMPLETE, a), int64(i))
		g.Apply(neighMsg(unix.RTM_NEWNEIGH, 1, unix.NUD_FAILED, a), int64(i))
	}
	if g.Known() != 0 {
		t.Errorf("%d unresolved addresses kept", g.Known())
	}
	for i := 0; i < maxKnown+500; i++ {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		g.Apply(neighMsg(unix.RTM_NEWNEIGH, 1, unix.NUD_REACHABLE, a), int64(i))
	}
	if g.Known() > maxKnown {
		t.Errorf("%d addresses kept, bound %d", g.Known(), maxKnown)
	}
}

func FuzzApply(f *testing.F) {
	f.Add(neighMsg(unix.RTM_NEWNEIGH, 1, unix.NUD_REACHABLE, "10.0.0.1"))
	f.Add(neighMsg(unix.RTM_DELNEIGH, 1, unix.NUD_STALE, "10.0.0.1")[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		g := NewGate(1, nil)
		g.Apply(b, 0)
	})
}
