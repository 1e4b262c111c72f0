package nic

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// Watch calls gone when iface disappears or is re-created
// with another index (a VLAN interface deleted and added again): sockets
// bound to the old device would never see traffic again. An interface
// that only goes down and up keeps its index, its sockets and their
// multicast memberships (the kernel sends the IGMP reports again when it
// comes up), and its addresses may change freely: sitegm binds to the
// device, not to an address. Such a bounce is still reported through
// link(up) (a pulled cable or a switch port going down is the first thing
// a site engineer wants to see).
//
// The kernel's link messages (RTNLGRP_LINK) say each change as it
// happens, in order: a poll every 2 s alone missed a link that came up
// and went down again between two looks (it had been down at the first),
// and reported neither. The poll stays, for what a socket that fell
// behind (ENOBUFS) lost and for a re-created interface (a new index
// under the old name). The subscription is made before the first look,
// so that no change falls between them.
func Watch(ctx context.Context, iface string, gone func(why string), link func(up bool)) {
	events := make(chan linkEvent, 64)
	if fd, err := linkSocket(); err == nil {
		go readLinkEvents(ctx, fd, events)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		gone("the interface disappeared")
		return
	}
	wasUp := netUp(ifi.Flags)
	check := func(up bool) {
		if up != wasUp {
			wasUp = up
			link(up)
		}
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			switch {
			case ev.index != ifi.Index:
			case ev.deleted:
				gone("the interface disappeared")
				return
			default:
				check(ev.up)
			}
			continue
		case <-t.C:
		}
		now, err := net.InterfaceByName(iface)
		switch {
		case err != nil:
			gone("the interface disappeared")
			return
		case now.Index != ifi.Index:
			gone("the interface was re-created")
			return
		}
		check(netUp(now.Flags))
	}
}

// linkUp: administratively up and with a carrier (IFF_UP and
// IFF_RUNNING, the kernel's flags as an ifinfomsg carries them).
func linkUp(flags uint32) bool { return flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0 }

// netUp is linkUp of the flags net.Interface reports (its own bits).
func netUp(f net.Flags) bool { return f&net.FlagUp != 0 && f&net.FlagRunning != 0 }

// linkEvent is one RTM_NEWLINK or RTM_DELLINK.
type linkEvent struct {
	index   int
	up      bool
	deleted bool
}

// linkSocket opens a netlink socket subscribed to link changes.
func linkSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_LINK - 1)}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	// A blocked recvfrom is not woken by close(2): the reader wakes every
	// second to look at ctx, and closes the socket itself.
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	return fd, nil
}

// readLinkEvents hands each link message on until ctx ends. An event
// that finds the channel full is dropped: the poll sees the state.
func readLinkEvents(ctx context.Context, fd int, out chan<- linkEvent) {
	defer unix.Close(fd)
	buf := make([]byte, 1<<16)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		switch {
		case err == nil:
			for _, ev := range parseLinkEvents(buf[:n]) {
				select {
				case out <- ev:
				default:
				}
			}
		case errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		default:
			return
		}
	}
}

// parseLinkEvents reads netlink messages (rtnetlink(7): a struct nlmsghdr,
// then for RTM_NEWLINK and RTM_DELLINK a struct ifinfomsg: family, type,
// index at byte 4, flags at byte 8). Anything else, or malformed, is
// skipped.
func parseLinkEvents(b []byte) []linkEvent {
	var out []linkEvent
	EachNetlinkMessage(b, func(typ uint16, msg []byte) {
		if (typ == unix.RTM_NEWLINK || typ == unix.RTM_DELLINK) && len(msg) >= unix.SizeofIfInfomsg {
			out = append(out, linkEvent{index: int(int32(binary.NativeEndian.Uint32(msg[4:]))),
				up: linkUp(binary.NativeEndian.Uint32(msg[8:])), deleted: typ == unix.RTM_DELLINK})
		}
	})
	return out
}

// IPv4Prefixes are the interface's IPv4 addresses with their prefix
// lengths (none when it is not there).
func IPv4Prefixes(iface string) []netip.Prefix {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	addrs, _ := ifi.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil && p.Addr().Is4() {
				out = append(out, p)
			}
		}
	}
	return out
}
