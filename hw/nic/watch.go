package nic

import (
	"context"
	"net"
	"net/netip"
	"time"
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
func Watch(ctx context.Context, iface string, gone func(why string), link func(up bool)) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return
	}
	linkUp := func(i *net.Interface) bool { return i.Flags&net.FlagUp != 0 && i.Flags&net.FlagRunning != 0 }
	wasUp := linkUp(ifi)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
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
		case linkUp(now) != wasUp:
			wasUp = !wasUp
			link(wasUp)
		}
	}
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
