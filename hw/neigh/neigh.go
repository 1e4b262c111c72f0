// Package neigh keeps replies to forged sources from filling the kernel's
// neighbour (ARP) table.
//
// A reply to an address on the local link needs that address's hardware
// address: the kernel creates a neighbour entry, asks by ARP, and holds
// the reply until the answer comes or three seconds pass. A flood of
// requests forged from on-link addresses nobody has makes one such entry
// per request. The table is shared by everything on the host and bounded
// (net.ipv4.neigh.default.gc_thresh3, 1,024 entries by default): when it
// is full, no new entry can be made, and the kernel silently drops what
// needs one. That included the PTP multicast group's own entry (the
// table's forced garbage collection removes it first): Syncs and
// Announces vanished for as long as the flood lasted, while every send
// call reported success.
//
// Gate lets a reply go to an on-link address only when the kernel knows
// the address (a valid neighbour entry: it answered ARP, or ARPed us, which
// every real client does before it sends), when it knew it within the last
// hour (an entry the kernel collected between two polls of a client), or
// within a small budget for strangers (new clients, a table emptied by a
// reboot). Everything off the link goes through a router, whose entry is
// valid. Watch follows the table through netlink (RTNLGRP_NEIGH).
package neigh

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"sitegm/hw/nic"
)

// Verdict on one reply destination.
type Verdict uint8

// Verdicts.
const (
	Allow      Verdict = iota
	Unresolved         // on-link, unknown to the kernel, and the stranger budget is spent
)

// Defaults of a Gate.
const (
	// StrangerRate and StrangerBurst bound the replies a second (and at
	// once) to on-link addresses the kernel does not know: each may make
	// an entry that lives three seconds, so at most about 300 at a time
	// come from sitegm, far below any table's limit.
	StrangerRate  = 100
	StrangerBurst = 100
	// Remember is how long an address stays known after its entry went.
	Remember = time.Hour
	// maxKnown bounds the addresses remembered (only addresses that once
	// answered ARP get in: forged ones never do).
	maxKnown = 8192
)

type known struct {
	valid bool
	seen  int64 // mono ns when last valid
}

// Gate decides, per reply destination, whether the reply may go.
type Gate struct {
	ifindex  int
	mu       sync.RWMutex
	addrs    map[netip.Addr]known
	prefixes atomic.Pointer[[]netip.Prefix]
	bmu      sync.Mutex
	credit   float64
	creditAt int64
	// Counters.
	Refused, Strangers atomic.Uint64
	Resyncs            atomic.Uint64 // event overflows that needed a new dump
}

// NewGate makes a gate for the interface with this index and on-link
// prefixes; Watch keeps both up to date.
func NewGate(ifindex int, prefixes []netip.Prefix) *Gate {
	g := &Gate{ifindex: ifindex, addrs: map[netip.Addr]known{}, credit: StrangerBurst}
	g.SetPrefixes(prefixes)
	return g
}

// SetPrefixes replaces the on-link prefixes.
func (g *Gate) SetPrefixes(p []netip.Prefix) {
	c := append([]netip.Prefix(nil), p...)
	g.prefixes.Store(&c)
}

// Check decides for a reply to dst now. It is the hot path: one read lock
// and a map lookup for known addresses.
func (g *Gate) Check(dst netip.Addr) Verdict { return g.CheckAt(dst, mono()) }

// CheckAt is Check at mono time now (ns since the package's start; Apply
// and Update take the same).
func (g *Gate) CheckAt(dst netip.Addr, now int64) Verdict {
	if g == nil || !g.onLink(dst) {
		return Allow
	}
	g.mu.RLock()
	k, ok := g.addrs[dst]
	g.mu.RUnlock()
	if ok && (k.valid || now-k.seen < int64(Remember)) {
		return Allow
	}
	g.bmu.Lock()
	defer g.bmu.Unlock()
	if dt := float64(now-g.creditAt) / 1e9; dt > 0 {
		g.credit = min(StrangerBurst, g.credit+dt*StrangerRate)
	}
	g.creditAt = now
	if g.credit >= 1 {
		g.credit--
		g.Strangers.Add(1)
		return Allow
	}
	g.Refused.Add(1)
	return Unresolved
}

func (g *Gate) onLink(a netip.Addr) bool {
	for _, p := range *g.prefixes.Load() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Update records a neighbour entry's state (NUD_* flags) at mono time now.
func (g *Gate) Update(a netip.Addr, state uint16, deleted bool, now int64) {
	valid := !deleted && state&(unix.NUD_REACHABLE|unix.NUD_STALE|unix.NUD_DELAY|unix.NUD_PROBE|unix.NUD_PERMANENT|unix.NUD_NOARP) != 0
	g.mu.Lock()
	defer g.mu.Unlock()
	k, ok := g.addrs[a]
	switch {
	case valid:
		if !ok && len(g.addrs) >= maxKnown {
			g.forgetOldest()
		}
		g.addrs[a] = known{valid: true, seen: now}
	case ok && k.valid:
		g.addrs[a] = known{valid: false, seen: now} // remembered for a while
	}
}

// forgetOldest drops the longest-invalid entry (called with mu held).
func (g *Gate) forgetOldest() {
	var oldest netip.Addr
	var at int64 = 1<<63 - 1
	for a, k := range g.addrs {
		if !k.valid && k.seen < at {
			oldest, at = a, k.seen
		}
	}
	if oldest.IsValid() {
		delete(g.addrs, oldest)
		return
	}
	for a := range g.addrs { // all valid: drop any
		delete(g.addrs, a)
		return
	}
}

// Known says how many addresses the gate knows (valid or remembered).
func (g *Gate) Known() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.addrs)
}

// Watch builds a gate for the named interface and keeps it up to date
// until ctx ends: the neighbour table through netlink, the on-link
// prefixes from the interface's addresses every few seconds.
func Watch(ctx context.Context, iface string) (*Gate, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	g := NewGate(ifi.Index, prefixesOf(ifi))
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_NEIGH - 1)}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := dump(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// A blocked recvfrom is not woken by close(2): the reader wakes every
	// second to look at ctx, and closes the socket itself.
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	go g.read(ctx, fd)
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if ifi, err := net.InterfaceByIndex(g.ifindex); err == nil {
					g.SetPrefixes(prefixesOf(ifi))
				}
			}
		}
	}()
	return g, nil
}

func prefixesOf(ifi *net.Interface) []netip.Prefix {
	var out []netip.Prefix
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil && p.Addr().Is4() {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}

// dump asks for the whole IPv4 neighbour table.
func dump(fd int) error {
	req := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofNdMsg)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.RTM_GETNEIGH)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	req[unix.NLMSG_HDRLEN] = unix.AF_INET
	return unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

func mono() int64 { return int64(time.Since(monoBase)) }

var monoBase = time.Now()

// read applies every neighbour message until the socket is closed. When
// the kernel dropped events (ENOBUFS: the socket fell behind), the table
// is dumped again.
func (g *Gate) read(ctx context.Context, fd int) {
	defer unix.Close(fd)
	buf := make([]byte, 1<<16)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case err == nil:
			g.Apply(buf[:n], mono())
		case errors.Is(err, unix.ENOBUFS):
			g.Resyncs.Add(1)
			dump(fd)
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		default:
			return
		}
	}
}

// Apply parses netlink messages (RTM_NEWNEIGH, RTM_DELNEIGH) and updates
// the gate with those of its interface. Anything malformed is skipped.
func (g *Gate) Apply(b []byte, now int64) {
	nic.EachNetlinkMessage(b, func(typ uint16, msg []byte) {
		if (typ == unix.RTM_NEWNEIGH || typ == unix.RTM_DELNEIGH) && len(msg) >= unix.SizeofNdMsg {
			family := msg[0]
			ifindex := int(int32(binary.NativeEndian.Uint32(msg[4:])))
			state := binary.NativeEndian.Uint16(msg[8:])
			if family == unix.AF_INET && ifindex == g.ifindex {
				if dst, ok := ndaDst(msg[unix.SizeofNdMsg:]); ok {
					g.Update(dst, state, typ == unix.RTM_DELNEIGH, now)
				}
			}
		}
	})
}

// ndaDst finds the NDA_DST attribute (an IPv4 address).
func ndaDst(b []byte) (netip.Addr, bool) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:])
		if l < 4 || l > len(b) {
			return netip.Addr{}, false
		}
		if typ == unix.NDA_DST && l == 8 {
			return netip.AddrFrom4([4]byte(b[4:8])), true
		}
		al := (l + 3) &^ 3
		if al > len(b) {
			break
		}
		b = b[al:]
	}
	return netip.Addr{}, false
}

// WatchOrAllow is Watch for a server: on the loopback interface (no
// neighbours) or when netlink is not available it returns nil, a Gate that
// allows every destination, and says so in the log.
func WatchOrAllow(ctx context.Context, iface string, log *slog.Logger) *Gate {
	if iface == "lo" {
		return nil
	}
	g, err := Watch(ctx, iface)
	if err != nil {
		log.Warn("neighbour table not watched: replies to forged on-link sources are not bounded", "event", "neighbour_watch_error",
			"error", err.Error())
		return nil
	}
	return g
}
